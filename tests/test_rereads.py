"""Unit tests of what re-reads sessions after the walk, against `FakeClient` and in-memory state:
the periodic sweep (`sweep.sweep`) cut across chunks, the refresh of what was running
(`refresh.refresh`) in both strategies, and `--session-id` (`repair.reread_sessions`).

Each pins the exact requests sent, the pages handed over, the removal marks and the sweep clock
left in the cursor's entry, and the line the summary shows.
"""

from __future__ import annotations

import copy
from collections.abc import Generator
from typing import Any

from chaster_sessions.cursor import CursorRun
from chaster_sessions.paging import PageSize, Stop
from chaster_sessions.plan import DAY, plan_refresh, sweep_due
from chaster_sessions.refresh import refresh
from chaster_sessions.repair import reread_sessions
from chaster_sessions.state import CursorState, ResourceState
from chaster_sessions.sweep import sweep
from fakes import FakeClient, numbers, pid, session

SLUG = "example-extension"
KEY = f"{SLUG}|all"
NOTICED = "2024-05-01T12:00:00+00:00"
NOW = 100 * DAY


def cursor_on(entry: CursorState, status: str = "all", running: dict[str, str] | None = None):
    state = ResourceState(cursors={f"{SLUG}|{status}": entry})
    cursor = CursorRun(SLUG, status)
    cursor.bind(state)
    cursor.begin(running or {}, full_refresh=False, started_at=NOW)
    return cursor, state


def drain(pages: Generator[list[Any], None, Any]) -> tuple[list[list[int]], Any]:
    """The pages a generator hands over, as session numbers, and what it returns."""
    handed = []
    while True:
        try:
            handed.append(numbers(next(pages)))
        except StopIteration as end:
            return handed, end.value


# -- the periodic sweep ------------------------------------------------------------------------

WHY = "the last one began 8.0 days ago; every 7 days"


def swept_entry() -> CursorState:
    return CursorState(
        high=pid(5), order="asc", last_sweep=NOW - 8 * DAY, removed={"s02": "then", "s09": "then"}
    )


def test_a_sweep_cut_by_a_stop_goes_on_in_the_next_chunk():
    client = FakeClient([session(n) for n in range(1, 6)], order="asc")
    cursor, state = cursor_on(swept_entry())
    pages, done = drain(sweep(client.as_client(), cursor, WHY, PageSize(2, True), Stop(2), NOW))
    assert (pages, done) == ([[1, 2], [3, 4]], False)
    assert client.searches() == [("all", 2, None), ("all", 2, pid(2))]
    assert cursor.entry == {
        "high": pid(5),  # the walk's cursor is not the sweep's
        "order": "asc",
        "last_sweep": NOW - 8 * DAY,  # not complete: the clock stays
        "removed": {"s09": "then"},  # s02 was seen
        "sweep": {
            "started_at": NOW,
            "high": pid(4),
            "order": "asc",
            "walk_top": None,
            "walk_after": None,
        },
    }
    assert cursor.sweep_pages == 2
    assert cursor.report.refresh == (
        f"periodic full sweep ({WHY}): 2 pages this run; not complete, the next chunk or run "
        "goes on with it"
    )
    assert cursor.report.updated == 4

    client.calls.clear()
    cursor.bind(copy.deepcopy(state))  # the next chunk's copy of the committed state
    later = NOW + 60.0
    pages, done = drain(sweep(client.as_client(), cursor, WHY, PageSize(2, True), Stop(2), later))
    assert (pages, done) == ([[5]], True)
    assert client.searches() == [("all", 2, pid(4))]
    assert cursor.entry == {
        "high": pid(5),
        "order": "asc",
        "last_sweep": NOW,  # when the sweep began, not when it ended
        "removed": {"s09": "then"},
    }
    assert cursor.sweep_pages == 3
    assert cursor.report.refresh == f"periodic full sweep ({WHY}): 3 pages this run"


def test_a_killed_runs_sweep_is_resumed_by_the_next_run():
    client = FakeClient([session(n) for n in range(1, 6)], order="asc")
    first, state = cursor_on(swept_entry())
    drain(sweep(client.as_client(), first, WHY, PageSize(2, True), Stop(1), NOW))
    client.calls.clear()

    later = NOW + 2 * DAY
    entry = copy.deepcopy(state["cursors"][KEY])
    assert sweep_due(entry, 7.0, later) == "going on with the one begun 2.0 days ago"
    cursor, _ = cursor_on(entry)
    why = sweep_due(cursor.entry, 7.0, later) or ""
    pages, done = drain(sweep(client.as_client(), cursor, why, PageSize(2, True), None, later))
    assert (pages, done) == ([[3, 4], [5]], True)
    assert client.searches() == [("all", 2, pid(2)), ("all", 2, pid(4))]
    assert cursor.entry["last_sweep"] == NOW and "sweep" not in cursor.entry
    assert cursor.report.refresh == (
        "periodic full sweep (going on with the one begun 2.0 days ago): 2 pages this run"
    )


def test_a_sweep_of_a_descending_api_walks_down_from_the_top():
    client = FakeClient([session(n) for n in range(1, 6)], order="desc")
    cursor, _ = cursor_on(CursorState(high=pid(5), order="desc", last_sweep=0.0))
    pages, done = drain(sweep(client.as_client(), cursor, WHY, PageSize(2, True), None, NOW))
    assert (pages, done) == ([[5, 4], [3, 2], [1]], True)
    assert client.searches() == [("all", 2, None), ("all", 2, pid(4)), ("all", 2, pid(2))]
    assert cursor.entry["last_sweep"] == NOW and cursor.report.order == "desc"


# -- the refresh of what was running -----------------------------------------------------------


def test_few_leavers_are_refreshed_with_the_locked_sweep_and_one_get_each():
    # at the previous run s01-s04 were running; now s01 and s04 still run, s02 has ended, s03
    # was deleted, and the walk saw s10 start
    client = FakeClient(
        [session(1, "locked"), session(2), session(4, "locked")]
        + [session(n) for n in range(5, 10)]
        + [session(10, "locked")]
    )
    running = {"s01": pid(1), "s02": pid(2), "s03": pid(3), "s04": pid(4)}
    cursor, _ = cursor_on(
        CursorState(high=pid(9), order="asc", removed={"s01": "then"}), running=running
    )
    cursor.saw(session(10, "locked"))
    cursor.walk_count = 9

    handed, _ = drain(refresh(client.as_client(), cursor, PageSize(2, True), NOTICED, NOW))
    assert handed == [[1, 4], [10], [2]]
    assert client.searches() == [("locked", 2, None), ("locked", 2, pid(4))]
    assert client.gets() == ["s02", "s03"]  # only those no longer locked
    assert (client.counts.search_requests, client.counts.get_requests) == (2, 2)
    assert cursor.entry["removed"] == {"s03": NOTICED}  # s01 is back
    assert "last_sweep" not in cursor.entry
    assert cursor.report.updated == 4
    reason = "locked sweep + 2 GETs = 3 more requests <= 5-page full sweep"
    assert cursor.report.refresh == reason
    plan = plan_refresh(running_now=3, new_running=1, running_before=4, page_size=2, all_sessions=9)
    assert plan.reason == reason


def test_a_get_answers_without_pagination_id_so_the_stored_one_is_kept():
    client = FakeClient([session(2)])
    cursor, _ = cursor_on(CursorState(high=pid(2), order="asc"), running={"s02": pid(2)})
    cursor.walk_count = 1
    pages = list(refresh(client.as_client(), cursor, PageSize(2, True), NOTICED, NOW))
    assert pages == [[{"sessionId": "s02", "lock": {"status": "unlocked"}, "paginationId": pid(2)}]]


def test_many_leavers_are_refreshed_with_a_full_sweep_that_restarts_the_clock():
    client = FakeClient([session(n) for n in range(1, 9)])  # none runs any more
    running = {f"s{n:02d}": pid(n) for n in range(1, 9)}
    cursor, _ = cursor_on(
        CursorState(high=pid(8), order="asc", last_sweep=0.0, removed={"s05": "then"}),
        running=running,
    )
    cursor.walk_count = 8

    handed, _ = drain(refresh(client.as_client(), cursor, PageSize(2, True), NOTICED, NOW))
    assert handed == [[1, 2], [3, 4], [5, 6], [7, 8]]
    assert client.searches() == [
        ("locked", 2, None),
        ("all", 2, None),
        ("all", 2, pid(2)),
        ("all", 2, pid(4)),
        ("all", 2, pid(6)),
    ]
    assert client.gets() == []
    assert cursor.entry["last_sweep"] == NOW and cursor.entry["removed"] == {}
    assert cursor.report.updated == 8
    reason = "8 more requests (locked sweep + 8 GETs) > 4-page full sweep: full sweep"
    assert cursor.report.refresh == reason
    plan = plan_refresh(running_now=0, new_running=0, running_before=8, page_size=2, all_sessions=8)
    assert (plan.strategy, plan.reason) == ("full", reason)


def test_a_locked_cursor_has_no_full_sweep_to_choose():
    client = FakeClient([session(n) for n in range(1, 9)])
    running = {f"s{n:02d}": pid(n) for n in range(1, 9)}
    cursor, _ = cursor_on(CursorState(high=pid(8), order="asc"), "locked", running)
    cursor.walk_count = 0

    handed, _ = drain(refresh(client.as_client(), cursor, PageSize(2, True), NOTICED, NOW))
    assert handed == [[n] for n in range(1, 9)]
    assert client.searches() == [("locked", 2, None)]
    assert len(client.gets()) == 8
    assert cursor.report.refresh == "locked sweep + 8 GETs = 8 more requests"
    assert "last_sweep" not in cursor.entry


# -- --session-id ------------------------------------------------------------------------------


def rereads(client: FakeClient, ids: tuple[str, ...], stored, state: ResourceState):
    cursors: dict[str, CursorRun] = {}

    def cursor_of(slug: str, create: bool) -> CursorRun:
        cursor = cursors.setdefault(slug, CursorRun(slug, "all"))
        cursor.bind(state, create=create)
        return cursor

    found = list(reread_sessions(client.as_client(), ids, stored, cursor_of, NOTICED))
    return found, cursors


def test_session_ids_are_re_read_added_or_marked_removed():
    client = FakeClient([session(1), {**session(2), "slug": SLUG}])
    stored = {"s01": (SLUG, pid(1)), "s03": (SLUG, pid(3))}
    state = ResourceState()
    found, cursors = rereads(client, ("s01", "s02", "s03", "s04"), stored, state)
    assert [(session_id, what) for session_id, what, _ in found] == [
        ("s01", "re-read"),
        ("s02", "added"),
        ("s03", "gone (HTTP 404), marked removed"),
        ("s04", "gone (HTTP 404), and not stored either"),
    ]
    assert [fresh and fresh["paginationId"] for _, _, fresh in found] == [pid(1), None, None, None]
    assert client.gets() == ["s01", "s02", "s03", "s04"]
    assert client.searches() == []
    assert client.counts.by_slug == {SLUG: 2, "": 2}  # s02 and s04 are not stored
    assert state == {"cursors": {KEY: {"removed": {"s03": NOTICED}}}}
    assert cursors[SLUG].report.updated == 2


def test_a_session_found_adds_no_cursor_to_the_state():
    client = FakeClient([session(1)])
    state = ResourceState(cursors={"other|all": {"high": pid(1)}})
    found, _ = rereads(client, ("s01",), {"s01": (SLUG, pid(1))}, state)
    assert [what for _, what, _ in found] == ["re-read"]
    assert state == {"cursors": {"other|all": {"high": pid(1)}}}


def test_a_session_back_from_removed_loses_its_mark():
    client = FakeClient([session(1)])
    state = ResourceState(cursors={KEY: {"removed": {"s01": "then", "s02": "then"}}})
    rereads(client, ("s01",), {"s01": (SLUG, pid(1))}, state)
    assert state == {"cursors": {KEY: {"removed": {"s02": "then"}}}}
