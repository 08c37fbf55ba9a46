"""Bringing back to date the sessions that were running at the previous run, at least cost.

The cursor only sees new sessions; locks that were running end, change or vanish behind it. The
API has no "changed since" filter, so there are two ways to learn what happened to them:

- (A) sweep `status=locked` again and GET each session that left the locked set;
- (B) sweep every session again.

`plan.plan_refresh` is the pure arithmetic of which costs fewer requests; `refresh` runs the
choice. What was running at the previous run is read from the destination by the runner and
handed to the cursor (`CursorRun.running_before`): it is the data's own truth, and state stays
the size of the cursors.
"""

from __future__ import annotations

from collections.abc import Generator

from .client import ChasterClient, Session
from .cursor import CursorRun
from .paging import Cursor, PageSize, WalkResult, walk_new_sessions
from .plan import plan_refresh


def refresh(
    client: ChasterClient, cursor: CursorRun, page_size: PageSize, noticed_at: str, now: float
) -> Generator[list[Session], None, None]:
    """Pages of re-read sessions; the cursor ends with the removals found (404s)."""
    first_walk = WalkResult()
    locked = _walk(client, cursor, "locked", page_size, first_walk)
    first = next(locked, [])
    plan = plan_refresh(
        running_now=first_walk.count if first_walk.count is not None else len(first),
        new_running=len(cursor.new_running),
        running_before=len(cursor.running_before),
        page_size=page_size.size,
        all_sessions=cursor.walk_count if cursor.status == "all" else None,
    )
    cursor.report.refresh = plan.reason
    if plan.strategy == "full":
        locked.close()
        everything = WalkResult()
        for page in _walk(client, cursor, "all", page_size, everything):
            for session in page:
                cursor.back(session["sessionId"])
            cursor.reread(len(page))
            yield page
        cursor.learned(everything)
        cursor.swept(now)
        return
    locked_now: set[str] = set()
    for page in (first, *locked) if first else ():
        for session in page:
            cursor.back(session["sessionId"])
            locked_now.add(session["sessionId"])
        cursor.reread(len(page))
        yield page
    cursor.learned(first_walk)
    for session_id, pagination_id in cursor.running_before.items():
        if session_id in locked_now:
            continue
        fresh = client.get_session(session_id)
        if fresh is None:
            cursor.gone(session_id, noticed_at)
            continue
        cursor.back(session_id)
        fresh["paginationId"] = pagination_id  # GET answers without it
        cursor.reread(1)
        yield [fresh]


def _walk(
    client: ChasterClient, cursor: CursorRun, status: str, page_size: PageSize, result: WalkResult
) -> Generator[list[Session], None, None]:
    order = cursor.entry.get("order")
    return walk_new_sessions(
        client, Cursor(order=order), (cursor.slug, status), page_size, order or "auto", result
    )
