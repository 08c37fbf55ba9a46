"""Unit tests of the walk over search pages (`paging.walk_new_sessions`) against `FakeClient`.

They pin what the end-to-end tests only see from outside: which requests a walk sends, when the
cursor moves, how a cut descending walk goes on, and which answers it refuses.
"""

from __future__ import annotations

import pytest

from chaster_sessions.errors import PagingError
from chaster_sessions.paging import Cursor, PageSize, Stop, WalkResult, walk_new_sessions
from chaster_sessions.state import Position
from fakes import FakeClient, ScriptedClient, numbers, pid, session

SLUG = "example-extension"


def walk(
    client: FakeClient | ScriptedClient,
    cursor: Cursor,
    *,
    size: int = 2,
    sort_order: str = "auto",
    stop: Stop | None = None,
    status: str = "all",
    page_size: PageSize | None = None,
) -> tuple[list[list[int]], WalkResult]:
    result = WalkResult()
    pages = walk_new_sessions(
        client.as_client(),
        cursor,
        (SLUG, status),
        page_size or PageSize(size, True),
        sort_order,
        result,
        stop,
    )
    return [numbers(page) for page in pages], result


def test_an_ascending_api_is_detected_and_walked_from_the_oldest():
    client = FakeClient([session(n) for n in range(1, 6)], order="asc")
    cursor = Cursor()
    pages, result = walk(client, cursor)
    assert pages == [[1, 2], [3, 4], [5]]
    assert client.searches() == [("all", 2, None), ("all", 2, pid(2)), ("all", 2, pid(4))]
    assert (result.done, result.pages, result.count, result.order) == (True, 3, 5, "asc")
    assert cursor == Cursor(high=pid(5), order="asc")


def test_an_ascending_walk_goes_on_after_high():
    client = FakeClient([session(n) for n in range(1, 8)], order="asc")
    cursor = Cursor(high=pid(5), order="asc")
    pages, result = walk(client, cursor)
    assert pages == [[6, 7]]
    assert client.searches() == [("all", 2, pid(5))]
    assert cursor == Cursor(high=pid(7), order="asc")
    assert (result.done, result.pages, result.order) == (True, 1, "asc")


def test_high_moves_only_as_each_page_is_handed_over():
    client = FakeClient([session(n) for n in range(1, 6)], order="asc")
    cursor = Cursor()
    result = WalkResult()
    pages = walk_new_sessions(
        client.as_client(), cursor, (SLUG, "all"), PageSize(2, True), "auto", result
    )
    assert (cursor.high, client.calls) == (None, [])  # nothing is fetched before it is asked
    assert numbers(next(pages)) == [1, 2]
    assert (cursor.high, len(client.calls)) == (pid(2), 1)  # the next page is not fetched yet
    assert numbers(next(pages)) == [3, 4]
    assert (cursor.high, len(client.calls)) == (pid(4), 2)
    assert result.order is None  # known only once the walk ends
    assert [numbers(page) for page in pages] == [[5]]
    assert (cursor.high, result.order) == (pid(5), "asc")


def test_a_descending_api_is_detected_and_high_moves_only_at_the_end():
    client = FakeClient([session(n) for n in range(1, 6)], order="desc")
    cursor = Cursor()
    result = WalkResult()
    pages = walk_new_sessions(
        client.as_client(), cursor, (SLUG, "all"), PageSize(2, True), "auto", result
    )
    assert numbers(next(pages)) == [5, 4]
    assert cursor == Cursor(high=None, order="desc", walk_top=pid(5), walk_after=pid(4))
    assert numbers(next(pages)) == [3, 2]
    assert cursor == Cursor(high=None, order="desc", walk_top=pid(5), walk_after=pid(2))
    assert [numbers(page) for page in pages] == [[1]]
    assert cursor == Cursor(high=pid(5), order="desc")
    assert client.searches() == [("all", 2, None), ("all", 2, pid(4)), ("all", 2, pid(2))]
    assert (result.done, result.pages, result.order) == (True, 3, "desc")


def test_a_descending_walk_cut_by_a_stop_goes_on_downward_then_a_pass_from_the_top():
    client = FakeClient([session(n) for n in range(1, 6)], order="desc")
    cursor = Cursor()
    pages, result = walk(client, cursor, stop=Stop(max_pages=2))
    assert pages == [[5, 4], [3, 2]]
    assert (result.done, result.pages, result.order) == (False, 2, "desc")
    assert cursor == Cursor(high=None, order="desc", walk_top=pid(5), walk_after=pid(2))
    assert cursor.mid_walk

    state = Position()
    cursor.save(state)  # as a chunk commits it
    client.sessions += [session(6), session(7)]  # arrived between the chunks
    client.calls.clear()
    cursor = Cursor.from_state(state)
    pages, result = walk(client, cursor)
    assert pages == [[1]]  # on downward from where the cut walk stopped
    assert client.searches() == [("all", 2, pid(2))]
    assert cursor == Cursor(high=pid(5), order="desc")  # the cut walk's top
    assert (result.done, result.order) == (True, "desc")

    client.calls.clear()
    pages, result = walk(client, cursor)  # the pass from the top
    assert pages == [[7, 6]]
    assert client.searches() == [("all", 2, None), ("all", 2, pid(6))]
    assert cursor == Cursor(high=pid(7), order="desc")


def test_a_descending_walk_stops_at_the_first_known_id():
    client = FakeClient([session(n) for n in range(1, 7)], order="desc")
    cursor = Cursor(high=pid(5), order="desc")
    pages, result = walk(client, cursor, size=3)
    assert pages == [[6]]  # 5 and 4 came on the same page, and are known
    assert client.searches() == [("all", 3, None)]
    assert cursor == Cursor(high=pid(6), order="desc")
    assert (result.done, result.pages, result.count) == (True, 1, 6)


def test_a_descending_walk_with_nothing_new_sends_one_request():
    client = FakeClient([session(n) for n in range(1, 6)], order="desc")
    cursor = Cursor(high=pid(5), order="desc")
    pages, result = walk(client, cursor)
    assert pages == []
    assert len(client.calls) == 1
    assert cursor == Cursor(high=pid(5), order="desc")
    assert (result.done, result.order) == (True, "desc")


def test_one_session_shows_no_order():
    client = FakeClient([session(1)], order="desc")
    cursor = Cursor()
    pages, result = walk(client, cursor)
    assert pages == [[1]]
    assert (result.order, cursor.order, cursor.high) == ("unknown", None, pid(1))


def test_an_empty_extension_shows_no_order_and_leaves_the_cursor():
    client = FakeClient([], order="asc")
    cursor = Cursor()
    pages, result = walk(client, cursor)
    assert pages == []
    assert (result.done, result.pages, result.count, result.order) == (True, 1, 0, "unknown")
    assert cursor == Cursor()


def test_a_refused_page_size_steps_down_to_the_cap_the_api_names():
    client = FakeClient([session(n) for n in range(1, 51)], order="asc", cap=40)
    size = PageSize.from_setting(None, {})
    pages, result = walk(client, Cursor(), page_size=size)
    assert [len(page) for page in pages] == [40, 10]
    assert client.searches() == [("all", 100, None), ("all", 40, None), ("all", 40, pid(40))]
    assert (client.counts.search_requests, client.counts.pages) == (3, 2)
    assert result.page_size == "40 (the API refused 100: limit must not be greater than 40)"
    assert (size.size, result.pages) == (40, 2)


def test_a_refusal_without_a_cap_halves_until_accepted():
    client = FakeClient([session(n) for n in range(1, 4)], order="asc", cap=30, cap_named=False)
    size = PageSize.from_setting(None, {})
    pages, result = walk(client, Cursor(), page_size=size)
    assert pages == [[1, 2, 3]]
    assert [limit for _, limit, _ in client.searches()] == [100, 50, 25]
    assert result.page_size == "25 (the API refused 50: limit is too large)"


def test_an_accepted_page_size_says_nothing():
    client = FakeClient([session(1)], cap=100)
    _, result = walk(client, Cursor(), page_size=PageSize.from_setting(None, {}))
    assert result.page_size is None


def _page(ids: list[str | None], has_more: bool = True) -> dict:
    results = [{"sessionId": f"x{i}", "paginationId": p} for i, p in enumerate(ids)]
    for item in results:
        if item["paginationId"] is None:
            del item["paginationId"]
    return {"count": 10, "hasMore": has_more, "results": results}


@pytest.mark.parametrize(
    ("pages", "cursor", "sort_order", "message"),
    [
        pytest.param(
            [_page([pid(1), pid(2)]), _page([pid(1), pid(2)])],
            Cursor(),
            "auto",
            f"search for {SLUG!r} repeated cursor {pid(2)!r}: the API ignored paginationLastId; "
            "stopping rather than looping",
            id="repeated-cursor",
        ),
        pytest.param(
            [_page([])],
            Cursor(),
            "auto",
            f"search for {SLUG!r} returned an empty page with hasMore=true after None; "
            "stopping rather than looping",
            id="empty-page-with-more",
        ),
        pytest.param(
            [_page([pid(1), None])],
            Cursor(),
            "auto",
            f"search for {SLUG!r} returned a session without paginationId (sessionId 'x1'); "
            "cannot page past it",
            id="missing-pagination-id",
        ),
        pytest.param(
            [_page([pid(5), pid(4)])],
            Cursor(),
            "asc",
            f"search for {SLUG!r} returned results in descending order, but ascending was "
            "configured; set SOURCES__CHASTER__SORT_ORDER=auto or report it",
            id="order-configured",
        ),
        pytest.param(
            [_page([pid(5), pid(4)])],
            Cursor(high=pid(9), order="asc"),
            "auto",
            f"search for {SLUG!r} returned results in descending order, but ascending was seen "
            "before; set SOURCES__CHASTER__SORT_ORDER=auto or report it",
            id="order-seen-before",
        ),
        pytest.param(
            [_page([pid(1), pid(2)])],
            Cursor(high=pid(3), order="asc"),
            "auto",
            f"search for {SLUG!r} went back past cursor {pid(3)!r}: the API ignored "
            "paginationLastId; stopping rather than looping",
            id="back-past-cursor",
        ),
    ],
)
def test_answers_that_would_loop_or_skip_are_refused(pages, cursor, sort_order, message):
    client = ScriptedClient(pages)
    with pytest.raises(PagingError) as raised:
        walk(client, cursor, sort_order=sort_order)
    assert str(raised.value) == message
    assert len(client.calls) == len(pages)


def test_a_refused_page_moves_no_cursor():
    client = ScriptedClient([_page([pid(1), pid(2)]), _page([pid(3), None])])
    cursor = Cursor()
    result = WalkResult()
    pages = walk_new_sessions(
        client.as_client(), cursor, (SLUG, "all"), PageSize(2, True), "auto", result
    )
    assert len(next(pages)) == 2
    with pytest.raises(PagingError):
        next(pages)
    assert cursor == Cursor(high=pid(2), order="asc")  # where the last page handed over left it
    assert result.order is None  # the walk did not end
