"""The pure decisions of a run, each with unit tests: what follows a cursor's walk, whether a
periodic sweep is due, and which refresh of the running sessions costs fewer requests.

Nothing here sends a request or touches state; the resource (`sessions.py`) acts on the answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

from .state import CursorState

DAY = 86_400.0


class FollowUp(Enum):
    """What a cursor does once its walk of new sessions is complete."""

    NOTHING = "nothing"
    SWEPT = "swept"  # the walk itself saw every session (`--full-refresh` on status all)
    SWEEP = "sweep"  # the periodic full sweep is due: re-read every session
    REFRESH = "refresh"  # re-read what was running at the previous run


def follow_up(
    *, status: str, refresh: bool, full_refresh: bool, first_load: bool, sweep_due: str | None
) -> FollowUp:
    """What follows the walk. A first load has nothing to re-read; only a cursor over every
    session (`all`) can sweep; `locked` refreshes its running set; the other statuses only walk.
    """
    if full_refresh:
        return FollowUp.SWEPT if status == "all" else FollowUp.NOTHING
    if not refresh or first_load:
        return FollowUp.NOTHING
    if status == "all" and sweep_due:
        return FollowUp.SWEEP
    if status in ("all", "locked"):
        return FollowUp.REFRESH
    return FollowUp.NOTHING


def sweep_due(entry: CursorState, every_days: float, now: float) -> str | None:
    """Why a sweep runs now, or None when it is not due. A sweep in progress always goes on.

    A dataset loaded before sweeps were recorded has no `last_sweep`: its period counts from
    `sweep_clock_from`, the first run that saw it so (`CursorRun.start_clock`), not from the
    start of time, so upgrading does not make the next run a full reload.
    """
    if "sweep" in entry:
        begun = entry["sweep"].get("started_at", now)
        return f"going on with the one begun {(now - begun) / DAY:.1f} days ago"
    if every_days == 0:
        return "every run (full_sweep_every_days = 0)"
    last = entry.get("last_sweep")
    if last is not None and now - last >= every_days * DAY:
        return f"the last one began {(now - last) / DAY:.1f} days ago; every {every_days:g} days"
    clock = entry.get("sweep_clock_from")
    if last is None and clock is not None and now - clock >= every_days * DAY:
        return f"none recorded in {(now - clock) / DAY:.1f} days; every {every_days:g} days"
    return None


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
