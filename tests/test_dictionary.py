"""Every column the pipeline writes, raw or view, is described, and dlt's schema carries the text.

The stand-in's data is loaded (lock credentials kept and action logs on, so their columns exist
too), then the database's own column list is compared with the dictionary: a field the API
starts sending, or a view column added without a line, fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from chaster_sessions.dictionary import (
    RUN_COLUMNS,
    VIEW_COLUMNS,
    log_columns,
    markdown,
    raw_columns,
)
from chaster_sessions.runs import RUNS_TABLE
from conftest import ROOT, SLUG, configure, pipeline_folders, query, run_cli


def _undescribed(path: str) -> list[str]:
    """schema.table.column of every loaded column the dictionary has no line for (dlt's own
    bookkeeping tables aside)."""
    raw = {**raw_columns(), **log_columns(), RUNS_TABLE: RUN_COLUMNS}
    rows = query(
        path,
        "select table_schema, table_name, column_name from information_schema.columns "
        "where table_schema in ('chaster', 'analytics') "
        "and table_name not in ('_dlt_loads', '_dlt_pipeline_state', '_dlt_version') "
        "order by all",
    )
    return [
        f"{schema}.{table}.{column}"
        for schema, table, column in rows
        if not (raw if schema == "chaster" else VIEW_COLUMNS).get(table, {}).get(column)
    ]


def test_every_loaded_column_and_view_column_is_described(make_api, home, monkeypatch, capsys):
    api = make_api(400)
    # the logs of 100 sessions have every column an entry can bring
    configure(
        monkeypatch, api, store_credentials="true", action_logs="true", action_log_requests="100"
    )
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 0, result.err
    assert _undescribed("out.duckdb") == []
    for table, described in log_columns().items():
        loaded = query(
            "out.duckdb",
            "select column_name from information_schema.columns where table_schema = "
            "'chaster' and table_name = ?",
            [table],
        )
        assert {c for (c,) in loaded} == set(described), table  # no stale lines either
    columns = query(
        "out.duckdb",
        "select column_name from information_schema.columns where table_schema = 'chaster' "
        "and table_name = 'sessions'",
    )
    assert len(columns) > 150  # every profile field of wearer, keyholder and shared lock owner
    assert ("lock__shared_lock__password",) in columns  # with store_credentials
    for view, described in VIEW_COLUMNS.items():
        loaded = query(
            "out.duckdb",
            "select column_name from information_schema.columns where table_schema = "
            "'analytics' and table_name = ? order by ordinal_position",
            [view],
        )
        assert [c for (c,) in loaded] == list(described), view  # no stale lines either

    # the API starts sending a field nobody described: the check names it
    api.population.extra_fields["streakDays"] = 4
    api.population.add(SLUG, 3)
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    assert _undescribed("out.duckdb") == ["chaster.sessions.streak_days"]


def test_dlt_schema_shows_every_raw_column_description(make_api, home, monkeypatch, capsys):
    api = make_api(200)
    configure(monkeypatch, api)
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    dlt_command = Path(sys.executable).parent / "dlt"
    (folder,) = pipeline_folders(home)  # the summary's `local folder`
    command = [str(dlt_command), "pipeline", "--pipelines-dir", str(folder), "chaster"]
    shown = subprocess.run(
        [*command, "schema", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    schema = json.loads(shown[shown.index("{") :])
    raw = raw_columns()
    for table, expected in raw.items():
        columns = schema["tables"][table]["columns"]
        for name, column in columns.items():
            assert column.get("description") == expected[name], (table, name)
    lock_duration = schema["tables"]["sessions"]["columns"]["lock__total_duration"]
    assert lock_duration == {
        "data_type": "bigint",
        "description": "time locked so far, in milliseconds; from `lock.totalDuration`",
    }


def test_committed_data_dictionary_is_the_generated_one():
    committed = (ROOT / "docs" / "data-dictionary.md").read_text()
    assert committed == markdown(), (
        "docs/data-dictionary.md is stale: cd sources && "
        "../.venv/bin/python -m chaster_sessions.dictionary ../docs/data-dictionary.md"
    )
