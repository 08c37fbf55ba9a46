"""The destination's queries, each handed its pipeline: removal marks as plain values, and the
running and stored sessions a run reads before it extracts.

The rows are loaded by dlt into a real DuckDB file, shaped as the source stores them; no API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt

from chaster_sessions.destination import (
    RemovalMarks,
    mark_removed,
    running_sessions,
    stored_sessions,
)
from chaster_sessions.pipeline import duckdb_destination
from chaster_sessions.runner import removal_marks
from conftest import query

REMOVED_AT = {"removed_at": {"data_type": "timestamp", "nullable": True}}


def _session(session_id: str, slug: str, status: str) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "slug": slug,
        "pagination_id": f"p-{session_id}",
        "lock": {"status": status},
        "removed_at": None,
    }


def _loaded(home: Path, rows: list[dict[str, Any]]) -> tuple[dlt.Pipeline, Path]:
    path = home / "marks.duckdb"
    pipeline = dlt.pipeline("marks", destination=duckdb_destination(path), dataset_name="chaster")
    pipeline.run(rows, table_name="sessions", columns=REMOVED_AT)
    return pipeline, path


def _removed(path: Path) -> dict[str, bool]:
    rows = query(path, "select session_id, removed_at is not null from chaster.sessions")
    return dict(sorted(rows))


def test_removal_marks_are_one_plain_value_per_cursor_of_the_state():
    state = {
        "pending": False,
        "cursors": {
            "dice|all": {"removed": {"a": "2024-05-01T00:00:00Z"}, "last_sweep": 1700000000.5},
            "dice|locked": {"last_sweep": None},
            "timer-lock|all": {},
        },
    }
    assert removal_marks(state) == [
        RemovalMarks("dice", "all", {"a": "2024-05-01T00:00:00Z"}, 1700000000.5),
        RemovalMarks("dice", "locked", {}, None),
        RemovalMarks("timer-lock", "all", {}, None),
    ]
    assert removal_marks({}) == []


def test_mark_removed_sets_removed_at_for_404s_and_for_rows_a_full_sweep_did_not_see(home):
    pipeline, path = _loaded(
        home,
        [
            _session("a", "dice", "locked"),
            _session("b", "dice", "unlocked"),
            _session("c", "timer", "unlocked"),
            _session("d", "dice", "unlocked"),
        ],
    )
    mark_removed(pipeline, [])
    assert _removed(path) == {"a": False, "b": False, "c": False, "d": False}

    mark_removed(pipeline, [RemovalMarks("timer", "locked", {"c": "2024-05-01T00:00:00Z"}, None)])
    assert _removed(path) == {"a": False, "b": False, "c": True, "d": False}

    # a sweep that began before the rows were loaded removes nothing; a locked cursor's
    # `last_sweep` never removes a row
    mark_removed(pipeline, [RemovalMarks("dice", "all", {}, 1.0)])
    mark_removed(pipeline, [RemovalMarks("dice", "locked", {}, 1e12)])
    assert _removed(path) == {"a": False, "b": False, "c": True, "d": False}

    # a full sweep that began after the load and saw none of dice's rows: all of dice is gone
    mark_removed(pipeline, [RemovalMarks("dice", "all", {}, 1e12)])
    assert _removed(path) == {"a": True, "b": True, "c": True, "d": True}


def test_running_and_stored_sessions_are_read_for_the_pipeline_handed_in(home):
    pipeline, _ = _loaded(
        home,
        [
            _session("a", "dice", "locked"),
            _session("b", "dice", "unlocked"),
            _session("c", "timer", "locked"),
            _session("d", "other", "locked"),
        ],
    )
    assert running_sessions(pipeline, ["dice", "timer", "none"]) == {
        "dice": {"a": "p-a"},
        "timer": {"c": "p-c"},
    }
    assert running_sessions(pipeline, []) == {}
    assert stored_sessions(pipeline, ["b", "c", "missing"]) == {
        "b": ("dice", "p-b"),
        "c": ("timer", "p-c"),
    }
    assert stored_sessions(pipeline, []) == {}


def test_nothing_is_running_or_stored_before_the_first_load(home):
    path = home / "empty.duckdb"
    pipeline = dlt.pipeline("empty", destination=duckdb_destination(path), dataset_name="chaster")
    assert running_sessions(pipeline, ["dice"]) == {}
    assert stored_sessions(pipeline, ["a"]) == {}
