"""The fetch-ahead thread: bounded, in order, errors in their place, stoppable.

The walk here is a plain generator standing in for the HTTP walk (the end-to-end tests run the
real one); what is tested is the hand-over between the two threads.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from chaster_sessions.errors import PagingError
from chaster_sessions.paging import Cursor, WalkResult
from chaster_sessions.prefetch import Prefetcher

PAGES = 40


def _walk(produced: list[int], fail_at: int | None = None):
    def walk(cursor: Cursor, result: WalkResult) -> Iterator[list[dict]]:
        for n in range(PAGES):
            if n == fail_at:
                raise PagingError(f"page {n} is broken")
            cursor.high = f"{n:04d}"
            result.count = PAGES
            produced.append(n)
            yield [{"n": n}]
        result.done = True

    return walk


def _wait_until_still(produced: list[int]) -> None:
    last = -1
    while len(produced) != last:
        last = len(produced)
        time.sleep(0.2)


def test_it_fetches_ahead_but_never_more_than_its_depth():
    produced: list[int] = []
    fetcher = Prefetcher(_walk(produced), Cursor(), depth=5)
    _wait_until_still(produced)
    # five pages wait in the queue, a sixth is in the hand of the thread that cannot put it
    assert len(produced) == 6
    pages = fetcher.pages()
    first = next(pages)
    assert (first.sessions, first.cursor.high) == ([{"n": 0}], "0000")
    rest = list(pages)
    assert [p.sessions[0]["n"] for p in rest] == list(range(1, PAGES))
    assert rest[-1].cursor.high == f"{PAGES - 1:04d}"  # each page carries its own cursor
    assert fetcher.finished is not None and fetcher.finished.result.done
    fetcher.close()


def test_an_error_comes_after_the_pages_before_it():
    fetcher = Prefetcher(_walk([], fail_at=7), Cursor(), depth=3)
    seen = []
    with pytest.raises(PagingError, match="page 7 is broken"):
        for page in fetcher.pages():
            seen.append(page.sessions[0]["n"])
    assert seen == list(range(7))
    fetcher.close()


def test_reading_can_pause_and_go_on_and_close_stops_the_thread():
    produced: list[int] = []
    fetcher = Prefetcher(_walk(produced), Cursor(), depth=4)
    for page in fetcher.pages():  # a chunk boundary after three pages
        if page.sessions[0]["n"] == 2:
            break
    assert not fetcher.done_next(wait=0.01)
    assert [p.sessions[0]["n"] for p in fetcher.pages()][:2] == [3, 4]  # the peeked one first
    fetcher.close()
    assert not fetcher._thread.is_alive()
