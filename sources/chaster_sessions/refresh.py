"""Bringing back to date the sessions that were running at the previous run, at least cost.

The cursor only sees new sessions; locks that were running end, change or vanish behind it. The
API has no "changed since" filter, so there are two ways to learn what happened to them:

- (A) sweep `status=locked` again and GET each session that left the locked set;
- (B) sweep every session again.

`plan_refresh` is the pure arithmetic of which costs fewer requests; `Refresh` runs the choice.
What was running at the previous run is read from the destination (`running_in_destination`),
not kept in dlt state: it is the data's own truth, and state stays the size of the cursors.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Literal

import dlt

from .client import ChasterClient, Session
from .destination import running_sessions
from .paging import Cursor, CursorState, PageSize, WalkResult, walk_new_sessions


def pages_for(count: int, page_size: int) -> int:
    """Search requests a sweep of `count` sessions takes (one even when there are none)."""
    return max(1, -(-count // page_size))


@dataclass(frozen=True)
class RefreshPlan:
    strategy: Literal["locked", "full"]
    more_requests: int  # requests after the first locked page
    leavers: int  # sessions estimated to have left the locked set
    reason: str  # for the summary


def plan_refresh(
    *,
    running_now: int,
    new_running: int,
    running_before: int,
    page_size: int,
    all_sessions: int | None,
) -> RefreshPlan:
    """Choose (A) locked sweep + GETs or (B) full sweep from what the first locked page said.

    `running_now` is that page's `count`; `new_running` of them were first seen this run, so the
    rest were running before. Each of the `running_before` that is no longer running costs a GET
    under (A). (B) is possible only when the run loads every status (`all_sessions` is known).
    """
    still_running = max(0, running_now - new_running)
    leavers = max(0, running_before - still_running)
    cost_a = pages_for(running_now, page_size) - 1 + leavers
    cost_b = pages_for(all_sessions, page_size) if all_sessions is not None else None
    if cost_b is not None and cost_b < cost_a:
        return RefreshPlan(
            "full",
            cost_b,
            leavers,
            f"{cost_a} more requests (locked sweep + {leavers} GETs) > {cost_b}-page full "
            "sweep: full sweep",
        )
    more = f"{cost_a} more request{'s' if cost_a != 1 else ''}"
    reason = f"locked sweep + {leavers} GETs = {more}"
    if cost_b is not None:
        reason += f" <= {cost_b}-page full sweep"
    return RefreshPlan("locked", cost_a, leavers, reason)


def current_pipeline() -> dlt.Pipeline | None:
    """The pipeline extracting right now, or None when a source is iterated outside one (then
    nothing was loaded before, as far as the source can tell)."""
    try:
        return dlt.current.pipeline()
    except Exception:
        return None


def running_in_destination(slug: str) -> dict[str, str]:
    """sessionId -> paginationId of the extension's sessions stored as running (and not marked
    removed), from the pipeline that is extracting; empty before the first load."""
    pipeline = current_pipeline()
    if pipeline is None:
        return {}
    return running_sessions(pipeline, [slug]).get(slug, {})


def is_locked(session: Session) -> bool:
    lock = session.get("lock")
    return isinstance(lock, dict) and lock.get("status") == "locked"


@dataclass
class Refresh:
    """One extension's refresh: what was running before, and where to record what it finds."""

    client: ChasterClient
    entry: CursorState
    slug: str
    status: str  # the run's status filter: "all" or "locked"
    page_size: PageSize
    order: str | None
    locked_before: dict[str, str]  # sessionId -> paginationId, running at the previous run
    new_locked: set[str]  # running sessions first loaded by this run
    noticed_at: str  # the time a 404 is recorded with
    started_at: float  # the run's start: rows of a full sweep not reloaded since are gone

    def sessions(self, all_sessions: int | None) -> Iterator[list[Session]]:
        """Pages of re-read sessions; `entry` ends with the removals found (404s)."""
        removed = self.entry.setdefault("removed", {})
        first_walk = WalkResult()
        sweep = self._walk("locked", first_walk)
        first = next(sweep, [])
        plan = plan_refresh(
            running_now=first_walk.count if first_walk.count is not None else len(first),
            new_running=len(self.new_locked),
            running_before=len(self.locked_before),
            page_size=self.page_size.size,
            all_sessions=all_sessions if self.status == "all" else None,
        )
        self.client.stats.refresh[self.slug] = plan.reason
        if plan.strategy == "full":
            sweep.close()
            for page in self._walk("all", WalkResult()):
                for session in page:
                    removed.pop(session["sessionId"], None)
                self.client.stats.count_updated(self.slug, len(page))
                yield page
            self.entry["last_sweep"] = self.started_at
            return
        locked_now: set[str] = set()
        for page in (first, *sweep) if first else ():
            for session in page:
                removed.pop(session["sessionId"], None)
                locked_now.add(session["sessionId"])
            self.client.stats.count_updated(self.slug, len(page))
            yield page
        for session_id, pagination_id in self.locked_before.items():
            if session_id in locked_now:
                continue
            fresh = self.client.get_session(session_id)
            if fresh is None:
                removed.setdefault(session_id, self.noticed_at)
                continue
            removed.pop(session_id, None)
            fresh["paginationId"] = pagination_id  # GET answers without it
            self.client.stats.count_updated(self.slug, 1)
            yield [fresh]

    def _walk(self, status: str, result: WalkResult) -> Generator[list[Session], None, None]:
        return walk_new_sessions(
            self.client,
            Cursor(order=self.order),
            (self.slug, status),
            self.page_size,
            self.order or "auto",
            result,
        )
