"""What carries one run across its chunks, and when a chunk ends.

A plain `pipeline.run(chaster_source(...))` is one run in one chunk: the source loads everything
and never stops early. The runner (`runner.load`) instead commits a long load every
`chunk_pages` pages or `chunk_seconds` seconds, so a kill loses at most one chunk. It runs the
same source again and again in one `RunControl`, which remembers what the run has begun and
finished, and what was running before it started, so each chunk goes on where the last stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import dlt

from .client import ChasterClient
from .paging import Cursor, CursorState, Stop
from .prefetch import Prefetcher
from .stats import RunStats
from .sweep import Sweep


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class RunControl:
    """Control state of one run; a plain `pipeline.run` gets a fresh one per extraction."""

    stats: RunStats = field(default_factory=RunStats)
    chunked: bool = False  # the runner commits chunk by chunk; a plain run never stops early
    started: set[str] = field(default_factory=set)  # cursor keys this run has begun
    completed: set[str] = field(default_factory=set)  # cursor keys this run has finished
    first_load: dict[str, bool] = field(default_factory=dict)  # key -> no walk completed before
    locked_before: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> running then
    new_locked: dict[str, set[str]] = field(default_factory=dict)  # key -> running, new this run
    # keys whose descending walk an earlier run left cut: sessions newer than that walk's top
    # arrived meanwhile, so a pass from the top follows once the cut walk is done
    top_pass_due: set[str] = field(default_factory=set)
    walked: set[str] = field(default_factory=set)  # keys whose walk of new sessions is done
    walk_counts: dict[str, int | None] = field(default_factory=dict)  # key -> the API's count
    sweeps: dict[str, Sweep] = field(default_factory=dict)  # key -> its periodic full sweep
    extractions: int = 0  # times the source was extracted in this run (one per chunk)
    started_at: float = field(default_factory=time.time)  # compared with dlt load ids
    noticed_at: str = field(default_factory=_now_iso)  # when a removal is recorded
    _clients: dict[tuple[object, ...], ChasterClient] = field(default_factory=dict)
    _fetchers: dict[str, Prefetcher] = field(default_factory=dict)

    def begin(
        self, key: str, entry: CursorState, running: dict[str, str], *, full_refresh: bool
    ) -> None:
        """First time this run meets a cursor: remember what the previous runs left, and what
        was `running` then (from the destination)."""
        self.started.add(key)
        self.locked_before[key] = running
        self.first_load[key] = not entry.get("high") and not entry.get("walk_after")
        entry.pop("locked", None)  # kept in state by earlier versions; the destination knows
        if full_refresh:
            Cursor(order=entry.get("order")).save(entry)  # from the start, order kept
        elif entry.get("walk_after") and entry.get("order") == "desc":
            self.top_pass_due.add(key)
        self.new_locked.setdefault(key, set())

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

    def fetcher(self, key: str, make: Callable[[], Prefetcher]) -> Prefetcher:
        """The walk in progress for a cursor key: it keeps fetching across chunk boundaries."""
        if key not in self._fetchers:
            self._fetchers[key] = make()
        return self._fetchers[key]

    def walk_done(self, key: str) -> None:
        self._fetchers.pop(key).close()

    def close(self) -> None:
        for fetcher in self._fetchers.values():
            fetcher.close()
        self._fetchers.clear()
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
        package_made = float(dlt.current.load_package_state()["load_id"])
    except Exception:  # iterated outside an extraction: no package, no row to compare
        return RunControl()
    return RunControl(started_at=package_made - 0.001)  # the id is compared at 6 decimals


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
