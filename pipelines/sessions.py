"""Load Chaster extension sessions into DuckDB: `python pipelines/sessions.py --help`.

Run it again and again (a scheduler does): each run fetches only what is new, commits long
backfills in chunks, and ends with a summary. Problems end the run with one line on stderr and
an exit code per class (see `--help`), leaving DuckDB and the cursors as they were.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import sys
import time
import tomllib
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Settings live in the project's .dlt/ folder; find it from any working directory.
if "DLT_PROJECT_DIR" not in os.environ and not (Path.cwd() / ".dlt").is_dir():
    os.environ["DLT_PROJECT_DIR"] = str(ROOT)
os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")


def check_settings_files() -> None:
    """Stop with one line if .dlt/config.toml or secrets.toml is not valid TOML.

    dlt reads them as soon as the source module is imported, with a traceback on a typo.
    """
    folder = Path(os.environ.get("DLT_PROJECT_DIR") or Path.cwd()) / ".dlt"
    for name in ("config.toml", "secrets.toml"):
        path = folder / name
        try:
            tomllib.loads(path.read_text()) if path.is_file() else None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            print(f"error: {path} is not valid TOML ({exc}); fix the file", file=sys.stderr)
            sys.exit(2)


check_settings_files()

import dlt  # noqa: E402
import duckdb  # noqa: E402
from dlt.common.configuration.exceptions import (  # noqa: E402
    ConfigFieldMissingException,
    ConfigurationValueError,
)
from dlt.common.destination.exceptions import DestinationException  # noqa: E402
from dlt.destinations.exceptions import DatabaseUndefinedRelation  # noqa: E402

from sources.chaster import RunStats, chaster, cursor_states  # noqa: E402
from sources.chaster.errors import (  # noqa: E402
    EXIT_CODES,
    ChasterError,
    ConcurrentRunError,
    ConfigError,
    DestinationError,
    ViewsError,
)
from sources.chaster.views import SCHEMA as VIEWS_SCHEMA  # noqa: E402
from sources.chaster.views import create_views  # noqa: E402

PIPELINE_NAME = "chaster"
DEMO_PIPELINE_NAME = "chaster_demo"
DATASET = "chaster"
DEFAULT_DUCKDB = "chaster.duckdb"
DEMO_DUCKDB = "chaster_demo.duckdb"
DEMO_SLUG = "example-extension"
DEMO_SESSIONS = 3000
DEMO_TOKEN = "demo-token"  # noqa: S105 - the in-process stand-in's token, not a real one


@dataclass
class RunPlan:
    """What this run will do, settled from the command line before anything is touched."""

    pipeline_name: str
    duckdb_path: Path
    source_args: dict[str, Any] = field(default_factory=dict)
    demo: bool = False
    destination: str | None = None  # a destination named in config; None: the DuckDB file
    report: Path | None = None

    @property
    def on_duckdb(self) -> bool:
        return self.destination is None

    def where(self) -> str:
        if self.on_duckdb:
            return f"DuckDB: {self.duckdb_path} (schema {DATASET})"
        return f"destination: {self.destination} (dataset {DATASET})"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    codes = "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES.items())
    parser = argparse.ArgumentParser(
        prog="python pipelines/sessions.py",
        description="Load the sessions of your Chaster extension(s) into DuckDB, incrementally.",
        epilog=(
            "Settings (token, extension slug, status, page size, base URL, ...) come from "
            ".dlt/secrets.toml, .dlt/config.toml or SOURCES__CHASTER__* env vars; options here "
            f"override them.\n\nexit codes:\n{codes}"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--duckdb",
        metavar="PATH",
        help=f"DuckDB file to write (default {DEFAULT_DUCKDB}; {DEMO_DUCKDB} with --demo)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help=f"load {DEMO_SESSIONS} seeded sessions from the built-in API stand-in (no token)",
    )
    parser.add_argument("--status", help="locked, unlocked, deserted or all (default all)")
    parser.add_argument(
        "--extension-slug",
        action="append",
        metavar="SLUG",
        help="extension to load (repeatable; default from config)",
    )
    parser.add_argument(
        "--full-refresh",
        action="store_true",
        help="walk every session again instead of starting from the stored cursor",
    )
    parser.add_argument(
        "--destination",
        metavar="NAME",
        help="load into a destination configured under [destination.NAME] (or a dlt type such "
        "as postgres) instead of a DuckDB file; default from CHASTER__DESTINATION or "
        "[chaster] destination",
    )
    parser.add_argument(
        "--report",
        metavar="PATH",
        help="write a JSON report of the run (status, timings, figures per extension, errors)",
    )
    parser.add_argument("--verbose", action="store_true", help="show dlt's logs and tracebacks")
    parser.add_argument("--quiet", action="store_true", help="no progress lines, summary only")
    return parser.parse_args(argv)


def plan_run(args: argparse.Namespace) -> RunPlan:
    report = Path(args.report).resolve() if args.report else None
    source_args: dict[str, Any] = {}
    if args.status is not None:
        source_args["status"] = args.status
    if args.extension_slug:
        source_args["extension_slug"] = args.extension_slug
    if args.full_refresh:
        source_args["full_refresh"] = True
    if args.demo:
        source_args.setdefault("extension_slug", [DEMO_SLUG])
        # The stand-in has no rate limit; the real budget would only slow the demo down.
        source_args.update(api_token=DEMO_TOKEN, requests_per_minute=60_000)
        path = Path(args.duckdb or DEMO_DUCKDB)
        return RunPlan(DEMO_PIPELINE_NAME, path.resolve(), source_args, demo=True, report=report)
    destination = None if args.duckdb else args.destination or configured_destination()
    return RunPlan(
        PIPELINE_NAME,
        Path(args.duckdb or DEFAULT_DUCKDB).resolve(),
        source_args,
        destination=destination,
        report=report,
    )


def configured_destination() -> str | None:
    """The destination named by CHASTER__DESTINATION or `[chaster] destination` in config.toml;
    `duckdb` (or nothing) means the DuckDB file."""
    name = dlt.config.get("chaster.destination", str)
    return None if not name or name == "duckdb" else name


@contextmanager
def run_lock(pipeline: dlt.Pipeline) -> Iterator[None]:
    """One run at a time per pipeline: a scheduler firing during a long run gets a clear no."""
    lock_path = Path(pipeline.pipelines_dir) / f"{pipeline.pipeline_name}.run.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise ConcurrentRunError(
                f"another run of pipeline {pipeline.pipeline_name!r} is still going "
                f"(pid {holder}); this run did nothing"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def check_duckdb(path: Path) -> None:
    """Fail before any request if the file is held by another process or is not DuckDB."""
    if path.exists() and path.is_dir():
        raise DestinationError(f"{path} is a directory, not a DuckDB file")
    if not path.exists():
        if not path.parent.is_dir():
            raise DestinationError(f"folder {path.parent} does not exist (from --duckdb {path})")
        return
    try:
        duckdb.connect(str(path)).close()
    except duckdb.Error as exc:
        text = str(exc)
        if "lock" in text.lower():
            raise DestinationError(
                f"{path} is locked by another process (is a notebook or DuckDB shell holding it "
                "open for writing?); close it and run again"
            ) from None
        raise DestinationError(
            f"{path} cannot be opened as DuckDB ({text.splitlines()[0]})"
        ) from None


def bind_to_destination(pipeline: dlt.Pipeline, plan: RunPlan) -> dlt.Pipeline:
    """Forget local state that belongs to another DuckDB file, so cursors come from this one.

    dlt restores state from the destination only when it is newer than the local copy; a user
    switching `--duckdb` between existing files would otherwise carry one file's cursor into
    the other and silently skip sessions.
    """
    target = str(plan.duckdb_path) if plan.on_duckdb else f"{plan.destination}/{DATASET}"
    marker = Path(pipeline.working_dir) / "destination.txt"
    if marker.exists() and marker.read_text() != target:
        pipeline = pipeline.drop()
    Path(pipeline.working_dir).mkdir(parents=True, exist_ok=True)
    marker.write_text(target)
    return pipeline


def remove_if_empty(plan: RunPlan) -> None:
    """Delete a DuckDB file this run created but loaded nothing into: a failed first run
    leaves the folder as it found it."""
    if plan.on_duckdb and plan.duckdb_path.is_file() and not _tables(plan, None):
        plan.duckdb_path.unlink()
        Path(f"{plan.duckdb_path}.wal").unlink(missing_ok=True)


def destination_rows(
    plan: RunPlan, pipeline: dlt.Pipeline | None, sql: str, *params: Any
) -> list[tuple[Any, ...]]:
    """Rows of a read-only query on the run's destination; none if nothing was loaded yet.

    A DuckDB file is opened read-only (and never created); other destinations go through dlt's
    SQL client, whose `%s` parameters both use.
    """
    if plan.on_duckdb:
        if not plan.duckdb_path.exists():
            return []
        with duckdb.connect(str(plan.duckdb_path), read_only=True) as con:
            return con.execute(sql.replace("%s", "?"), list(params)).fetchall()
    assert pipeline is not None, "a destination other than DuckDB is read through its pipeline"
    try:
        with pipeline.sql_client() as client, client.execute_query(sql, *params) as cursor:
            return list(cursor.fetchall())
    except DatabaseUndefinedRelation:
        return []


def _tables(plan: RunPlan, pipeline: dlt.Pipeline | None) -> list[str]:
    rows = destination_rows(
        plan,
        pipeline,
        "select table_name from information_schema.tables where table_schema = %s "
        "and table_name not like '\\_dlt%%' escape '\\' order by table_name",
        DATASET,
    )
    return [row[0] for row in rows]


def table_counts(plan: RunPlan, pipeline: dlt.Pipeline) -> dict[str, int]:
    """Rows per table in the dataset (empty if nothing was loaded yet)."""
    return {
        # table names come from information_schema, not from the user
        t: destination_rows(plan, pipeline, f'select count(*) from {DATASET}."{t}"')[0][0]  # noqa: S608
        for t in _tables(plan, pipeline)
    }


def sessions_per_slug(plan: RunPlan, pipeline: dlt.Pipeline) -> dict[str, tuple[int, int]]:
    """slug -> (sessions stored, of which marked removed)."""
    if "sessions" not in _tables(plan, pipeline):
        return {}
    rows = destination_rows(
        plan,
        pipeline,
        f"select slug, count(*), count(removed_at) from {DATASET}.sessions group by slug",  # noqa: S608
    )
    return {slug: (total, removed) for slug, total, removed in rows}


class Progress:
    """A progress line on stderr at most every two seconds while pages come in."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.started = time.monotonic()
        self._last = self.started

    def __call__(self, stats: RunStats, slug: str, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or now - self._last < 2.0:
            return
        self._last = now
        of_total = f" of {total:,}" if total else ""
        waits = (
            f", waited {stats.rate_limit_wait:.0f}s for rate limits"
            if stats.rate_limit_wait
            else ""
        )
        print(
            f"  {slug}: {stats.sessions_fetched:,} sessions fetched{of_total}, "
            f"{stats.pages} pages, {now - self.started:.0f}s{waits}",
            file=sys.stderr,
            flush=True,
        )

    def waiting(self, seconds: float, why: str) -> None:
        """A wait long enough to look like a hang is announced before it starts."""
        if self.enabled:
            print(f"  waiting {seconds:.0f}s: {why}", file=sys.stderr, flush=True)


def load(plan: RunPlan, stats: RunStats) -> tuple[int, dlt.Pipeline, dict[str, tuple[int, int]]]:
    """The whole load, as the command and the Dagster assets run it: (chunks, the pipeline,
    sessions per slug after). The counts before are kept in `stats.stored_before`."""
    if plan.on_duckdb:
        check_duckdb(plan.duckdb_path)
    pipeline = make_pipeline(plan)
    stats.stored_before = sessions_per_slug(plan, pipeline)
    chunks, pipeline = run(plan, pipeline, stats)
    return chunks, pipeline, sessions_per_slug(plan, pipeline)


def run(plan: RunPlan, pipeline: dlt.Pipeline, stats: RunStats) -> tuple[int, dlt.Pipeline]:
    """Run chunks until the source has no pending walk: (chunks, the pipeline)."""
    chunks = 0
    with run_lock(pipeline):
        pipeline = bind_to_destination(pipeline, plan)
        stats.resumed = bool(cursor_states(pipeline).get("pending")) or bool(
            pipeline.list_extracted_load_packages() or pipeline.list_normalized_load_packages()
        )
        while True:
            source = chaster(stats=stats, **plan.source_args)
            # parquet is DuckDB's fastest format; other destinations use their own preferred one
            pipeline.run(source, loader_file_format="parquet" if plan.on_duckdb else None)
            chunks += 1
            if not cursor_states(pipeline).get("pending"):
                # once a run: a killed run's double rows are re-loaded, and so repaired, here
                stats.repaired = repair_duplicates(pipeline)
                mark_removed(pipeline)
                if plan.on_duckdb:
                    stats.views, stats.views_error = update_views(pipeline)
                return chunks, pipeline


def repair_duplicates(pipeline: dlt.Pipeline) -> int:
    """Delete rows that one load inserted twice; return how many.

    dlt 1.31 can insert a package's root rows twice when the process is killed in the middle of
    its merge (the crash tests reproduce it; dlt-hub/dlt#3023): same `_dlt_id`, same load id.
    Every run ends with this check, so the next run repairs what a killed one left. It costs
    one `count(distinct _dlt_id)` per table when nothing is wrong.
    """
    kind = pipeline.destination.destination_type.rsplit(".", 1)[-1]
    row = {"duckdb": "rowid", "postgres": "ctid"}.get(kind)
    if row is None:
        return 0
    repaired = 0
    with pipeline.sql_client() as client:
        with client.execute_query(
            "select table_name from information_schema.tables where table_schema = %s "
            "and table_name not like '\\_dlt%%' escape '\\'",
            client.dataset_name,
        ) as cursor:
            tables = [r[0] for r in cursor.fetchall()]
        for table in tables:
            name = client.make_qualified_table_name(table)
            # names come from information_schema, not from the user
            check = f"select count(*) - count(distinct _dlt_id) from {name}"  # noqa: S608
            with client.execute_query(check) as cursor:
                extra = cursor.fetchall()[0][0]
            if extra:
                client.execute_sql(
                    f"delete from {name} where {row} in (select {row} from (select {row}, "  # noqa: S608
                    f"row_number() over (partition by _dlt_id order by {row}) as n "
                    f"from {name}) d where n > 1)"
                )
                repaired += extra
    return repaired


def make_pipeline(plan: RunPlan) -> dlt.Pipeline:
    """The pipeline object; it connects to nothing until it runs."""
    destination: Any = (
        dlt.destinations.duckdb(str(plan.duckdb_path)) if plan.on_duckdb else plan.destination
    )
    return dlt.pipeline(
        pipeline_name=plan.pipeline_name, destination=destination, dataset_name=DATASET
    )


def mark_removed(pipeline: dlt.Pipeline) -> None:
    """Set `removed_at` on sessions the API no longer has, from what the committed state says.

    Idempotent and repeated after every run, so a crash between the load and this update loses
    nothing: GETs that answered 404 are listed in the state, and after a full sweep every row
    of that extension not reloaded since the sweep began is gone from the API.
    """
    cursors = cursor_states(pipeline).get("cursors", {})
    with pipeline.sql_client() as client:
        table = client.make_qualified_table_name("sessions")
        for key, entry in cursors.items():
            slug, status = key.split("|", 1)
            for session_id, noticed in entry.get("removed", {}).items():
                client.execute_sql(
                    f"update {table} set removed_at = %s where session_id = %s "  # noqa: S608
                    "and removed_at is null",
                    noticed,
                    session_id,
                )
            if status == "all" and entry.get("last_sweep"):
                client.execute_sql(
                    f"update {table} set removed_at = to_timestamp(%s) where slug = %s "  # noqa: S608
                    "and removed_at is null and cast(_dlt_load_id as decimal(20, 6)) < %s",
                    entry["last_sweep"],
                    slug,
                    entry["last_sweep"],
                )


def update_views(pipeline: dlt.Pipeline) -> tuple[list[str], str | None]:
    """(Re)create the `analytics` views in one transaction: (their names, why they failed).

    Runs after the data is committed, so a failure here never costs a load: the old views stay
    as they were, and the run reports the failure with its own exit code instead of hiding it.
    """
    try:
        with pipeline.sql_client() as client:
            rows = client.execute_sql(
                "select table_name, column_name from information_schema.columns "
                "where table_schema = %s",
                DATASET,
            )
            columns: dict[str, set[str]] = {}
            for table, column in rows or []:
                columns.setdefault(table, set()).add(column)
            with client.begin_transaction():
                return create_views(client.execute_sql, columns), None
    except Exception as exc:  # reported, never silent; the load itself stands
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return [], (
            f"the analytics views could not be updated ({first_line}); the sessions were loaded"
        )


def summary(
    plan: RunPlan,
    pipeline: dlt.Pipeline,
    stats: RunStats,
    chunks: int,
    before: dict[str, tuple[int, int]],
    after: dict[str, tuple[int, int]],
    seconds: float,
) -> str:
    lines = [
        f"chaster: run finished in {seconds:.1f}s ({chunks} chunk{'s' if chunks != 1 else ''})"
    ]
    if stats.resumed:
        lines.append("  resumed an interrupted run from its last committed chunk")
    if stats.repaired:
        lines.append(
            f"  removed {stats.repaired:,} duplicate rows an interrupted load had left "
            "(dlt-hub/dlt#3023)"
        )
    for slug in sorted(set(after) | set(stats.order_seen)):
        total, removed = after.get(slug, (0, 0))
        total_before, removed_before = before.get(slug, (0, 0))
        order = stats.order_seen.get(slug, "unknown")
        lines.append(
            f"  {slug}: {total - total_before:,} new, {stats.updated.get(slug, 0):,} re-read, "
            f"{removed - removed_before:,} newly removed; {total:,} in total "
            f"({removed:,} removed); API sort order seen: {order}"
        )
        if slug in stats.refresh:
            lines.append(f"    refresh: {stats.refresh[slug]}")
    lines.append(
        f"  requests: {stats.requests} ({stats.search_requests} search, {stats.get_requests} get), "
        f"{stats.pages} pages, {stats.retries} retries"
    )
    lines.append(
        f"  rate limits: {stats.rate_limited} x 429, waited {stats.rate_limit_wait:.1f}s; "
        f"pacing {stats.pacing_wait:.1f}s"
    )
    lines.append(f"  {plan.where()}")
    if stats.views:
        names = ", ".join(v.split(".", 1)[1] for v in stats.views)
        lines.append(f"  analytics views: {names} (schema {VIEWS_SCHEMA})")
    if not plan.on_duckdb:
        lines.append("  analytics views: DuckDB only, not created on this destination")
    counts = table_counts(plan, pipeline)
    lines.append("  tables: " + ", ".join(f"{t} ({n:,})" for t, n in counts.items()))
    return "\n".join(lines)


def find_cause(exc: BaseException) -> BaseException:
    """The user-facing error inside dlt's wrappers, or the innermost cause."""
    innermost = exc
    for current in chain(exc):
        if isinstance(current, ChasterError | ConfigFieldMissingException):
            return current
        innermost = current
    return innermost


_CREDENTIALS_IN_URL = re.compile(r"://[^/@\s]+@")


def chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps, once each."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = getattr(current, "exception", None) or current.__cause__ or current.__context__


def _is_driver_error(exc: BaseException) -> bool:
    """A database driver's own error (psycopg2, snowflake, ...), which dlt may not wrap."""
    module = type(exc).__module__ or ""
    return module.split(".")[0] in {"psycopg2", "psycopg", "snowflake", "google", "pyodbc"}


def explain(exc: BaseException) -> ChasterError:
    """Turn any failure into one readable ChasterError."""
    cause = find_cause(exc)
    if isinstance(cause, ChasterError):
        return cause
    if isinstance(cause, ConfigFieldMissingException):
        if "api_token" in cause.fields:
            return ConfigError(
                "no API token: set SOURCES__CHASTER__API_TOKEN, or api_token under "
                "[sources.chaster] in .dlt/secrets.toml (see .dlt/secrets.toml.example); "
                "or try the built-in demo with --demo"
            )
        return ConfigError(f"missing setting(s): {', '.join(cause.fields)} under [sources.chaster]")
    if isinstance(cause, ConfigurationValueError):
        return ConfigError(f"invalid setting: {str(cause).splitlines()[0]}")
    if isinstance(cause, duckdb.Error):
        return DestinationError(f"DuckDB failed: {str(cause).splitlines()[0]}")
    destination_failure = next(
        (e for e in chain(exc) if isinstance(e, DestinationException) or _is_driver_error(e)),
        None,
    )
    if destination_failure is not None:
        first = str(find_cause(destination_failure)).strip().splitlines() or ["no message"]
        return DestinationError(
            f"the destination failed: {_CREDENTIALS_IN_URL.sub('://***@', first[0])}; check its "
            "credentials under [destination.<name>] in .dlt/secrets.toml and that it is reachable"
        )
    return ChasterError(
        f"unexpected {type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"
    )


def write_report(
    plan: RunPlan,
    stats: RunStats,
    outcome: tuple[str, int, str | None],
    counts: tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]]],
    timing: tuple[float, float],
    chunks: int,
) -> None:
    """The run as JSON for schedulers and monitors: what `--report PATH` writes, on success and
    on failure alike. No token or credential can reach it: errors are already redacted."""
    status, code, error = outcome
    before, after = counts
    started_at, seconds = timing
    slugs = sorted(set(after) | set(stats.order_seen) | set(stats.requests_by_slug))
    extensions = {}
    for slug in slugs:
        total, removed = after.get(slug, before.get(slug, (0, 0)))
        total_before, removed_before = before.get(slug, (0, 0))
        extensions[slug] = {
            "new": total - total_before,
            "updated": stats.updated.get(slug, 0),
            "newly_removed": removed - removed_before,
            "total": total,
            "removed": removed,
            "requests": stats.requests_by_slug.get(slug, 0),
            "sort_order": stats.order_seen.get(slug),
            "refresh": stats.refresh.get(slug),
        }
    report = {
        "status": status,
        "exit_code": code,
        "error": error,
        "pipeline": plan.pipeline_name,
        "destination": "duckdb" if plan.on_duckdb else plan.destination,
        "location": str(plan.duckdb_path) if plan.on_duckdb else f"{plan.destination}/{DATASET}",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started_at)),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started_at + seconds)),
        "seconds": round(seconds, 3),
        "chunks": chunks,
        "resumed": stats.resumed,
        "requests": {
            "total": stats.requests,
            "search": stats.search_requests,
            "get": stats.get_requests,
            "pages": stats.pages,
            "retries": stats.retries,
            "rate_limited": stats.rate_limited,
            "rate_limit_wait_seconds": round(stats.rate_limit_wait, 3),
            "pacing_wait_seconds": round(stats.pacing_wait, 3),
        },
        "extensions": extensions,
        "views": stats.views,
    }
    plan.report.parent.mkdir(parents=True, exist_ok=True)
    plan.report.write_text(json.dumps(report, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.verbose:
        os.environ["RUNTIME__LOG_LEVEL"] = "INFO"
    plan = plan_run(args)
    progress = Progress(enabled=not args.quiet)
    stats = RunStats(progress=progress, on_wait=progress.waiting)
    started, started_at = time.monotonic(), time.time()
    standin = None
    existed = plan.duckdb_path.exists()
    after: dict[str, tuple[int, int]] = {}
    chunks = 0
    try:
        if plan.demo:
            from standin import Population, StandIn, StandInConfig

            standin = StandIn(Population(DEMO_SESSIONS), StandInConfig(token=DEMO_TOKEN)).start()
            plan.source_args["base_url"] = standin.url
            print(
                f"demo: serving {DEMO_SESSIONS:,} seeded sessions at {standin.url}", file=sys.stderr
            )
        chunks, pipeline, after = load(plan, stats)
        before = stats.stored_before
        seconds = time.monotonic() - started
        print(summary(plan, pipeline, stats, chunks, before, after, seconds))
        if stats.views_error:
            print(f"error: {stats.views_error}", file=sys.stderr)
            outcome = ("loaded_but_views_failed", ViewsError.exit_code, stats.views_error)
        else:
            outcome = ("succeeded", 0, None)
    except KeyboardInterrupt:
        message = "interrupted; the next run continues from the last committed chunk"
        print(f"error: {message}", file=sys.stderr)
        outcome = ("interrupted", 130, message)
    except Exception as exc:  # every failure ends as one line and an exit code
        error = explain(exc)
        if not existed and not isinstance(error, DestinationError):
            remove_if_empty(plan)
        if args.verbose:
            traceback.print_exception(exc)
        print(f"error: {error.message}", file=sys.stderr)
        outcome = ("failed", error.exit_code, error.message)
    finally:
        if standin is not None:
            standin.stop()
    if plan.report is not None:
        timing = (started_at, time.monotonic() - started)
        write_report(plan, stats, outcome, (stats.stored_before, after), timing, chunks)
    return outcome[1]


if __name__ == "__main__":
    sys.exit(main())
