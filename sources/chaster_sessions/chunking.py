"""What carries one run across its chunks, what the runner hands the source, and when a chunk
ends.

A plain `pipeline.run(chaster_source(...))` is one run in one chunk: the source loads everything
and never stops early. The runner (`runner.load`) instead commits a long load every
`chunk_pages` pages or `chunk_seconds` seconds, so a kill loses at most one chunk. It runs the
same source again and again in one `RunControl`, which holds one `CursorRun` per cursor, the
run's clients and request counts, and what the runner read from the destination for this
chunk (`Known`), so each chunk goes on where the last stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

import dlt

from . import destination
from .client import ChasterClient, RequestCounts
from .cursor import CursorRun
from .paging import Stop
from .record import CursorReport, LogFigures, RunRecord
from .settings import DEFAULT_CONNECT_TIMEOUT, Settings
from .state import LogTask, cursor_key


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Observer(Protocol):
    """Who shows a run as it goes (the command's progress lines); every call is optional news."""

    def progress(self, slug: str, fetched: int, counts: RequestCounts, total: int) -> None:
        """Pages came in: `fetched` sessions so far in the run, `total` the API's count."""

    def waiting(self, seconds: float, why: str) -> None:
        """A wait long enough to look like a hang begins."""

    def ended(self, record: RunRecord) -> None:
        """The run is over, successful or not: what it did (`runner.close_record`)."""


@dataclass
class Known:
    """What the destination holds that the source needs, read by the runner before a chunk:
    the sessions stored as running per slug, the stored rows of the ids asked for, and the
    sessions whose action log is to be read (None: not in this chunk, the sessions go first)."""

    running: dict[str, dict[str, str]] = field(default_factory=dict)  # slug -> id -> pid
    stored: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # id -> slug, pid
    log_tasks: list[LogTask] | None = None

    @classmethod
    def read(cls, pipeline: dlt.Pipeline | None, settings: Settings, run: RunControl) -> Known:
        """Only what this chunk can use: the running sets of cursors not begun yet (none on a
        full refresh), or the ids' rows when the run re-reads chosen sessions; with action
        logs, once the sessions stand, the next sessions to read the logs of."""
        known = cls._sessions(pipeline, settings, run)
        if settings.action_logs and (run.sessions_settled or not run.chunked):
            budget = settings.action_log_requests - run.counts.log_requests
            # the running sessions an earlier chunk read come first again: skipped, not counted
            limit = budget + len(run.logs_read)
            known.log_tasks = (
                destination.log_tasks(pipeline, settings.slugs, settings.session_ids, limit)
                if pipeline is not None and budget > 0
                else []
            )
        return known

    @classmethod
    def _sessions(cls, pipeline: dlt.Pipeline | None, settings: Settings, run: RunControl) -> Known:
        if pipeline is None:  # iterated outside a pipeline: nothing was loaded before
            return cls()
        if settings.session_ids:
            return cls(stored=destination.stored_sessions(pipeline, list(settings.session_ids)))
        slugs = [slug for slug in settings.slugs if not run.cursor(slug, settings.status).begun]
        if settings.full_refresh or not slugs:
            return cls()
        return cls(running=destination.running_sessions(pipeline, slugs))


@dataclass
class RunControl:
    """Control state of one run; a plain `pipeline.run` gets a fresh one per extraction."""

    chunked: bool = False  # the runner commits chunk by chunk; a plain run never stops early
    observer: Observer | None = None
    known: Known | None = None  # handed in by the runner before each chunk
    counts: RequestCounts = field(default_factory=RequestCounts)  # shared by its clients
    extractions: int = 0  # times the source was extracted in this run (one per chunk)
    fetched: int = 0  # sessions handed to dlt, for the progress line
    session_repairs: dict[str, str] = field(default_factory=dict)  # --session-id: id -> outcome
    started_at: float = field(default_factory=time.time)  # compared with dlt load ids
    noticed_at: str = field(default_factory=_now_iso)  # when a removal is recorded
    sessions_settled: bool = False  # the sessions are committed for this run: logs may follow
    action_logs: bool = False  # the source reads action logs (the runner's record says so)
    logs: LogFigures = field(default_factory=LogFigures)
    logs_read: set[str] = field(default_factory=set)  # sessions whose log this run has read
    _cursors: dict[str, CursorRun] = field(default_factory=dict)
    _clients: dict[tuple[object, ...], ChasterClient] = field(default_factory=dict)

    def cursor(self, slug: str, status: str) -> CursorRun:
        """The run's one `CursorRun` for (slug, status)."""
        key = cursor_key(slug, status)
        if key not in self._cursors:
            self._cursors[key] = CursorRun(slug, status)
        return self._cursors[key]

    def reports(self) -> dict[str, CursorReport]:
        """What each extension's cursor found and chose, by slug (a run has one status)."""
        return {cursor.slug: cursor.report for cursor in self._cursors.values()}

    def stop(self, chunk_pages: int, chunk_seconds: float) -> Stop | None:
        """Where this chunk ends; None (never) for a plain run."""
        if not self.chunked:
            return None
        return Stop(chunk_pages or None, chunk_seconds or None)

    def client(self, key: tuple[object, ...], make: Callable[[], ChasterClient]) -> ChasterClient:
        """One client per run and settings, so pacing and the server's rate headers carry
        across chunk boundaries instead of starting afresh with every chunk."""
        if key not in self._clients:
            self._clients[key] = make()
        return self._clients[key]

    def close(self) -> None:
        for cursor in self._cursors.values():
            cursor.close()
        for client in self._clients.values():
            client.close()
        self._clients.clear()


_ACTIVE: ContextVar[RunControl | None] = ContextVar("chaster_run", default=None)


def active_run() -> RunControl | None:
    """The runner's control state, when the runner drives this extraction."""
    return _ACTIVE.get()


def plain_run() -> RunControl:
    """The control state of a plain `pipeline.run`, a run of its own in one extraction.

    Its clock starts just before dlt's load package, not at its first page: a sweep's start is
    compared with the rows' `_dlt_load_id` to tell what the sweep saw, and dlt makes the package
    (and its id) before the source runs. Started later, every row this run loaded would look
    older than the sweep, and `finish` would mark them all removed.
    """
    try:
        load_id = str(dlt.current.load_package_state()["load_id"])
    except Exception:  # iterated outside an extraction: no package, no row to compare
        return RunControl()
    # the sessions and the logs of one extraction share it, so they share one client: its
    # pacing keeps both under one budget, and the logs' budget counts from the same requests
    if load_id not in _PLAIN:
        _PLAIN.clear()
        _PLAIN[load_id] = RunControl(started_at=float(load_id) - 0.001)  # compared at 6 decimals
    return _PLAIN[load_id]


_PLAIN: dict[str, RunControl] = {}  # the control state of the plain extraction going on


def client_for(run: RunControl, settings: Settings) -> ChasterClient:
    """The run's one client for these settings: the sessions and the logs share its pacing,
    its rate headers and its counts, across chunks."""

    def make() -> ChasterClient:
        observer = run.observer
        return ChasterClient(
            settings.base_url,
            settings.token,
            counts=run.counts,
            on_wait=observer.waiting if observer is not None else None,
            requests_per_minute=settings.requests_per_minute,
            max_attempts=settings.max_attempts,
            max_rate_limit_wait=settings.max_rate_limit_wait,
            timeout=(DEFAULT_CONNECT_TIMEOUT, settings.request_timeout),
            backoff=settings.retry_backoff,
            token_origin=settings.token_origin,
        )

    return run.client((settings.base_url, settings.requests_per_minute), make)


def known_for(run: RunControl, settings: Settings) -> Known:
    """What the destination holds for this chunk: handed in by the runner, else (a plain
    `pipeline.run`, or the runner given something it could not read settings from) read here
    from the pipeline that extracts: the one fallback for not being handed it."""
    if run.known is None:
        try:
            pipeline: Any = dlt.current.pipeline()
        except Exception:  # iterated outside a pipeline: nothing was loaded before
            pipeline = None
        run.known = Known.read(pipeline, settings, run)
    return run.known


@contextmanager
def run_with(control: RunControl) -> Iterator[RunControl]:
    """Let the sources extracted inside share `control` (and stop at chunk boundaries when it
    is `chunked`) instead of each extraction being a run of its own."""
    token = _ACTIVE.set(control)
    try:
        yield control
    finally:
        _ACTIVE.reset(token)
        control.close()
