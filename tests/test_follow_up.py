"""Unit tests of the pure decisions that follow a walk: `plan.follow_up`, over its whole truth
table, and `plan.sweep_due`, with the exact reason the summary shows for each case."""

from __future__ import annotations

from typing import Any

import pytest

from chaster_sessions.plan import DAY, FollowUp, follow_up, sweep_due
from chaster_sessions.state import CursorState

# status, refresh, full_refresh, first_load, a sweep due -> what follows the walk. A full
# refresh over every status is itself a sweep; a first load has nothing to re-read; only `all`
# sweeps, `locked` and `all` refresh their running set, the other statuses only walk.
TRUTH_TABLE = [
    # status refresh full first due  follow-up
    "all      no      no   no    no   nothing",
    "all      no      no   no    yes  nothing",
    "all      no      no   yes   no   nothing",
    "all      no      no   yes   yes  nothing",
    "all      no      yes  no    no   swept",
    "all      no      yes  no    yes  swept",
    "all      no      yes  yes   no   swept",
    "all      no      yes  yes   yes  swept",
    "all      yes     no   no    no   refresh",
    "all      yes     no   no    yes  sweep",
    "all      yes     no   yes   no   nothing",
    "all      yes     no   yes   yes  nothing",
    "all      yes     yes  no    no   swept",
    "all      yes     yes  no    yes  swept",
    "all      yes     yes  yes   no   swept",
    "all      yes     yes  yes   yes  swept",
    "locked   no      no   no    no   nothing",
    "locked   no      no   no    yes  nothing",
    "locked   no      no   yes   no   nothing",
    "locked   no      no   yes   yes  nothing",
    "locked   no      yes  no    no   nothing",
    "locked   no      yes  no    yes  nothing",
    "locked   no      yes  yes   no   nothing",
    "locked   no      yes  yes   yes  nothing",
    "locked   yes     no   no    no   refresh",
    "locked   yes     no   no    yes  refresh",
    "locked   yes     no   yes   no   nothing",
    "locked   yes     no   yes   yes  nothing",
    "locked   yes     yes  no    no   nothing",
    "locked   yes     yes  no    yes  nothing",
    "locked   yes     yes  yes   no   nothing",
    "locked   yes     yes  yes   yes  nothing",
    "unlocked no      no   no    no   nothing",
    "unlocked no      no   no    yes  nothing",
    "unlocked no      no   yes   no   nothing",
    "unlocked no      no   yes   yes  nothing",
    "unlocked no      yes  no    no   nothing",
    "unlocked no      yes  no    yes  nothing",
    "unlocked no      yes  yes   no   nothing",
    "unlocked no      yes  yes   yes  nothing",
    "unlocked yes     no   no    no   nothing",
    "unlocked yes     no   no    yes  nothing",
    "unlocked yes     no   yes   no   nothing",
    "unlocked yes     no   yes   yes  nothing",
    "unlocked yes     yes  no    no   nothing",
    "unlocked yes     yes  no    yes  nothing",
    "unlocked yes     yes  yes   no   nothing",
    "unlocked yes     yes  yes   yes  nothing",
    "deserted no      no   no    no   nothing",
    "deserted no      no   no    yes  nothing",
    "deserted no      no   yes   no   nothing",
    "deserted no      no   yes   yes  nothing",
    "deserted no      yes  no    no   nothing",
    "deserted no      yes  no    yes  nothing",
    "deserted no      yes  yes   no   nothing",
    "deserted no      yes  yes   yes  nothing",
    "deserted yes     no   no    no   nothing",
    "deserted yes     no   no    yes  nothing",
    "deserted yes     no   yes   no   nothing",
    "deserted yes     no   yes   yes  nothing",
    "deserted yes     yes  no    no   nothing",
    "deserted yes     yes  no    yes  nothing",
    "deserted yes     yes  yes   no   nothing",
    "deserted yes     yes  yes   yes  nothing",
]


def _row(line: str) -> Any:  # a pytest ParameterSet
    status, refresh, full, first, due, action = line.split()
    return pytest.param(
        status,
        refresh == "yes",
        full == "yes",
        first == "yes",
        due == "yes",
        action,
        id="-".join(line.split()),
    )


@pytest.mark.parametrize(
    ("status", "refresh", "full_refresh", "first_load", "due", "expected"),
    [_row(line) for line in TRUTH_TABLE],
)
def test_what_follows_the_walk(status, refresh, full_refresh, first_load, due, expected):
    action = follow_up(
        status=status,
        refresh=refresh,
        full_refresh=full_refresh,
        first_load=first_load,
        sweep_due="the last one began 8.0 days ago; every 7 days" if due else None,
    )
    assert action is FollowUp(expected)


def test_the_truth_table_is_whole():
    rows = {tuple(line.split()[:5]) for line in TRUTH_TABLE}
    assert len(rows) == len(TRUTH_TABLE) == 4 * 2**4


NOW = 100 * DAY


@pytest.mark.parametrize(
    ("entry", "every_days", "reason"),
    [
        pytest.param(
            CursorState(sweep={"started_at": NOW - 1.5 * DAY}, last_sweep=NOW),
            7.0,
            "going on with the one begun 1.5 days ago",
            id="in-progress",
        ),
        pytest.param(
            CursorState(sweep={"started_at": NOW}),
            0.0,
            "going on with the one begun 0.0 days ago",
            id="in-progress-before-every-run",
        ),
        pytest.param(
            CursorState(last_sweep=NOW),
            0.0,
            "every run (full_sweep_every_days = 0)",
            id="every-run",
        ),
        pytest.param(
            CursorState(last_sweep=NOW - 8 * DAY),
            7.0,
            "the last one began 8.0 days ago; every 7 days",
            id="last-one-old",
        ),
        pytest.param(
            CursorState(last_sweep=NOW - 7 * DAY),
            7.0,
            "the last one began 7.0 days ago; every 7 days",
            id="last-one-exactly-a-period-ago",
        ),
        pytest.param(
            CursorState(last_sweep=NOW - 0.75 * DAY),
            0.5,
            "the last one began 0.8 days ago; every 0.5 days",
            id="fractional-period",
        ),
        pytest.param(
            CursorState(sweep_clock_from=NOW - 10 * DAY),
            7.0,
            "none recorded in 10.0 days; every 7 days",
            id="none-recorded",
        ),
    ],
)
def test_a_sweep_is_due_and_says_why(entry, every_days, reason):
    assert sweep_due(entry, every_days, NOW) == reason


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param(CursorState(last_sweep=NOW - 6.9 * DAY), id="last-one-recent"),
        pytest.param(CursorState(), id="no-clock-yet"),
        pytest.param(CursorState(sweep_clock_from=NOW - 6 * DAY), id="clock-recent"),
        pytest.param(
            CursorState(last_sweep=NOW - DAY, sweep_clock_from=NOW - 30 * DAY),
            id="a-sweep-recorded-outranks-the-clock",
        ),
    ],
)
def test_no_sweep_is_due(entry):
    assert sweep_due(entry, 7.0, NOW) is None
