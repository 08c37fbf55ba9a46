"""Unit tests of the pure decisions: which refresh is cheaper, how the page size steps down,
which order a run of ids shows. No server needed: these are arithmetic."""

from __future__ import annotations

import pytest

from chaster_sessions.errors import ConfigError, PageSizeRejectedError
from chaster_sessions.paging import PageSize, order_of
from chaster_sessions.plan import pages_for, plan_refresh


def test_pages_for_counts_one_request_even_for_nothing():
    assert [pages_for(n, 100) for n in (0, 1, 100, 101, 250)] == [1, 1, 1, 2, 3]


def test_few_leavers_take_the_locked_sweep_and_gets():
    plan = plan_refresh(
        running_now=450, new_running=3, running_before=455, page_size=100, all_sessions=3000
    )
    # 5 pages of locked sessions (1 already read) + 8 that left the running set
    assert (plan.strategy, plan.more_requests, plan.leavers) == ("locked", 4 + 8, 8)
    assert plan.reason == "locked sweep + 8 GETs = 12 more requests <= 30-page full sweep"


def test_many_leavers_take_the_full_sweep():
    plan = plan_refresh(
        running_now=10, new_running=0, running_before=60, page_size=100, all_sessions=300
    )
    assert (plan.strategy, plan.more_requests, plan.leavers) == ("full", 3, 50)
    assert plan.reason.endswith("3-page full sweep: full sweep")


def test_without_all_statuses_there_is_no_full_sweep_to_choose():
    plan = plan_refresh(
        running_now=0, new_running=0, running_before=500, page_size=100, all_sessions=None
    )
    assert plan.strategy == "locked" and plan.more_requests == 500


def test_a_tie_keeps_the_locked_sweep():
    plan = plan_refresh(
        running_now=100, new_running=0, running_before=102, page_size=100, all_sessions=300
    )
    assert (plan.strategy, plan.more_requests) == ("locked", 2)


def test_page_size_takes_the_named_cap_then_halves():
    state: dict = {}
    size = PageSize.from_setting(None, state)
    assert size.size == 100
    size.shrink(PageSizeRejectedError("limit must not be greater than 40", 40))
    size.remember(state)
    assert (size.size, state["page_cap"]) == (40, 40)
    size.shrink(PageSizeRejectedError("limit is too large", None))
    size.remember(state)
    assert (size.size, state["page_cap"]) == (20, 20)
    assert PageSize.from_setting(None, state).size == 20  # the next run starts there


def test_an_explicit_page_size_is_not_changed_behind_the_users_back():
    size = PageSize.from_setting(80, {})
    size.remember(state := {})
    assert state == {}
    with pytest.raises(ConfigError, match="page_size 80 is more than the API accepts"):
        size.shrink(PageSizeRejectedError("limit must not be greater than 50", 50))


def test_order_of_ignores_unknowns_and_repeats():
    assert order_of([None, "a", "a", "b"]) == "asc"
    assert order_of(["c", "b"]) == "desc"
    assert order_of([None, "a"]) is None
