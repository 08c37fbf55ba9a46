"""The API grows a field: the run names the new column; with the contract frozen it refuses.

A refused run writes nothing and moves no cursor: the next run, allowed to evolve, loads the
same sessions the refused one would have.
"""

from __future__ import annotations

import json

from conftest import SLUG, configure, db_snapshot, query, run_cli, stored_sessions


def _columns(path: str) -> set[str]:
    rows = query(
        path,
        "select column_name from information_schema.columns "
        "where table_schema = 'chaster' and table_name = 'sessions'",
    )
    return {r[0] for r in rows}


def test_a_new_field_is_named_then_refused_when_frozen(make_api, home, monkeypatch, capsys):
    api = make_api(300)
    configure(monkeypatch, api)
    first = run_cli(capsys, "--duckdb", "out.duckdb", "--report", "run.json")
    assert first.code == 0, first.err
    assert "  schema: created 7 tables (first load)\n" in first.out
    report = json.loads((home / "run.json").read_text())
    assert report["schema_changes"] == [  # dlt's own columns aside
        "new table sessions (157 columns)",  # the shared lock's dates and limits typed, though null
        "new table sessions__lock__extensions (16 columns)",
        "new table sessions__lock__reasons_preventing_unlocking (2 columns)",
        "new table sessions__lock__shared_lock__extensions (7 columns)",
        "new table sessions__lock__shared_lock__tags (1 column)",
        "new table sessions__metadata__home_actions (5 columns)",
        "new table sessions__metadata__reasons_preventing_unlocking (1 column)",
    ]

    # the API starts sending a field: the default contract (evolve) takes it and names it
    api.population.extra_fields["streakDays"] = 4
    api.population.add(SLUG, 3)
    second = run_cli(capsys, "--duckdb", "out.duckdb", "--report", "run.json")
    assert second.code == 0, second.err
    assert "  schema changes: new column sessions.streak_days (bigint)\n" in second.out
    report = json.loads((home / "run.json").read_text())
    assert report["schema_changes"] == ["new column sessions.streak_days (bigint)"]
    history = query(
        "out.duckdb", "select schema_changes from chaster._chaster_runs order by started_at"
    )
    assert json.loads(history[-1][0]) == ["new column sessions.streak_days (bigint)"]

    # a value of another type: dlt keeps it in a variant column, and the run says so
    api.population.extra_fields["streakDays"] = "four days"
    third = run_cli(capsys, "--duckdb", "out.duckdb")
    assert third.code == 0, third.err
    assert (
        "  schema changes: new type for sessions.streak_days: streak_days__v_text (text)\n"
        in third.out
    )

    # frozen: another new field is refused, nothing is written, no cursor moves
    api.population.extra_fields["moodScore"] = 1.5
    added = api.population.add(SLUG, 2)
    before = db_snapshot(home / "out.duckdb")
    configure(monkeypatch, api, schema_contract="freeze")
    refused = run_cli(capsys, "--duckdb", "out.duckdb", "--report", "run.json")
    assert refused.code == 11, refused.err
    assert refused.err == (
        "error: the data has a new column sessions.mood_score, and schema_contract = 'freeze' "
        "refuses it; nothing was written and the cursors did not move; to accept it set "
        "SOURCES__CHASTER__SCHEMA_CONTRACT=evolve (or schema_contract under [sources.chaster])\n"
    )
    assert db_snapshot(home / "out.duckdb") == before
    assert "mood_score" not in _columns("out.duckdb")
    assert not set(added) & set(stored_sessions("out.duckdb"))
    report = json.loads((home / "run.json").read_text())
    assert (report["status"], report["exit_code"]) == ("failed", 11)
    status = query(
        "out.duckdb",
        "select status, exit_code from chaster._chaster_runs order by started_at desc limit 1",
    )
    assert status == [("failed", 11)]

    # frozen again: refused again (the refused package was dropped, not left to retry)
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 11
    assert db_snapshot(home / "out.duckdb") == before

    # allowed to evolve, the next run loads what the refused ones would have
    configure(monkeypatch, api, schema_contract="evolve")
    api.clear_log()
    accepted = run_cli(capsys, "--duckdb", "out.duckdb")
    assert accepted.code == 0, accepted.err
    assert "  example-extension: 2 new" in accepted.out
    assert "new column sessions.mood_score (double)" in accepted.out
    assert stored_sessions("out.duckdb") == api.population.truth(SLUG)


def test_an_unknown_contract_mode_is_refused_before_any_request(
    make_api, home, monkeypatch, capsys
):
    api = make_api(30)
    configure(monkeypatch, api, schema_contract="strict")
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 2
    assert result.err == (
        "error: schema_contract 'strict' is not allowed (allowed: evolve | freeze | discard_row "
        "| discard_value); set SOURCES__CHASTER__SCHEMA_CONTRACT or schema_contract under "
        "[sources.chaster]\n"
    )
    assert api.count() == 0


def test_a_first_load_under_freeze_is_refused_and_leaves_no_file(
    make_api, home, monkeypatch, capsys
):
    api = make_api(30)
    configure(monkeypatch, api, schema_contract="freeze")
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 11, result.err
    assert result.err.startswith("error: the data has a new column sessions.")
    assert not (home / "out.duckdb").exists()
    configure(monkeypatch, api, schema_contract="evolve")
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    assert stored_sessions("out.duckdb") == api.population.truth(SLUG)
