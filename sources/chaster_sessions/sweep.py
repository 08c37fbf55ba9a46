"""The periodic reconciliation sweep: every `full_sweep_every_days`, re-read every session.

The cursor sees new sessions and the refresh re-reads what was running, but three changes stay
invisible to both: a session deleted after it ended, a change to an ended session, and a session
added to an old lock (behind the cursor) that ended before the next run. A full sweep over
`status=all` sees them all; what it no longer sees is marked removed (`finish` compares each
row's load with the sweep's start, `last_sweep`). When it is due is `plan.sweep_due`'s answer.

A sweep is a walk of its own, cut at the runner's chunk boundaries like a backfill: where it
stands is saved with each page and committed with it (`CursorRun.sweep_moved`), so a killed
run's sweep goes on from its last committed chunk instead of starting again.
"""

from __future__ import annotations

from collections.abc import Generator

from .client import ChasterClient, Session
from .cursor import CursorRun
from .paging import PageSize, Stop, WalkResult, walk_new_sessions


def sweep(
    client: ChasterClient,
    cursor: CursorRun,
    why: str,
    page_size: PageSize,
    stop: Stop | None,
    now: float,
) -> Generator[list[Session], None, bool]:
    """The sweep's next pages until it is complete or `stop` is reached; each page's position
    is saved in the cursor's entry before the page is handed over. Returns whether it is done."""
    position = cursor.sweep_position(now)
    result = WalkResult()
    query = (cursor.slug, "all")
    for page in walk_new_sessions(
        client, position, query, page_size, position.order or "auto", result, stop
    ):
        cursor.sweep_moved(position)
        for session in page:
            cursor.back(session["sessionId"])  # it is there
        cursor.reread(len(page))
        yield page
    done = cursor.sweep_stood(why, result, now)
    cursor.report.refresh = describe(cursor.sweep_why or why, cursor.sweep_pages, done)
    return done


def describe(why: str, pages: int, done: bool) -> str:
    """The summary's refresh line: that a sweep ran, why, and what it cost this run."""
    counted = f"{pages} page{'s' if pages != 1 else ''}"
    left = "" if done else "; not complete, the next chunk or run goes on with it"
    return f"periodic full sweep ({why}): {counted} this run{left}"
