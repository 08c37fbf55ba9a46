"""The one runner every door drives: `load(pipeline, source)`.

The command line, the Dagster assets and a library user all call it. Around dlt's
`pipeline.run` it adds what a source cannot do: one run at a time per pipeline, a long load
committed chunk by chunk, and, once the load stands, `finish`: rows a killed dlt merge inserted
twice are removed, sessions the API no longer has get `removed_at`, and the `analytics` views
are re-created.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dlt

from . import contract, interrupts, runs
from .analytics import DIALECTS
from .analytics import SCHEMA as VIEWS_SCHEMA
from .chunking import Known, Observer, RunControl, run_with
from .destination import (
    RemovalMarks,
    append_run,
    cap_memory,
    connection,
    destination_kind,
    duckdb_path,
    logs_unread,
    mark_removed,
    preferred_file_format,
    repair_duplicates,
    sessions_per_slug,
    settle,
    table_counts,
    tables,
    update_views,
)
from .errors import ConcurrentRunError, ConfigError
from .record import Outcome, RunRecord, per_slug
from .schema import ACTION_LOGS, SESSIONS
from .sessions import settings_of
from .settings import Settings
from .state import split_key


@dataclass
class LoadResult:
    """What `load` did: the pipeline (a new object if local state had to be dropped) and the
    run's record (`record.RunRecord`: figures, outcome, chunks, sessions per slug)."""

    pipeline: dlt.Pipeline
    record: RunRecord

    @property
    def chunks(self) -> int:
        """Loads the run committed."""
        return self.record.chunks

    @property
    def before(self) -> dict[str, tuple[int, int]]:
        """Sessions per extension (stored, of which removed) before the run."""
        return self.record.before

    @property
    def after(self) -> dict[str, tuple[int, int]]:
        """... and after it."""
        return self.record.after


RunOnce = Callable[[dlt.Pipeline, Any, Any], object]


def _pipeline_run(pipeline: dlt.Pipeline, source: Any, file_format: Any) -> object:
    return pipeline.run(source, loader_file_format=file_format)


def load(
    pipeline: dlt.Pipeline,
    source: Any,
    *,
    observer: Observer | None = None,
    chunked: bool = True,
    run_once: RunOnce = _pipeline_run,
    after_load: Callable[[dlt.Pipeline], object] | None = None,
    started_at: float | None = None,
) -> LoadResult:
    """Run `source` (from `chaster_source`) into `pipeline` completely, safely, and tidy up.

    The source's `chunk_pages` / `chunk_seconds` decide how often a long load is committed; the
    cursors move only with the data they describe, so a killed run loses one chunk at most and
    the next run goes on from there. Then `finish` runs (duplicates, removals, views).
    `chunked=False` loads in one `pipeline.run`; `run_once(pipeline, source, file_format)`
    replaces that call (the Dagster assets run it through dagster-dlt). `after_load(pipeline)`
    runs once the load stands, still under the run lock, so no other run opens the destination
    meanwhile (the Dagster asset checks query the DuckDB file there). `observer` is told of
    progress, of long waits, and is handed the run's record at the end, success or not.
    `started_at` (default: now) is when the run began, for a caller that did work first.
    """
    check_duckdb_names(pipeline)
    record = new_record(pipeline, started_at or time.time())
    result = LoadResult(pipeline, record)
    control = RunControl(chunked=chunked, observer=observer)
    with run_lock(pipeline) as lock, contextlib.ExitStack() as held:
        try:
            result.pipeline = bind_to_destination(result.pipeline)
            # one client for every query of the run, held across its loads: on DuckDB it also
            # keeps the database open for dlt's own connections, which otherwise each open the
            # file again and checkpoint it on closing (a third of a steady-state run's time)
            held.enter_context(connection(result.pipeline))
            restore = cap_memory(result.pipeline)  # memory bounded by the chunk, not the file
            if restore is not None:
                held.callback(restore)
            _load_locked(result, source, control, run_once, lock)
        except BaseException as exc:
            stop = interrupts.interruption(exc)
            if stop is not None:  # what was committed stands; the run says how much
                note_interrupt(result, stop)
            elif contract.refused(exc):
                # if even this fails, the next run meets the refused package again, and the
                # same contract refuses it again: nothing is written either way
                with contextlib.suppress(Exception):
                    contract.abort_refused_load(result.pipeline)
            close_record(result, control, stop or exc)
            if stop is not None:
                raise stop from None
            raise
        close_record(result, control, None)
        if after_load is not None:
            after_load(result.pipeline)
    return result


def _load_locked(
    result: LoadResult, source: Any, control: RunControl, run_once: RunOnce, lock: RunLock
) -> None:
    record = result.record
    pipeline = result.pipeline
    discard_leftovers(pipeline)
    record.before = sessions_per_slug(pipeline)
    tables_before = set(tables(pipeline))
    record.resumed = bool(cursor_states(pipeline).get("pending")) or has_pending_packages(pipeline)
    settings = settings_of(source)
    extracted = resources_extracted(source)
    control.action_logs = settings is not None and settings.action_logs and ACTION_LOGS in extracted
    if settings is not None:
        control.logs.budget = settings.action_log_requests
    with run_with(control), run_defaults(settings):
        while True:
            leftover, extractions = has_pending_packages(pipeline), control.extractions
            with interrupts.committing():  # a signal lets dlt commit the chunk, then stops
                # what the source's next chunk needs from the destination (else it reads that
                # itself, `chunking.known_for`); a signal meanwhile stops the source at once
                control.known = Known.read(pipeline, settings, control) if settings else None
                run_once(pipeline, source, preferred_file_format(pipeline))
                record.schema_changes += contract.schema_changes(pipeline, tables_before)
                record.chunks += 1
                lock.committed(record.chunks)
                drop_loaded_packages(pipeline)
            # with a package an interrupted run left, dlt's `run` loads only that package and
            # returns without extracting (dagster-dlt drops it and extracts): then the source's
            # turn is the next chunk
            only_the_leftover = leftover and control.extractions == extractions
            # a resource not extracted (logs off, or a Dagster run of one asset) leaves its
            # committed `pending` as a killed run left it: waiting for it would never end
            sessions_pending = SESSIONS in extracted and bool(
                cursor_states(pipeline).get("pending")
            )
            if not (only_the_leftover or sessions_pending):
                control.sessions_settled = True  # the logs' turn: they wait for the sessions
            logs_pending = control.action_logs and bool(
                resource_state(pipeline, ACTION_LOGS).get("pending")
            )
            if not (only_the_leftover or sessions_pending or logs_pending):
                break
            with interrupts.committing():
                settle(pipeline)  # memory bounded by the chunk, not by the file
    finish(pipeline, record)
    record.after = sessions_per_slug(pipeline)
    record.tables = table_counts(pipeline)
    if settings is not None and control.action_logs:
        control.logs.left, control.logs.running = logs_unread(pipeline, settings.slugs)


def resources_extracted(source: Any) -> set[str]:
    """The names of the resources a run of `source` extracts: a source's selected ones (a
    Dagster run of one asset selects one), or a resource passed alone."""
    selected = getattr(source, "selected_resources", None)
    return set(selected) if selected is not None else {getattr(source, "name", SESSIONS)}


# dlt settings the runner chooses unless the user has set them: (env var, the keys dlt would
# read them from, the value)
EXTRACT_COMPRESSION = "SOURCES__CHASTER__DATA_WRITER__DISABLE_COMPRESSION"
STAGING_TRUNCATION = "LOAD__TRUNCATE_STAGING_DATASET"
RUN_DEFAULTS = (
    # dlt gzips the extract files, which live from `extract` to `normalize` and are read once:
    # that was 1 s of CPU per 10,000 sessions (`bench/profile.py`), 0.5-0.7 s of the benchmark
    (
        EXTRACT_COMPRESSION,
        (
            "sources.chaster.data_writer.disable_compression",
            "sources.data_writer.disable_compression",
            "data_writer.disable_compression",
        ),
        "true",
    ),
    # dlt's merge leaves the last chunk's rows in `<dataset>_staging` (people's profiles
    # included): a second copy of personal data that nothing reads after the merge
    (STAGING_TRUNCATION, ("load.truncate_staging_dataset",), "true"),
)
# Under a budget the API sets the pace, and the fetch-ahead thread must send each request in its
# slot, or the slot is lost. dlt's normaliser turns each table's buffered rows into Arrow in one
# call that holds the GIL: with its 5,000 rows a call held it up to 0.68 s, past a 0.2 s slot at
# 300 requests a minute, and late requests lost 2.2 s of a 14 s run (bench/RESULTS.md). In
# batches of 300 rows no request was late by more than 0.07 s. Where dlt sets the pace (no
# budget to wait for) the small batches cost 12% of a backfill's time, so they are kept for
# budgets the API, not dlt, is the slower side of: up to `PACED_UP_TO_PER_MINUTE`.
NORMALIZE_BATCH = "NORMALIZE__DATA_WRITER__BUFFER_MAX_ITEMS"
PACED_DEFAULTS = (
    (
        NORMALIZE_BATCH,
        ("normalize.data_writer.buffer_max_items", "data_writer.buffer_max_items"),
        "300",
    ),
)
# 400 requests a minute bring about 670 sessions a second; dlt loads about 800 a second here
PACED_UP_TO_PER_MINUTE = 400


def paced(settings: Settings | None) -> bool:
    """Whether the run's budget, not dlt, sets its pace."""
    return settings is not None and settings.requests_per_minute <= PACED_UP_TO_PER_MINUTE


@contextmanager
def run_defaults(settings: Settings | None = None) -> Iterator[None]:
    """Set `RUN_DEFAULTS` (and `PACED_DEFAULTS` when `paced`) for the duration of the load,
    each unless configured otherwise."""
    defaults = RUN_DEFAULTS + (PACED_DEFAULTS if paced(settings) else ())
    chosen = [
        (env, value)
        for env, keys, value in defaults
        if env not in os.environ and all(dlt.config.get(key) is None for key in keys)
    ]
    for env, value in chosen:
        os.environ[env] = value
    try:
        yield
    finally:
        for env, _ in chosen:
            os.environ.pop(env, None)


def new_record(pipeline: dlt.Pipeline, started_at: float) -> RunRecord:
    """An empty record of a run of `pipeline` that began at `started_at`."""
    kind = destination_kind(pipeline)
    return RunRecord(
        pipeline.pipeline_name, pipeline.dataset_name, kind, str(pipeline.pipelines_dir), started_at
    )


def note_interrupt(result: LoadResult, stop: interrupts.Interrupted) -> None:
    """Fill in what an interrupted run committed: its chunks, and the sessions it added, read
    from the destination (`None` when it cannot be read; no figure is guessed)."""
    record = result.record
    stop.chunks = record.chunks
    if not record.chunks:  # nothing committed: the destination holds what it held before
        record.after, stop.new_sessions = dict(record.before), 0
        return
    try:
        with connection(result.pipeline):
            record.after = sessions_per_slug(result.pipeline)
    except Exception:
        stop.new_sessions = None
        return
    stop.new_sessions = sum(
        total - record.before.get(slug, (0, 0))[0] for slug, (total, _) in record.after.items()
    )


def close_record(result: LoadResult, control: RunControl, exc: BaseException | None) -> None:
    """Complete the run's record from what the run's control holds, append its row to the
    runs table (a failure to do so is noted in the record, never raised over the run's own
    outcome), and hand it to the observer."""
    record = result.record
    record.finished_at = time.time()
    record.requests = control.counts
    record.session_repairs = dict(control.session_repairs)
    if control.action_logs:
        control.logs.requests = control.counts.log_requests
        record.logs = control.logs
    record.extensions = per_slug(control.reports(), control.counts, record.before, record.after)
    record.outcome = Outcome.of(exc, record.views_error)
    try:
        values = runs.row(record)
    except Exception as error:  # a bug here must not hide the run's own outcome
        record.runs_error = f"not written ({type(error).__name__}: {error})"
    else:
        record.runs_error = append_run(result.pipeline, values)
    if control.observer is not None:
        control.observer.ended(record)


def finish(pipeline: dlt.Pipeline, record: RunRecord | None = None) -> RunRecord:
    """The maintenance a dlt source cannot do, idempotent, after every load (plain runs too).

    - rows a killed dlt merge inserted twice are deleted (dlt-hub/dlt#3023);
    - sessions a GET answered 404 for, or a full sweep no longer saw, get `removed_at`;
    - the `analytics` views are re-created (DuckDB, MotherDuck, PostgreSQL); a failure is
      reported in `record.views_error` and leaves the load as it stands.
    """
    record = record or new_record(pipeline, time.time())
    with connection(pipeline):
        record.repaired = repair_duplicates(pipeline)
        mark_removed(pipeline, removal_marks(cursor_states(pipeline)))
        if destination_kind(pipeline) in DIALECTS:
            record.views, record.views_error = update_views(pipeline)
    return record


def cursor_states(pipeline: dlt.Pipeline) -> dict[str, Any]:
    """The `sessions` resource state as last committed: cursors per slug and `pending`."""
    return resource_state(pipeline, SESSIONS)


def resource_state(pipeline: dlt.Pipeline, resource: str) -> dict[str, Any]:
    """A resource's state as last committed (empty before its first load)."""
    sources = pipeline.state.get("sources", {})
    state: dict[str, Any] = sources.get("chaster", {}).get("resources", {}).get(resource, {})
    return state


def removal_marks(state: dict[str, Any]) -> list[RemovalMarks]:
    """What the committed state (`cursor_states`) says is gone, per cursor, for `mark_removed`:
    the sessions GETs answered 404 for, and when a full sweep last began."""
    marks = []
    for key, entry in state.get("cursors", {}).items():
        slug, status = split_key(key)
        marks.append(
            RemovalMarks(slug, status, dict(entry.get("removed", {})), entry.get("last_sweep"))
        )
    return marks


def has_pending_packages(pipeline: dlt.Pipeline) -> bool:
    """Whether a package was extracted or normalised and not yet loaded (a run was cut)."""
    return bool(pipeline.list_extracted_load_packages() or pipeline.list_normalized_load_packages())


def schemas_written(dataset: str) -> tuple[str, ...]:
    """Every schema the pipeline writes into a DuckDB file: the dataset, dlt's merge staging
    dataset (rows wait there before they are merged) and the views."""
    return (dataset, f"{dataset}_staging", VIEWS_SCHEMA)


def check_duckdb_name(path: Path, dataset: str) -> None:
    """Refuse a file whose name equals a schema written into it.

    DuckDB names the attached database after the file's stem, so `chaster.duckdb` holding the
    schema `chaster` makes every `chaster.<table>` ambiguous, for dlt and for users' queries.
    """
    if path.stem in schemas_written(dataset):
        raise ConfigError(
            f"the DuckDB file {path.name} has the name of a schema written into it "
            f"({', '.join(schemas_written(dataset))}); DuckDB could not tell `{path.stem}.<table>` "
            f"apart; choose another file name, for example {path.stem}_sessions.duckdb"
        )


def check_duckdb_names(pipeline: dlt.Pipeline) -> None:
    path = duckdb_path(pipeline)
    if path is not None and pipeline.dataset_name:
        check_duckdb_name(path, pipeline.dataset_name)


def destination_identity(pipeline: dlt.Pipeline) -> str:
    path = duckdb_path(pipeline)
    if path is not None:
        return str(path.resolve())
    return f"{pipeline.destination.destination_name}/{pipeline.dataset_name}"


class RunLock:
    """One run at a time per pipeline folder: a scheduler firing during a long run gets a clear
    no. The lock file says who holds it and how far that run got, for the no and for a person
    looking (`cat <pipelines dir>/<name>.run.lock`)."""

    def __init__(self, pipeline: dlt.Pipeline) -> None:
        self.path = Path(pipeline.pipelines_dir) / f"{pipeline.pipeline_name}.run.lock"
        self.name = pipeline.pipeline_name
        self.started_at = time.time()
        self._handle: Any = None

    def __enter__(self) -> RunLock:
        self._handle = self._take()
        self.committed(0)
        return self

    def probe(self) -> None:
        """Raise `ConcurrentRunError` now if another run holds the lock, taking nothing: a run
        keeps its DuckDB file open throughout, so the command asks here first, before the file
        would only say "in use"."""
        self._take().close()

    def _take(self) -> Any:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # held for the whole run, released in __exit__
        handle = open(self.path, "a+")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = _holder(handle.read())
            handle.close()
            raise ConcurrentRunError(
                f"another run of pipeline {self.name!r} is still going into this destination "
                f"({holder}); this run did nothing"
            ) from None
        return handle

    def committed(self, chunks: int) -> None:
        """Note that the run has committed `chunks` chunks so far."""
        record = {"pid": os.getpid(), "started_at": round(self.started_at, 3), "chunks": chunks}
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(json.dumps(record) + "\n")
        self._handle.flush()

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()


def _holder(text: str) -> str:
    """The lock file's record in words: "pid 123, started 10:04:05 UTC, 3 chunks committed"."""
    try:
        record = json.loads(text)
        started = time.strftime("%H:%M:%S UTC", time.gmtime(record["started_at"]))
        chunks = record["chunks"]
        committed = f"{chunks} chunk{'' if chunks == 1 else 's'} committed"
        return f"pid {record['pid']}, started {started}, {committed}"
    except (ValueError, KeyError, TypeError):
        return f"pid {text.strip() or 'unknown'}"  # a lock file of version 0.2


def discard_leftovers(pipeline: dlt.Pipeline) -> None:
    """Delete what an interrupted run left in dlt's folder that no run would ever load.

    - dlt extracts each run into a folder of its own, `normalize/<random>/`, and moves the
      package out when the extract completes; an extract cut short by a signal, a failure or
      a kill stays there, under a name no later run looks for.
    - dlt's normalize commits a package into `load/normalized` and then deletes its extracted
      files; a kill in between leaves part of those files behind, and the next run fails on
      them (`FileNotFoundError: .../normalize/extracted/<load id>/schema.json`). Their data is
      safe in the committed package, which this run loads first.

    Runs under the run lock, so no extraction of this folder is going on.
    """
    working = Path(pipeline.working_dir)
    normalize = working / "normalize"
    if not normalize.is_dir():
        return
    for folder in normalize.iterdir():
        if folder.is_dir() and folder.name != "extracted":
            shutil.rmtree(folder, ignore_errors=True)
    extracted = normalize / "extracted"
    for package in extracted.iterdir() if extracted.is_dir() else ():
        committed = working / "load" / "normalized" / package.name
        if committed.is_dir() or (working / "load" / "loaded" / package.name).is_dir():
            shutil.rmtree(package)


def run_lock(pipeline: dlt.Pipeline) -> RunLock:
    """The run lock of `pipeline`'s local folder (see `RunLock`)."""
    return RunLock(pipeline)


def drop_loaded_packages(pipeline: dlt.Pipeline) -> None:
    """Delete the local copies of packages that are loaded without a failed job.

    dlt keeps every loaded package (its files and a copy of the schema) in the pipeline folder
    and never prunes them: 50 packages, 31 MB, after 25,000 sessions, growing with every
    scheduled run. The data is in the destination; a package with a failed job is kept for
    the person who looks into it. What a kill left of an earlier deletion goes too.
    """
    loaded = Path(pipeline.working_dir) / "load" / "loaded"
    if not loaded.is_dir():
        return
    for package in loaded.iterdir():
        failed = package / "failed_jobs"
        if not (failed.is_dir() and any(failed.iterdir())):
            shutil.rmtree(package, ignore_errors=True)


def bind_to_destination(pipeline: dlt.Pipeline) -> dlt.Pipeline:
    """Forget local state that belongs to another destination, so cursors come from this one.

    dlt restores state from the destination only when it is newer than the local copy; a user
    switching between DuckDB files would otherwise carry one file's cursor into the other and
    silently skip sessions.
    """
    target = destination_identity(pipeline)
    marker = Path(pipeline.working_dir) / "destination.txt"
    if marker.exists() and marker.read_text() != target:
        pipeline = pipeline.drop()
    Path(pipeline.working_dir).mkdir(parents=True, exist_ok=True)
    marker.write_text(target)
    return pipeline
