"""The `analytics` views give the stand-in's seeded truth, exactly, and survive what data does.

Expected figures are computed here in Python from the sessions the stand-in serves (the same
JSON the pipeline loaded), never from the database under test.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from chaster_standin import Population, StandIn, StandInConfig
from conftest import SLUG, TOKEN, configure, end_delete_add, query, run_cli, run_once_under

# one worker runs the module, so its load is made once (pytest-xdist --dist loadgroup)
pytestmark = pytest.mark.xdist_group("analytics")

OTHER = "other-extension"
VIEWS = {"sessions", "daily", "outcomes", "co_extensions", "config_values", "wearers", "overview"}
VIEWS |= {"actions", "action_types", "weekly_actions", "time_changes"}  # empty: logs off


def _ts(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _truth(api: Any) -> list[dict[str, Any]]:
    """Every session the API has now, reduced to the facts the views are about."""
    rows = []
    for slug in api.population.slugs:
        for session_id in api.population.session_ids(slug):
            session = api.population.session(session_id)
            lock = session["lock"]
            ended = None
            if lock["status"] != "locked":
                ended = _ts(lock["unlockedAt"] or lock["archivedAt"])
            rows.append(
                {
                    "id": session_id,
                    "slug": slug,
                    "status": lock["status"],
                    "mode": session["mode"],
                    "start": _ts(lock["startDate"]),
                    "ended": ended,
                    "lock_type": "keyholder" if lock.get("keyholder") else "self-lock",
                    "test": lock["isTestLock"],
                    "wearer": lock["user"]["_id"],
                    "config": session["config"],
                    "others": {e["slug"] for e in lock["extensions"]} - {slug},
                }
            )
    return rows


def _quantile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks, as DuckDB's quantile_cont."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _view(path: Path | str, name: str, order: str = "1") -> list[dict[str, Any]]:
    with duckdb.connect(str(path), read_only=True) as con:
        cursor = con.execute(f"select * from analytics.{name} order by {order}")  # noqa: S608
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# session-scoped, so that no other module's test run between two of these (SLOWEST_FIRST, a
# worker's order) makes the load again
@pytest.fixture(scope="session")
def loaded_once(tmp_path_factory):
    """Two extensions, loaded, then changed (ended, deleted, new) and loaded again: once for
    the tests below, which only read it."""
    folder = tmp_path_factory.mktemp("analytics")
    with StandIn(Population({SLUG: 600, OTHER: 200}), StandInConfig(token=TOKEN)) as api:
        slugs = f"{SLUG},{OTHER}"
        first = run_once_under(folder, api, "--duckdb", "out.duckdb", extension_slug=slugs)
        assert first.code == 0, first.err
        end_delete_add(api)
        result = run_once_under(folder, api, "--duckdb", "out.duckdb", extension_slug=slugs)
        assert result.code == 0, result.err
        yield api, result, folder


@pytest.fixture
def loaded(loaded_once, monkeypatch):
    """The module's load, with the test in its folder."""
    api, result, folder = loaded_once
    monkeypatch.chdir(folder)
    return api, result


def test_views_are_listed_in_the_summary_and_the_schema(loaded):
    _, result = loaded
    assert "analytics views: sessions, daily, outcomes" in result.out
    names = {
        name
        for (name,) in query(
            "out.duckdb", "select view_name from duckdb_views() where schema_name = 'analytics'"
        )
    }
    assert names == VIEWS


def test_sessions_view_has_one_row_per_session_with_plain_facts(loaded):
    api, _ = loaded
    truth = {t["id"]: t for t in _truth(api)}
    rows = {r["session_id"]: r for r in _view("out.duckdb", "sessions")}
    assert len(rows) == len(truth) + 2  # and the two deleted ones, flagged
    assert sum(r["is_removed"] for r in rows.values()) == 2
    for session_id, t in truth.items():
        row = rows[session_id]
        assert (row["extension"], row["status"], row["mode"]) == (t["slug"], t["status"], t["mode"])
        assert (row["lock_type"], row["is_test_lock"], row["wearer_id"]) == (
            t["lock_type"],
            t["test"],
            t["wearer"],
        )
        assert row["started_at"] == t["start"] and row["ended_at"] == t["ended"]
        assert row["is_running"] == (t["status"] == "locked")
        if t["ended"]:
            hours = (t["ended"] - t["start"]).total_seconds() / 3600
            assert row["duration_hours"] == pytest.approx(hours)
            assert row["duration_days"] == pytest.approx(hours / 24)


def test_overview_counts(loaded):
    api, _ = loaded
    truth = _truth(api)
    rows = {r["extension"]: r for r in _view("out.duckdb", "overview")}
    assert set(rows) == {SLUG, OTHER}
    for slug, row in rows.items():
        real = [t for t in truth if t["slug"] == slug and not t["test"]]
        statuses = Counter(t["status"] for t in real)
        assert row["sessions"] == len(real)
        assert (row["running"], row["unlocked"], row["deserted"]) == (
            statuses["locked"],
            statuses["unlocked"],
            statuses["deserted"],
        )
        assert row["wearers"] == len({t["wearer"] for t in real})
        assert row["test_locks"] == sum(t["test"] for t in truth if t["slug"] == slug)
        assert row["removed"] == (2 if slug == SLUG else 0)


def test_daily_started_ended_and_running(loaded):
    api, _ = loaded
    real = [t for t in _truth(api) if not t["test"]]
    rows = _view("out.duckdb", "daily", "extension, day")
    today = datetime.now(UTC).date()
    for slug in (SLUG, OTHER):
        mine = [t for t in real if t["slug"] == slug]
        started = Counter(t["start"].date() for t in mine)
        ended = Counter((t["ended"].date(), t["status"]) for t in mine if t["ended"])
        first = min(started)
        expected, running = [], 0
        day: date = first
        while day <= today:
            running += started[day] - ended[(day, "unlocked")] - ended[(day, "deserted")]
            expected.append(
                (day, started[day], ended[(day, "unlocked")], ended[(day, "deserted")], running)
            )
            day += timedelta(days=1)
        got = [
            (
                r["day"],
                r["started"],
                r["unlocked"],
                r["deserted"],
                r["running_at_end_of_day"],
            )
            for r in rows
            if r["extension"] == slug
        ]
        assert got == expected
        assert got[-1][4] == sum(1 for t in mine if t["status"] == "locked")


def test_outcomes_and_durations_by_mode_and_lock_type(loaded):
    api, _ = loaded
    real = [t for t in _truth(api) if not t["test"]]
    rows = _view("out.duckdb", "outcomes")
    assert len(rows) == sum(
        len({t[d] for t in real if t["slug"] == s})
        for s in (SLUG, OTHER)
        for d in ("mode", "lock_type")
    )
    for row in rows:
        group = [
            t for t in real if t["slug"] == row["extension"] and t[row["dimension"]] == row["value"]
        ]
        statuses = Counter(t["status"] for t in group)
        assert (row["sessions"], row["running"], row["unlocked"], row["deserted"]) == (
            len(group),
            statuses["locked"],
            statuses["unlocked"],
            statuses["deserted"],
        )
        hours = [(t["ended"] - t["start"]).total_seconds() / 3600 for t in group if t["ended"]]
        assert row["median_duration_hours"] == pytest.approx(_quantile(hours, 0.5))
        assert row["p90_duration_hours"] == pytest.approx(_quantile(hours, 0.9))
        assert row["deserted_share"] == pytest.approx(round(statuses["deserted"] / len(hours), 4))


def test_other_extensions_on_the_same_locks(loaded):
    api, _ = loaded
    real = [t for t in _truth(api) if not t["test"]]
    rows = _view("out.duckdb", "co_extensions")
    got = {(r["extension"], r["other_extension"]): r["sessions"] for r in rows}
    expected = Counter((t["slug"], other) for t in real for other in t["others"])
    assert got == dict(expected)
    for row in rows:
        total = sum(1 for t in real if t["slug"] == row["extension"])
        assert row["share_of_sessions"] == pytest.approx(round(row["sessions"] / total, 4))


def test_configuration_value_popularity(loaded):
    api, _ = loaded
    real = [t for t in _truth(api) if not t["test"]]

    def text(value: Any) -> str:
        return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))

    expected = Counter(
        (t["slug"], key, text(value)) for t in real for key, value in t["config"].items()
    )
    got = {
        (r["extension"], r["setting"], r["value"]): r["sessions"]
        for r in _view("out.duckdb", "config_values")
    }
    assert got == dict(expected)


def test_returning_wearers(loaded):
    api, _ = loaded
    real = [t for t in _truth(api) if not t["test"]]
    rows = _view("out.duckdb", "wearers")
    expected = Counter((t["slug"], t["wearer"]) for t in real)
    assert {(r["extension"], r["wearer_id"]): r["sessions"] for r in rows} == dict(expected)
    assert sum(r["is_returning"] for r in rows) == sum(1 for n in expected.values() if n > 1)


def test_views_survive_a_new_api_field_and_a_full_refresh(make_api, home, monkeypatch, capsys):
    api = make_api(200)
    configure(monkeypatch, api)
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    api.population.extra_fields["streakDays"] = 4  # the API starts sending a new field
    api.population.extra_lock_fields["reactions"] = {"likes": 2}
    api.population.add(SLUG, 5)
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 0, result.err
    columns = {c for (c,) in query("out.duckdb", "select column_name from duckdb_columns()")}
    assert {"streak_days", "lock__reactions__likes"} <= columns
    assert query("out.duckdb", "select sessions from analytics.overview")[0][0] == sum(
        1 for t in _truth(api) if not t["test"]
    )
    result = run_cli(capsys, "--full-refresh", "--duckdb", "out.duckdb")
    assert result.code == 0, result.err
    assert query("out.duckdb", "select count(*) from analytics.sessions")[0][0] == 205


def test_views_work_on_tables_missing_optional_columns(home):
    """A dataset without keyholders, shared locks or configs (self-locks only, say) still gets
    every view: missing raw columns read as NULL."""
    from chaster_sessions.analytics import create_views

    with duckdb.connect("small.duckdb") as con:
        con.execute("create schema chaster")
        con.execute(
            "create table chaster.sessions as select 's1' as session_id, 'ext' as slug, "
            "'unlocked' as lock__status, timestamptz '2026-01-01 00:00:00+00' as "
            "lock__start_date, timestamptz '2026-01-03 12:00:00+00' as lock__unlocked_at, "
            "'d1' as _dlt_id"
        )
        columns = {
            "sessions": {
                c
                for (c,) in con.execute(
                    "select column_name from duckdb_columns() where table_name = 'sessions'"
                ).fetchall()
            }
        }
        assert {v.split(".")[1] for v in create_views(con.execute, columns)} == VIEWS
        for view in VIEWS:
            con.execute(f"select * from analytics.{view}").fetchall()  # noqa: S608
        assert con.execute(
            "select lock_type, duration_days, is_test_lock from analytics.sessions"
        ).fetchall() == [("self-lock", 2.5, False)]
        assert con.execute("select count(*) from analytics.co_extensions").fetchone() == (0,)


def test_a_view_that_cannot_be_created_is_reported_not_hidden(make_api, home, monkeypatch, capsys):
    api = make_api(100)
    configure(monkeypatch, api)
    with duckdb.connect("out.duckdb") as con:  # the user keeps a table where a view would go
        con.execute("create schema analytics; create table analytics.daily (note varchar)")
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 9
    assert result.err.startswith("error: the analytics views could not be updated (")
    assert result.err.strip().endswith("the sessions were loaded")
    assert query("out.duckdb", "select count(*) from chaster.sessions")[0][0] == 100
    assert "100 new" in result.out  # the summary is still printed
    assert query("out.duckdb", "select count(*) from analytics.daily")[0][0] == 0  # untouched
