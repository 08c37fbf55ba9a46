"""Unit tests of `CursorRun`, the one owner of a cursor's state entry, on in-memory state.

What a cursor leaves in dlt's state after each step is what a killed run resumes from, so each
transition is pinned here with the whole entry it leaves.
"""

from __future__ import annotations

import copy

from chaster_sessions.cursor import CursorRun
from chaster_sessions.paging import Cursor, PageSize, walk_new_sessions
from chaster_sessions.prefetch import Prefetcher
from chaster_sessions.state import CursorState, ResourceState
from fakes import FakeClient, pid, session

SLUG = "example-extension"
STARTED = 1_000_000.0


def begun(
    entry: CursorState | None = None,
    *,
    status: str = "all",
    running: dict[str, str] | None = None,
    full_refresh: bool = False,
) -> tuple[CursorRun, ResourceState]:
    state = ResourceState(cursors={f"{SLUG}|{status}": entry} if entry is not None else {})
    cursor = CursorRun(SLUG, status)
    cursor.bind(state)
    cursor.begin(running or {}, full_refresh=full_refresh, started_at=STARTED)
    return cursor, state


def walk(cursor: CursorRun, client: FakeClient) -> list[str]:
    """The walk as the resource runs it: fetched ahead, each page's cursor saved as it is
    handed over, then `walk_finished`. Returns the sessionIds handed over."""

    def make(position):
        def pages(at, result):
            query = (cursor.slug, cursor.status)
            return walk_new_sessions(
                client.as_client(), at, query, PageSize(2, True), "auto", result
            )

        return Prefetcher(pages, position)

    handed: list[str] = []
    fetcher = cursor.fetch(make)
    for fetched in fetcher.pages():
        for item in fetched.sessions:
            cursor.saw(item)
            handed.append(item["sessionId"])
        cursor.moved(fetched.cursor)
    cursor.walk_finished()
    return handed


def test_a_fresh_cursor_over_all_statuses_begins_a_first_walk():
    cursor, state = begun(running={"s01": pid(1)})
    assert (cursor.begun, cursor.first_load, cursor.top_pass_due) == (True, True, False)
    assert cursor.running_before == {"s01": pid(1)}
    assert state == {"cursors": {f"{SLUG}|all": {"first_walk_began": STARTED, "removed": {}}}}


def test_a_fresh_cursor_of_one_status_is_no_sweep():
    cursor, state = begun(status="locked")
    assert cursor.first_load
    assert state == {"cursors": {f"{SLUG}|locked": {"removed": {}}}}


def test_a_cursor_with_a_high_mark_is_no_first_load():
    cursor, _ = begun({"high": pid(5), "order": "asc", "last_sweep": 5.0})
    assert (cursor.first_load, cursor.top_pass_due) == (False, False)
    assert cursor.entry == {"high": pid(5), "order": "asc", "last_sweep": 5.0, "removed": {}}


def test_a_cut_descending_walk_makes_a_pass_from_the_top_due():
    cut = CursorState(
        high=None, order="desc", walk_top=pid(5), walk_after=pid(2), first_walk_began=9.0
    )
    cursor, _ = begun(copy.deepcopy(cut))
    assert (cursor.first_load, cursor.top_pass_due) == (False, True)
    assert cursor.entry == {**cut, "removed": {}}  # the first walk keeps its start


def test_a_cut_ascending_walk_needs_no_pass_from_the_top():
    cursor, _ = begun(CursorState(high=pid(2), order="asc", walk_top=None, walk_after=pid(2)))
    assert cursor.top_pass_due is False


def test_full_refresh_starts_the_cursor_again_but_keeps_the_order():
    entry = CursorState(
        high=pid(9), order="desc", walk_top=pid(5), walk_after=pid(2), removed={"s03": "then"}
    )
    cursor, _ = begun(entry, full_refresh=True)
    assert (cursor.first_load, cursor.top_pass_due) == (False, False)
    assert cursor.entry == {
        "high": None,
        "order": "desc",
        "walk_top": None,
        "walk_after": None,
        "removed": {"s03": "then"},
    }


def test_the_running_set_kept_by_earlier_versions_is_dropped():
    cursor, _ = begun(CursorState(high=pid(3), order="asc", locked={"s01": pid(1)}))
    assert cursor.entry == {"high": pid(3), "order": "asc", "removed": {}}


def test_saw_back_and_gone_keep_the_removal_marks():
    cursor, _ = begun(CursorState(high=pid(3), removed={"s01": "earlier", "s02": "earlier"}))
    cursor.saw(session(1, "locked"))
    cursor.saw(session(4, "unlocked"))
    assert cursor.new_running == {"s01"}  # only what runs is new to the running set
    cursor.back("s02")
    cursor.back("s09")  # not marked: nothing to clear
    assert cursor.entry["removed"] == {}
    cursor.gone("s05", "first")
    cursor.gone("s05", "second")  # the first notice is kept
    assert cursor.entry["removed"] == {"s05": "first"}


def test_a_first_walk_that_completes_is_a_sweep_begun_when_it_began():
    client = FakeClient([session(n) for n in range(1, 6)], order="asc")
    cursor, _ = begun()
    assert walk(cursor, client) == ["s01", "s02", "s03", "s04", "s05"]
    assert (cursor.walked, cursor.walk_count, cursor.report.order) == (True, 5, "asc")
    assert cursor.fetcher is None
    assert cursor.entry == {
        "high": pid(5),
        "order": "asc",
        "walk_top": None,
        "walk_after": None,
        "removed": {},
        "last_sweep": STARTED,
    }


def test_a_cut_first_walk_is_no_sweep_until_the_pass_from_the_top_is_done():
    client = FakeClient([session(n) for n in range(1, 8)], order="desc")
    cut = CursorState(
        high=None, order="desc", walk_top=pid(5), walk_after=pid(2), first_walk_began=9.0
    )
    cursor, _ = begun(cut)
    assert walk(cursor, client) == ["s01"]  # the cut walk goes on down
    assert (cursor.walked, cursor.top_pass_due) == (False, False)
    assert cursor.entry["high"] == pid(5)
    assert "last_sweep" not in cursor.entry and cursor.entry["first_walk_began"] == 9.0
    assert walk(cursor, client) == ["s07", "s06"]  # then what arrived above it
    assert cursor.walked
    assert cursor.entry["high"] == pid(7)
    assert cursor.entry["last_sweep"] == 9.0 and "first_walk_began" not in cursor.entry
    assert [after for _, _, after in client.searches()] == [pid(2), None, pid(6)]


def test_a_later_walk_leaves_the_sweep_clock_alone():
    client = FakeClient([session(n) for n in range(1, 4)], order="asc")
    cursor, _ = begun(CursorState(high=pid(2), order="asc", last_sweep=5.0))
    assert walk(cursor, client) == ["s03"]
    assert cursor.entry["last_sweep"] == 5.0 and "first_walk_began" not in cursor.entry


def test_the_sweep_clock_starts_only_without_a_sweep_recorded():
    cursor, _ = begun(CursorState(high=pid(2)))
    cursor.start_clock(10.0)
    cursor.start_clock(20.0)
    assert cursor.entry["sweep_clock_from"] == 10.0
    swept, _ = begun(CursorState(high=pid(2), last_sweep=5.0))
    swept.start_clock(10.0)
    assert "sweep_clock_from" not in swept.entry


def test_a_sweep_position_is_made_once_and_swept_clears_it():
    cursor, _ = begun(CursorState(high=pid(2), last_sweep=5.0))
    position = cursor.sweep_position(10.0)
    assert position == Cursor()  # a new sweep walks from the start
    assert cursor.entry["sweep"] == {"started_at": 10.0}
    position.high = pid(1)
    cursor.sweep_moved(position)
    assert cursor.sweep_position(20.0) == Cursor(high=pid(1))
    assert cursor.entry["sweep"]["started_at"] == 10.0  # the first start stands
    cursor.swept(10.0)
    assert cursor.entry == {"high": pid(2), "last_sweep": 10.0, "removed": {}}


def test_bind_without_create_leaves_the_state_as_it_was():
    state = ResourceState(cursors={"other|all": {"high": pid(1)}}, pending=False)
    before = copy.deepcopy(state)
    cursor = CursorRun(SLUG, "all")
    cursor.bind(state, create=False)
    cursor.back("s01")
    cursor.reread(1)
    assert state == before
    cursor.gone("s02", "now")  # goes nowhere: nothing of this cursor is stored
    assert state == before


def test_each_chunk_writes_into_its_own_copy_of_the_state():
    cursor, first = begun(CursorState(high=pid(2)))
    second = copy.deepcopy(first)  # dlt hands the next extraction its own copy
    cursor.bind(second)
    cursor.gone("s01", "now")
    assert second["cursors"][f"{SLUG}|all"]["removed"] == {"s01": "now"}
    assert first["cursors"][f"{SLUG}|all"]["removed"] == {}
