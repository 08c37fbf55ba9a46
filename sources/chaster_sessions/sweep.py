"""The periodic reconciliation sweep: every `full_sweep_every_days`, re-read every session.

The cursor sees new sessions and the refresh re-reads what was running, but three changes stay
invisible to both: a session deleted after it ended, a change to an ended session, and a session
added to an old lock (behind the cursor) that ended before the next run. A full sweep over
`status=all` sees them all; what it no longer sees is marked removed (`runner.mark_removed`
compares each row's load with the sweep's start, `last_sweep`).

A sweep is a walk of its own, cut at the runner's chunk boundaries like a backfill: where it
stands (`SweepState`) is saved with each page and committed with it, so a killed run's sweep
goes on from its last committed chunk instead of starting again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .client import ChasterClient, Session
from .paging import Cursor, CursorState, PageSize, Stop, SweepState, WalkResult, walk_new_sessions

DAY = 86_400.0


def sweep_due(entry: CursorState, every_days: float, now: float) -> str | None:
    """Why a sweep runs now, or None when it is not due. A sweep in progress always goes on.

    A dataset loaded before sweeps were recorded has no `last_sweep`: its period counts from
    `sweep_clock_from`, the first run that saw it so (`start_clock`), not from the start of time,
    so upgrading does not make the next run a full reload.
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


def start_clock(entry: CursorState, now: float) -> None:
    """Start the sweep period of a dataset that has no sweep recorded (see `sweep_due`)."""
    if entry.get("last_sweep") is None:
        entry.setdefault("sweep_clock_from", now)


@dataclass
class Sweep:
    """One extension's sweep in this run; `pages` may be called once per chunk."""

    client: ChasterClient
    entry: CursorState
    slug: str
    page_size: PageSize
    order: str | None
    started_at: float  # this run's start: the sweep's start if it begins now
    why: str
    pages_fetched: int = 0
    done: bool = False

    def pages(self, stop: Stop | None) -> Iterator[list[Session]]:
        """The sweep's next pages until it is complete or `stop` is reached; each page's
        position is saved in `entry["sweep"]` before the page is handed over."""
        state: SweepState = self.entry.setdefault("sweep", {"started_at": self.started_at})
        cursor = Cursor.from_state(state)
        cursor.order = cursor.order or self.order
        removed = self.entry.setdefault("removed", {})
        result = WalkResult()
        walk = walk_new_sessions(
            self.client,
            cursor,
            (self.slug, "all"),
            self.page_size,
            cursor.order or "auto",
            result,
            stop,
        )
        for page in walk:
            cursor.save(state)
            for session in page:
                removed.pop(session["sessionId"], None)  # it is there
            self.client.stats.count_updated(self.slug, len(page))
            yield page
        self.pages_fetched += result.pages
        if result.done:
            self.entry["last_sweep"] = state.get("started_at", self.started_at)
            del self.entry["sweep"]
            self.done = True
        self.client.stats.refresh[self.slug] = self.describe()

    def describe(self) -> str:
        """The summary's refresh line: that a sweep ran, why, and what it cost this run."""
        pages = f"{self.pages_fetched} page{'s' if self.pages_fetched != 1 else ''}"
        left = "" if self.done else "; not complete, the next chunk or run goes on with it"
        return f"periodic full sweep ({self.why}): {pages} this run{left}"
