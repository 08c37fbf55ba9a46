"""The `analytics` views on PostgreSQL: the same columns and the same figures as on DuckDB.

The same stand-in data, action logs included, is loaded into a DuckDB file and into a real
PostgreSQL server, changed (sessions end, vanish, arrive) and loaded again into both; then every
view is read from both and compared row by row.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import duckdb
import pytest

from conftest import SLUG, configure, end_delete_add, run_cli

OTHER = "other-extension"
VIEWS = ("sessions", "daily", "outcomes", "co_extensions", "config_values", "wearers", "overview")
LOG_VIEWS = ("actions", "action_types", "weekly_actions", "time_changes")
JSON_COLUMNS = {"config", "data", "payload"}
# differ between any two loads: dlt's random row id, and when each run noticed a removal
LOAD_SPECIFIC = {"_dlt_id", "removed_at"}


def _normal(name: str, value: Any) -> Any:
    """A value as both databases' drivers can agree on it: JSON parsed, decimals as floats."""
    if name in JSON_COLUMNS and isinstance(value, str):
        return json.loads(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


def _key(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, float):
        return ""  # floats are compared with a tolerance, never used to pair rows
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return repr(value)


def _rows(cursor: Any) -> tuple[list[str], list[dict[str, Any]]]:
    names = [d[0] for d in cursor.description]
    rows = [
        {n: _normal(n, v) for n, v in zip(names, row, strict=True) if n not in LOAD_SPECIFIC}
        for row in cursor.fetchall()
    ]
    return names, sorted(rows, key=lambda r: [_key(v) for v in r.values()])


def _duckdb_view(name: str) -> tuple[list[str], list[dict[str, Any]]]:
    with duckdb.connect("out.duckdb", read_only=True) as con:
        return _rows(con.execute(f"select * from analytics.{name}"))  # noqa: S608


def _postgres_view(url: str, name: str) -> tuple[list[str], list[dict[str, Any]]]:
    import psycopg2

    with psycopg2.connect(url) as con, con.cursor() as cursor:
        cursor.execute(f"select * from analytics.{name}")  # noqa: S608
        return _rows(cursor)


def _load_both(capsys: Any, monkeypatch: Any, postgres: str) -> tuple[str, str]:
    duck = run_cli(capsys, "--duckdb", "out.duckdb")
    assert duck.code == 0, duck.err
    monkeypatch.setenv("DESTINATION__WAREHOUSE__DESTINATION_TYPE", "postgres")
    monkeypatch.setenv("DESTINATION__WAREHOUSE__CREDENTIALS", postgres)
    pg = run_cli(capsys, "--destination", "warehouse")
    assert pg.code == 0, pg.err
    return duck.out, pg.out


def test_every_view_on_postgres_equals_duckdb(make_api, home, monkeypatch, capsys, postgres):
    api = make_api({SLUG: 400, OTHER: 150})
    # the logs of 60 sessions: every kind of entry, in both extensions
    configure(
        monkeypatch, api, slug=f"{SLUG},{OTHER}", action_logs="true", action_log_requests="60"
    )
    _load_both(capsys, monkeypatch, postgres)
    end_delete_add(api)
    duck_out, pg_out = _load_both(capsys, monkeypatch, postgres)
    listed = (
        "analytics views: sessions, daily, outcomes, co_extensions, config_values, wearers, "
        "overview, actions, action_types, weekly_actions, time_changes"
    )
    assert listed in duck_out and listed in pg_out

    for view in VIEWS + LOG_VIEWS:
        duck_columns, duck_rows = _duckdb_view(view)
        pg_columns, pg_rows = _postgres_view(postgres, view)
        assert pg_columns == duck_columns, view
        assert len(pg_rows) == len(duck_rows) > 0, view
        for pg_row, duck_row in zip(pg_rows, duck_rows, strict=True):
            for column, expected in duck_row.items():
                got = pg_row[column]
                if isinstance(expected, float):
                    # durations of running sessions run to each query's own `now`
                    assert got == pytest.approx(expected, rel=1e-9, abs=0.01), (view, column)
                else:
                    assert got == expected, (view, column, duck_row)

    _, removed = _postgres_view(postgres, "sessions")
    assert sum(r["is_removed"] for r in removed) == 2
    _, values = _postgres_view(postgres, "config_values")
    nested = {r["value"] for r in values if r["setting"] == "difficulty"}
    assert nested and all(v.startswith('[{"type":"add","weight":') for v in nested)
    _, days = _postgres_view(postgres, "daily")
    assert max(r["day"] for r in days) == datetime.now(UTC).date()
    assert isinstance(days[0]["day"], date)
    _, actions = _postgres_view(postgres, "actions")
    assert {r["week"].weekday() for r in actions} == {0}  # weeks start on Monday, as in DuckDB
    assert any(r["seconds_changed"] < 0 for r in actions if r["seconds_changed"] is not None)


def test_postgres_views_work_on_tables_missing_optional_columns(postgres):
    """Self-locks only, no config, no child tables: every view is still created on PostgreSQL,
    missing raw columns reading as typed NULLs."""
    import psycopg2

    from chaster_sessions.analytics import create_views

    with psycopg2.connect(postgres) as con, con.cursor() as cursor:
        cursor.execute(
            "create schema chaster; create table chaster.sessions as select "
            "'s1'::varchar as session_id, 'ext'::varchar as slug, 'unlocked'::varchar as "
            "lock__status, timestamptz '2026-01-01 00:00:00+00' as lock__start_date, "
            "timestamptz '2026-01-03 12:00:00+00' as lock__unlocked_at, 'd1'::varchar as _dlt_id"
        )
        columns = {"sessions": {"session_id", "slug", "lock__status", "lock__start_date"}}
        columns["sessions"] |= {"lock__unlocked_at", "_dlt_id"}
        names = create_views(cursor.execute, columns, dialect="postgres")
        assert [n.split(".")[1] for n in names] == list(VIEWS + LOG_VIEWS)
        cursor.execute("select lock_type, duration_days, is_test_lock from analytics.sessions")
        assert cursor.fetchall() == [("self-lock", 2.5, False)]
        days = (datetime.now(UTC).date() - date(2026, 1, 1)).days + 1
        expected = {"sessions": 1, "daily": days, "outcomes": 2, "co_extensions": 0}
        expected.update(config_values=0, wearers=0, overview=1)  # no wearer id, no config
        expected.update(dict.fromkeys(LOG_VIEWS, 0))  # no action_logs table: logs never loaded
        for view in VIEWS + LOG_VIEWS:
            cursor.execute(f"select count(*) from analytics.{view}")  # noqa: S608
            assert cursor.fetchone() == (expected[view],), view
