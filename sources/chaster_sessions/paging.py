"""The walk over search pages: the cursor, the API's sort order, the page size, and the guards.

This is the only paging loop. It works whichever way the API sorts (the order is undocumented),
learns the largest page the API accepts, and refuses to loop forever or skip data when the API
answers inconsistently. What the cursor holds between runs is written down once, in
`state.py`. A walk's findings (the order it saw, a page size it had to learn) are returned in its
`WalkResult`, not written anywhere else.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from .client import ChasterClient, Session
from .errors import ConfigError, PageSizeRejectedError, PagingError
from .settings import MAX_PAGE_SIZE
from .state import Position, ResourceState


@dataclass
class Cursor:
    """Where the walk of one (extension, status) stands; read from and written to CursorState.

    `high` is the largest paginationId below which everything has been loaded. A descending walk
    that is cut into chunks keeps `walk_top` (the newest id of the walk) and `walk_after` (the
    last id loaded) so the next chunk continues downwards, and only then moves `high` up.
    """

    high: str | None = None
    order: str | None = None
    walk_top: str | None = None
    walk_after: str | None = None

    @classmethod
    def from_state(cls, state: Position | None) -> Cursor:
        state = state or {}
        return cls(
            state.get("high"), state.get("order"), state.get("walk_top"), state.get("walk_after")
        )

    def save(self, state: Position) -> None:
        state["high"], state["order"] = self.high, self.order
        state["walk_top"], state["walk_after"] = self.walk_top, self.walk_after

    @property
    def mid_walk(self) -> bool:
        """A descending walk was cut short (by a chunk boundary or a killed run)."""
        return self.walk_after is not None


@dataclass
class PageSize:
    """The `limit` sent with each search; shrinks to what the API accepts unless set by hand.

    A size learned from a refusal is kept in state (`page_cap`) by `remember`, from the thread
    that owns dlt's state, never from the one that fetches.
    """

    size: int
    explicit: bool

    @classmethod
    def from_setting(cls, page_size: int | None, state: ResourceState) -> PageSize:
        if page_size is not None:
            return cls(page_size, True)
        return cls(min(MAX_PAGE_SIZE, state.get("page_cap", MAX_PAGE_SIZE)), False)

    def remember(self, state: ResourceState) -> None:
        if not self.explicit and self.size < state.get("page_cap", MAX_PAGE_SIZE):
            state["page_cap"] = self.size

    def shrink(self, rejected: PageSizeRejectedError) -> str:
        """Step down after a refusal: to the cap the API named, else by half. Returns why."""
        if self.explicit:
            cap = f" (at most {rejected.cap})" if rejected.cap else ""
            raise ConfigError(
                f"page_size {self.size} is more than the API accepts{cap}: {rejected.message}; "
                "lower SOURCES__CHASTER__PAGE_SIZE, or unset it to use the largest size the API "
                "accepts"
            )
        smaller = rejected.cap if rejected.cap and rejected.cap < self.size else self.size // 2
        if smaller < 1:
            raise rejected
        why = f"{smaller} (the API refused {self.size}: {rejected.message.split(': ', 1)[-1]})"
        self.size = smaller
        return why


@dataclass
class WalkResult:
    """What one walk found, for its cursor to keep and the run's record to show."""

    done: bool = False  # False when the walk stopped at a chunk boundary and must continue
    pages: int = 0
    count: int | None = None  # the API's total for the filter
    order: str | None = None  # once it ended, the order it saw or was told; else "unknown"
    page_size: str | None = None  # the page size the API made the walk learn, and why


# Under a rate budget the reader waits for pages most of the time; committing then costs no
# request time, and keeps what the last commit of the run (after the last page) must carry small.
# Only a wait for the budget counts: a reader that merely caught up on an unthrottled run would
# cut it into many small, costly merges.
IDLE_COMMIT_PAGES = 5


class Stop:
    """Where the walks of one chunk must pause so the runner can commit: after N pages (over
    every walk of the chunk) or at a deadline, or after a few pages when the reader would only
    wait for the API anyway. A plain `pipeline.run` has none."""

    def __init__(self, max_pages: int | None = None, seconds: float | None = None) -> None:
        self.max_pages = max_pages
        self.deadline = time.monotonic() + seconds if seconds else None
        self.pages: float = 0  # a page of sessions; the logs count a page per 100 entries

    def reached(self, waiting_for_api: bool = False) -> bool:
        return (
            (self.max_pages is not None and self.pages >= self.max_pages)
            or (self.deadline is not None and time.monotonic() >= self.deadline)
            or (waiting_for_api and self.pages >= IDLE_COMMIT_PAGES)
        )


def fetch_page(
    client: ChasterClient,
    query: tuple[str, str],
    page_size: PageSize,
    after: str | None,
    result: WalkResult,
) -> dict[str, Any]:
    """One search page, stepping the page size down while the API refuses it (the step and
    its reason go into `result`)."""
    while True:
        try:
            return client.search(*query, page_size.size, after)
        except PageSizeRejectedError as rejected:
            result.page_size = page_size.shrink(rejected)


def walk_new_sessions(
    client: ChasterClient,
    cursor: Cursor,
    query: tuple[str, str],
    page_size: PageSize,
    sort_order: str,
    result: WalkResult,
    stop: Stop | None = None,
) -> Generator[list[Session], None, None]:
    """Yield pages of sessions not loaded before, moving `cursor` as each page is handed over.

    `query` is (extension slug, status filter). Ascending walks start after `high`; descending
    walks start at the top (or where a cut walk stopped) and stop at the first id at or below
    `high`. The order is taken from the data unless forced, and a page that contradicts it is an
    error rather than a silent gap.
    """
    slug = query[0]
    if sort_order in ("asc", "desc"):
        cursor.order = sort_order
    after = cursor.walk_after or (cursor.high if cursor.order == "asc" else None)
    used_cursors: set[str | None] = {after}
    while True:
        page = fetch_page(client, query, page_size, after, result)
        result.pages += 1
        if stop is not None:
            stop.pages += 1
        results = page["results"]
        has_more = page.get("hasMore") is True
        if isinstance(page.get("count"), int):
            result.count = page["count"]
        ids = _pagination_ids(slug, results, has_more, after)
        if ids and ids[-1] in used_cursors:
            raise PagingError(
                f"search for {slug!r} repeated cursor {ids[-1]!r}: the API ignored "
                "paginationLastId; stopping rather than looping"
            )
        _check_order(cursor, sort_order, slug, after, ids)
        high = cursor.high
        new = [s for s, pid in zip(results, ids, strict=False) if high is None or pid > high]
        _advance(cursor, ids, bool(new))
        if new:
            yield new
        reached_known = cursor.order == "desc" and len(new) < len(ids)
        if reached_known or not has_more:
            _finish_walk(cursor)
            result.done = True
            break
        # Ascending walks continue after `high`, which also skips ahead a walk that began at the
        # oldest session while the order was still unknown.
        after = cursor.high if cursor.order == "asc" else ids[-1]
        used_cursors.add(after)
        if stop is not None and stop.reached():
            break
    result.order = cursor.order or "unknown"


def _advance(cursor: Cursor, ids: list[str], any_new: bool) -> None:
    """Move the cursor past a page: an ascending walk raises `high`; a descending one keeps the
    top of the walk and where it stands, and raises `high` only once complete (`_finish_walk`)."""
    if cursor.order == "asc":
        if ids:
            cursor.high = max(ids[-1], cursor.high) if cursor.high else ids[-1]
        cursor.walk_top = cursor.walk_after = None
    elif ids:
        if any_new:
            cursor.walk_top = cursor.walk_top or ids[0]
        cursor.walk_after = ids[-1]


def _check_order(
    cursor: Cursor, sort_order: str, slug: str, after: str | None, ids: list[str]
) -> None:
    """Learn the order from a page, or refuse a page that contradicts the order known."""
    detected = order_of([after, *ids])
    if cursor.order is None:
        cursor.order = detected
        return
    if detected in (None, cursor.order):
        return
    if order_of(list(ids)) in (None, cursor.order):
        raise PagingError(
            f"search for {slug!r} went back past cursor {after!r}: the API ignored "
            "paginationLastId; stopping rather than looping"
        )
    how = "configured" if sort_order != "auto" else "seen before"
    raise PagingError(
        f"search for {slug!r} returned results in {detected}ending order, but "
        f"{cursor.order}ending was {how}; set SOURCES__CHASTER__SORT_ORDER=auto or report it"
    )


def _pagination_ids(slug: str, results: list[Any], has_more: bool, after: str | None) -> list[str]:
    """The page's paginationIds, refusing pages that would make the walk loop or skip."""
    if not results and has_more:
        raise PagingError(
            f"search for {slug!r} returned an empty page with hasMore=true after {after!r}; "
            "stopping rather than looping"
        )
    ids = []
    for item in results:
        pid = item.get("paginationId") if isinstance(item, dict) else None
        if not isinstance(pid, str) or not pid:
            session_id = item.get("sessionId") if isinstance(item, dict) else None
            raise PagingError(
                f"search for {slug!r} returned a session without paginationId "
                f"(sessionId {session_id!r}); cannot page past it"
            )
        ids.append(pid)
    return ids


def _finish_walk(cursor: Cursor) -> None:
    """A completed walk makes its newest id the new high-water mark."""
    top = cursor.walk_top
    if top is not None:
        cursor.high = max(top, cursor.high) if cursor.high else top
    cursor.walk_top = cursor.walk_after = None


def order_of(ids: list[str | None]) -> str | None:
    """The order a run of ids shows: "asc", "desc", or None when it shows none."""
    for a, b in itertools.pairwise(ids):
        if a is None or b is None or a == b:
            continue
        return "asc" if a < b else "desc"
    return None
