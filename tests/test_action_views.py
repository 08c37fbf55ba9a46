"""The action-log views give exactly what the raw tables hold, and cost nothing with logs off.

The demo (logs on) is read once; every expected figure is computed here in Python from the raw
rows of `chaster.action_logs` and `chaster.sessions`, never from the views under test.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, timedelta
from typing import Any

import duckdb
import pytest

from conftest import SLUG, configure, query, run_cli

LOG_VIEWS = ("actions", "action_types", "weekly_actions", "time_changes")


def _rows(con: Any, sql: str) -> list[dict[str, Any]]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@pytest.fixture(scope="module")
def demo_logs(demo):
    """The demo's raw entries (with their session's slug, wearer and flags) and every log view."""
    folder, _ = demo
    with duckdb.connect(str(folder / "chaster_demo.duckdb"), read_only=True) as con:
        raw = _rows(
            con,
            "select a.log_id, a.session_id, a.type, a.role, a.prefix, a.created_at, "
            "cast(a.payload as varchar) as payload, a.user___id, s.slug, "
            "s.lock__user___id as wearer, coalesce(s.lock__is_test_lock, false) as test, "
            "s.removed_at is not null as removed "
            "from chaster.action_logs a join chaster.sessions s using (session_id)",
        )
        stored = con.execute("select count(*) from chaster.action_logs").fetchone()[0]
        views = {v: _rows(con, f"select * from analytics.{v}") for v in LOG_VIEWS}  # noqa: S608
    for entry in raw:
        entry["payload"] = json.loads(entry["payload"]) if entry["payload"] else None
    assert len(raw) == stored > 3_000  # every entry belongs to a stored session (200 read)
    return raw, views


def _seconds(entry: dict[str, Any]) -> int | None:
    if entry["type"] != "time_changed":
        return None
    return int(entry["payload"]["duration"])


@pytest.mark.xdist_group("demo")
def test_actions_has_every_entry_once_with_its_seconds_and_week(demo_logs):
    raw, views = demo_logs
    actions = {row["log_id"]: row for row in views["actions"]}
    assert len(actions) == len(views["actions"]) == len(raw)
    for entry in raw:
        row = actions[entry["log_id"]]
        day = entry["created_at"].astimezone(UTC).date()
        assert (row["session_id"], row["extension"], row["type"]) == (
            entry["session_id"], entry["slug"], entry["type"],
        )  # fmt: skip
        assert (row["day"], row["week"]) == (day, day - timedelta(days=day.weekday()))
        assert row["seconds_changed"] == _seconds(entry)
        assert row["user_id"] == entry["user___id"]
        assert row["wearer_id"] == entry["wearer"]
        assert row["is_extension_action"] == (
            entry["role"] == "extension" or entry["prefix"] == entry["slug"]
        )
        assert (row["is_test_lock"], row["is_removed"]) == (entry["test"], entry["removed"])
    changed = [_seconds(e) for e in raw if e["type"] == "time_changed"]
    assert sum(r["seconds_changed"] or 0 for r in views["actions"]) == sum(changed)
    assert min(changed) < 0 < max(changed)  # time both added and removed
    assert any(r["is_test_lock"] for r in views["actions"])  # kept, flagged


@pytest.mark.xdist_group("demo")
def test_action_types_count_entries_sessions_and_wearers_of_real_locks(demo_logs):
    raw, views = demo_logs
    counted = [e for e in raw if not e["test"] and not e["removed"]]
    assert len(counted) < len(raw)  # the demo has test locks with logs
    expected: dict[tuple[str, str], dict[str, Any]] = {}
    for key in {(e["slug"], e["type"]) for e in counted}:
        of_type = [e for e in counted if (e["slug"], e["type"]) == key]
        expected[key] = {
            "entries": len(of_type),
            "sessions": len({e["session_id"] for e in of_type}),
            "wearers": len({e["wearer"] for e in of_type}),
            "extension_entries": sum(
                e["role"] == "extension" or e["prefix"] == e["slug"] for e in of_type
            ),
            "first_at": min(e["created_at"] for e in of_type),
            "last_at": max(e["created_at"] for e in of_type),
        }
    got = {
        (r["extension"], r["type"]): {k: v for k, v in r.items() if k not in ("extension", "type")}
        for r in views["action_types"]
    }
    assert got == expected
    assert sum(r["entries"] for r in views["action_types"]) == len(counted)
    assert {t for _, t in got} >= {"locked", "time_changed", "custom", "dice_rolled"}


@pytest.mark.xdist_group("demo")
def test_weekly_actions_and_time_changes_add_up_to_the_payload_durations(demo_logs):
    raw, views = demo_logs
    counted = [e for e in raw if not e["test"] and not e["removed"]]
    weekly: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0, 0])
    per_session: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for entry in counted:
        day = entry["created_at"].astimezone(UTC).date()
        week = weekly[(entry["slug"], day - timedelta(days=day.weekday()), entry["type"])]
        week[0] += 1
        seconds = _seconds(entry)
        if seconds is not None:
            week[1 if seconds > 0 else 2] += abs(seconds)
            session = per_session[entry["session_id"]]
            session[0] += 1
            session[1 if seconds > 0 else 2] += abs(seconds)
    assert {
        (r["extension"], r["week"], r["type"]): [
            r["entries"], r["seconds_added"], r["seconds_removed"],
        ]
        for r in views["weekly_actions"]
    } == weekly  # fmt: skip
    assert {
        r["session_id"]: [r["changes"], r["seconds_added"], r["seconds_removed"]]
        for r in views["time_changes"]
    } == per_session
    for row in views["time_changes"]:
        assert row["seconds_net"] == row["seconds_added"] - row["seconds_removed"]
    durations = Counter({True: 0, False: 0})
    for entry in counted:
        seconds = _seconds(entry)
        if seconds is not None:
            durations[seconds > 0] += abs(seconds)
    assert sum(r["seconds_added"] for r in views["time_changes"]) == durations[True] > 0
    assert sum(r["seconds_removed"] for r in views["time_changes"]) == durations[False] > 0


def test_with_logs_off_the_log_views_exist_empty_and_nothing_is_reported(
    make_api, home, monkeypatch, capsys
):
    api = make_api(120)
    configure(monkeypatch, api)
    off = run_cli(capsys, "--duckdb", "out.duckdb")
    assert off.code == 0, off.err
    assert off.err == ""  # no error, no warning about tables that were never loaded
    assert "overview, actions, action_types, weekly_actions, time_changes (schema analytics)" in (
        off.out
    )
    tables = {t for (t,) in query("out.duckdb", "select table_name from duckdb_tables()")}
    assert "action_logs" not in tables
    for view in LOG_VIEWS:
        assert query("out.duckdb", f"select count(*) from analytics.{view}") == [(0,)], view  # noqa: S608

    # turned on, the next run fills them from the entries it loads
    monkeypatch.setenv("SOURCES__CHASTER__ACTION_LOGS", "true")
    api.population.add(SLUG, 2)
    on = run_cli(capsys, "--duckdb", "out.duckdb")
    assert on.code == 0, on.err
    (entries,) = query("out.duckdb", "select count(*) from chaster.action_logs")[0]
    assert entries > 0
    assert query("out.duckdb", "select count(*) from analytics.actions") == [(entries,)]
