"""Fetching ahead: the walk's requests go on while dlt normalises and loads what came before.

The API budget (100 requests a minute) is the limit users live with. Run one after another,
every commit of a chunk would leave it idle. A `Prefetcher` runs one walk on a background
thread and hands its pages over through a bounded queue, each with the cursor as it stands after
that page. The resource saves that cursor into dlt state only when it hands the page to dlt, so
the stored cursor still moves only with committed data: pages fetched ahead and lost in a crash
are fetched again by the next run. The queue holds at most `PREFETCH_PAGES` pages, so memory
stays bounded however large the backfill.
"""

from __future__ import annotations

import copy
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from . import interrupts
from .client import Session
from .paging import Cursor, WalkResult

# A page of 100 sessions is about 0.55 MB of JSON and 1.5 MB parsed, so 30 pages hold 45 MB at
# most: 6 s of pages at three times the documented budget, longer than a commit takes there.
PREFETCH_PAGES = 30


@dataclass
class Fetched:
    """One page and where the walk stood after it."""

    sessions: list[Session]
    cursor: Cursor
    count: int | None


@dataclass
class _Finished:
    cursor: Cursor
    result: WalkResult


@dataclass
class _Failed:
    error: BaseException


class Prefetcher:
    """Runs `walk(cursor, result)` on a thread, at most `depth` pages ahead of its reader."""

    def __init__(
        self,
        walk: Callable[[Cursor, WalkResult], Iterator[list[Session]]],
        cursor: Cursor,
        depth: int = PREFETCH_PAGES,
    ) -> None:
        self._queue: queue.Queue[Fetched | _Finished | _Failed] = queue.Queue(maxsize=depth)
        self._cancelled = threading.Event()
        self._cursor = cursor
        self._result = WalkResult()
        self._walk = walk
        self.finished: _Finished | None = None
        self._peeked: Fetched | _Finished | _Failed | None = None
        self._thread = threading.Thread(target=self._run, name="chaster-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item: Fetched | _Finished | _Failed) -> bool:
        while not self._cancelled.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for page in self._walk(self._cursor, self._result):
                fetched = Fetched(page, copy.copy(self._cursor), self._result.count)
                if not self._put(fetched):
                    return
            self._put(_Finished(copy.copy(self._cursor), copy.copy(self._result)))
        except BaseException as exc:  # handed to the reader, raised there
            self._put(_Failed(exc))

    def _next(self, timeout: float | None = None) -> Fetched | _Finished | _Failed:
        if self._peeked is not None:
            item, self._peeked = self._peeked, None
            return item
        return self._queue.get(timeout=timeout)

    @property
    def result(self) -> WalkResult:
        """The walk's result as it stands: a page size it learned is there at once, the order
        once the walk ended (read by the cursor when a run ends with the walk unfinished)."""
        return self._result

    def waiting(self) -> bool:
        """Whether the reader has caught up: the next page is not fetched yet."""
        return self._peeked is None and self._queue.empty() and self.finished is None

    def done_next(self, wait: float = 0.05) -> bool:
        """Whether the walk ended with the page just handed over (waiting briefly to know):
        then a chunk boundary there would only make an empty chunk."""
        if self.finished is not None:
            return True
        try:
            self._peeked = self._next(timeout=wait)
        except queue.Empty:
            return False
        return isinstance(self._peeked, _Finished)

    def pages(self) -> Iterator[Fetched]:
        """The pages in order; ends when the walk is done (see `finished`), raises its error."""
        while self.finished is None:
            item = self._next()
            if isinstance(item, _Failed):
                self.finished = _Finished(self._cursor, WalkResult())
                raise item.error
            if isinstance(item, _Finished):
                self.finished = item
                return
            yield item

    def close(self) -> None:
        """Stop fetching (a run that ends early, or fails) and let the thread end. A run asked
        to stop by a signal does not wait: the thread may be in a pacing wait of many seconds
        at a low budget, and as a daemon it ends with the process."""
        self._cancelled.set()
        self._thread.join(timeout=0 if interrupts.stopping() else 5)
