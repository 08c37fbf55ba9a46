"""One cursor in one run: `CursorRun` owns everything about one (extension, status) walk.

Its state entry (committed by dlt with each chunk), whether this is its first load, what was
running at the previous run, its walk in progress and its fetcher, its top pass and its sweep.
Every change to the entry goes through a method here, so what a kill can leave behind is read in
one file. What the cursor decided this run (order seen, refresh chosen, page size learned) is
kept in its `CursorReport`, which the run's record shows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .client import Session
from .paging import Cursor, WalkResult
from .prefetch import Prefetcher
from .record import CursorReport
from .state import CursorState, ResourceState, cursor_key


def is_locked(session: Session) -> bool:
    lock = session.get("lock")
    return isinstance(lock, dict) and lock.get("status") == "locked"


@dataclass
class CursorRun:
    """One (extension, status) cursor across the chunks of one run."""

    slug: str
    status: str
    entry: CursorState = field(default_factory=lambda: CursorState())  # this chunk's (`bind`)
    begun: bool = False
    first_load: bool = False  # no walk of this cursor completed before this run
    running_before: dict[str, str] = field(default_factory=dict)  # sessionId -> paginationId
    new_running: set[str] = field(default_factory=set)  # running sessions first seen this run
    # an earlier run left a descending walk cut: sessions newer than that walk's top arrived
    # meanwhile, so a pass from the top follows once the cut walk is done
    top_pass_due: bool = False
    walked: bool = False  # the walk of new sessions is done
    completed: bool = False  # walk and follow-up are done
    walk_count: int | None = None  # the API's count of the status, from the walk
    fetcher: Prefetcher | None = None
    sweep_why: str | None = None  # why the periodic sweep runs in this run
    sweep_pages: int = 0
    report: CursorReport = field(default_factory=CursorReport)

    @property
    def key(self) -> str:
        return cursor_key(self.slug, self.status)

    def bind(self, state: ResourceState, *, create: bool = True) -> None:
        """Take this chunk's state entry: dlt hands each extraction its own copy of the state,
        and only what is written into that copy is committed with the chunk. `create=False`
        leaves a state without this cursor as it is (changes then go nowhere)."""
        cursors = state.setdefault("cursors", {})
        self.entry = cursors.setdefault(self.key, {}) if create else cursors.get(self.key, {})

    def begin(self, running: dict[str, str], *, full_refresh: bool, started_at: float) -> None:
        """The first time this run meets the cursor: remember what the previous runs left and
        what was `running` then (read from the destination by the runner)."""
        entry = self.entry
        self.begun = True
        self.running_before = running
        self.first_load = not entry.get("high") and not entry.get("walk_after")
        entry.pop("locked", None)  # kept in state by earlier versions; the destination knows
        if full_refresh:
            Cursor(order=entry.get("order")).save(entry)  # from the start, order kept
        elif entry.get("walk_after") and entry.get("order") == "desc":
            self.top_pass_due = True
        if self.first_load and self.status == "all":
            # once this walk is complete, in this run or a later one, it has seen every
            # session: it counts as a full sweep begun now
            entry.setdefault("first_walk_began", started_at)
        entry.setdefault("removed", {})

    # -- what the walk, the refresh and the sweep report -----------------------------------

    def saw(self, session: Session) -> None:
        """A session the walk handed over: it exists, and if it runs it is new this run."""
        self.back(session["sessionId"])
        if is_locked(session):
            self.new_running.add(session["sessionId"])

    def back(self, session_id: str) -> None:
        """The API has the session (again): it is not removed."""
        self.entry.get("removed", {}).pop(session_id, None)

    def gone(self, session_id: str, noticed_at: str) -> None:
        """A GET answered 404: `finish` marks the row removed, from the committed state."""
        self.entry.setdefault("removed", {}).setdefault(session_id, noticed_at)

    def reread(self, sessions: int) -> None:
        self.report.updated += sessions

    def learned(self, result: WalkResult) -> None:
        """Keep what a walk saw: the order, and a page size the API made it learn."""
        if result.order is not None:  # the walk ended (not cut by an error)
            self.report.order = result.order
        if result.page_size is not None:
            self.report.page_size = result.page_size

    # -- the walk of new sessions ----------------------------------------------------------

    def fetch(self, make: Callable[[Cursor], Prefetcher]) -> Prefetcher:
        """The walk in progress from the stored cursor; it keeps fetching across chunks."""
        if self.fetcher is None:
            self.fetcher = make(Cursor.from_state(self.entry))
        return self.fetcher

    def moved(self, position: Cursor) -> None:
        """The cursor moves with the data it covers: saved with the page it was fetched with."""
        position.save(self.entry)

    def walk_finished(self) -> None:
        """The fetcher's walk is complete: save where it ended; the walk of new sessions is
        done unless a pass from the top is due (then the next `fetch` starts it)."""
        fetcher = self.fetcher
        assert fetcher is not None and fetcher.finished is not None
        fetcher.close()
        self.fetcher = None
        self.moved(fetcher.finished.cursor)
        self.learned(fetcher.finished.result)
        self.walk_count = fetcher.finished.result.count
        if self.top_pass_due:
            self.top_pass_due = False  # the cut walk is done; now what arrived above it
            return
        self.walked = True
        if "first_walk_began" in self.entry:
            self.entry["last_sweep"] = self.entry.pop("first_walk_began")

    # -- the sweep clock and the sweep -----------------------------------------------------

    def start_clock(self, now: float) -> None:
        """Start the sweep period of a dataset that has no sweep recorded (`plan.sweep_due`)."""
        if self.entry.get("last_sweep") is None:
            self.entry.setdefault("sweep_clock_from", now)

    def sweep_position(self, started_at: float) -> Cursor:
        """Where the sweep in progress stands; a new sweep begins at `started_at` and walks in
        the order the cursor has seen."""
        state = self.entry.setdefault("sweep", {"started_at": started_at})
        position = Cursor.from_state(state)
        position.order = position.order or self.entry.get("order")
        return position

    def sweep_moved(self, position: Cursor) -> None:
        """The sweep moves with the page it was fetched with."""
        position.save(self.entry["sweep"])

    def sweep_stood(self, why: str, result: WalkResult, started_at: float) -> bool:
        """This chunk's part of the sweep is over: count its pages; a complete sweep becomes
        `last_sweep` (at the sweep's own start). Returns whether it is complete."""
        self.sweep_why = self.sweep_why or why
        self.sweep_pages += result.pages
        self.learned(result)
        if result.done:
            self.swept(self.entry["sweep"].get("started_at", started_at))
        return result.done

    def swept(self, began: float) -> None:
        """A walk that saw every session is complete: rows not reloaded since `began` are
        gone from the API (`finish` marks them)."""
        self.entry["last_sweep"] = began
        self.entry.pop("sweep", None)

    def close(self) -> None:
        """Stop the walk in progress, if any; what it learned so far stays in the report."""
        if self.fetcher is not None:
            self.learned(self.fetcher.result)
            self.fetcher.close()
            self.fetcher = None
