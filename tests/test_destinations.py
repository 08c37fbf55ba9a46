"""Other destinations by configuration alone (a real PostgreSQL server), and ephemeral runners.

A scheduled runner often keeps nothing between runs: no pipeline folder, sometimes no local file.
The next run must restore its cursors from the destination and continue, without a full reload
and without duplicates.
"""

from __future__ import annotations

import math
import shutil

from conftest import (
    PG_PASSWORD,
    SLUG,
    configure,
    duplicates_sql,
    pg_query,
    present_sessions,
    run_cli,
    run_process,
    standin_env,
    to_postgres,
)


def _present(url: str) -> dict[str, str]:
    rows = pg_query(
        url, "select session_id, lock__status from chaster.sessions where removed_at is null"
    )
    return dict(rows)


def _duplicates(url: str) -> int:
    return pg_query(url, duplicates_sql())[0][0]


def test_postgres_full_incremental_and_freshness_runs(
    make_api, home, monkeypatch, capsys, postgres
):
    api = make_api(600)
    configure(monkeypatch, api)
    to_postgres(monkeypatch, postgres)
    first = run_cli(capsys)
    assert first.code == 0, first.err
    assert "600 new" in first.out
    assert "destination: warehouse (dataset chaster)" in first.out
    assert "analytics views: sessions, daily, outcomes" in first.out
    assert _present(postgres) == api.population.truth(SLUG)
    assert not (home / "chaster.duckdb").exists()

    # incremental: 20 new sessions
    api.population.add(SLUG, 20)
    api.clear_log()
    second = run_cli(capsys)
    assert second.code == 0, second.err
    assert "20 new" in second.out
    running = len(api.population.truth(SLUG, "locked"))
    assert api.count("search") == 1 + math.ceil(running / 100)
    assert _present(postgres) == api.population.truth(SLUG)

    # freshness: 3 ended, 2 deleted
    locked = api.population.session_ids(SLUG, "locked")
    for session_id in locked[:3]:
        api.population.end(session_id, "unlocked")
    for session_id in locked[3:5]:
        api.population.delete(session_id)
    third = run_cli(capsys)
    assert third.code == 0, third.err
    assert _present(postgres) == api.population.truth(SLUG)
    removed = pg_query(
        postgres, "select session_id from chaster.sessions where removed_at is not null"
    )
    assert {r[0] for r in removed} == set(locked[3:5])
    assert _duplicates(postgres) == 0
    children = pg_query(
        postgres,
        "select count(*) from chaster.sessions__lock__extensions e "
        "left join chaster.sessions s on s._dlt_id = e._dlt_root_id where s._dlt_id is null",
    )
    assert children == [(0,)]  # re-read sessions left no orphaned child rows
    assert PG_PASSWORD not in first.out + first.err + second.out + third.out


def test_ephemeral_runner_restores_its_cursor_from_postgres(home, make_api, postgres):
    api = make_api(600)
    env = {
        **standin_env(api),
        "CHASTER__DESTINATION": "warehouse",
        "DESTINATION__WAREHOUSE__DESTINATION_TYPE": "postgres",
        "DESTINATION__WAREHOUSE__CREDENTIALS": postgres,
    }
    first = run_process("--quiet", env=env)
    assert first.code == 0, first.err
    shutil.rmtree(home / "dlt")  # the runner is gone; nothing local survives
    api.population.add(SLUG, 7)
    api.clear_log()
    second = run_process("--quiet", env=env)
    assert second.code == 0, second.err
    assert "7 new" in second.out
    running = len(api.population.truth(SLUG, "locked"))
    # the cursor page and the locked sweep; a full reload would have taken 7 pages
    assert api.count("search") == 1 + math.ceil(running / 100)
    assert _present(postgres) == api.population.truth(SLUG)
    assert _duplicates(postgres) == 0
    for path in (home / "dlt").rglob("*"):
        if path.is_file():
            assert PG_PASSWORD.encode() not in path.read_bytes(), path


def test_ephemeral_runner_restores_its_cursor_from_a_duckdb_file(
    make_api, home, monkeypatch, capsys
):
    api = make_api(600)
    configure(monkeypatch, api)
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    shutil.rmtree(home / "dlt")
    api.population.add(SLUG, 7)
    api.clear_log()
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 0, result.err
    running = len(api.population.truth(SLUG, "locked"))
    assert api.count("search") == 1 + math.ceil(running / 100)
    assert present_sessions("out.duckdb") == api.population.truth(SLUG)


def test_an_unreachable_destination_is_one_line_without_its_password(
    make_api, home, monkeypatch, capsys
):
    api = make_api(30)
    configure(monkeypatch, api)
    to_postgres(monkeypatch, f"postgresql://loader:{PG_PASSWORD}@127.0.0.1:9/warehouse")
    result = run_cli(capsys)
    assert result.code == 10, result.err  # 7 is the DuckDB file's
    assert result.err.startswith("error: the destination failed: ")
    assert len(result.err.strip().splitlines()) == 1
    assert PG_PASSWORD not in result.err + result.out


def test_a_wrong_postgres_password_is_a_destination_failure(
    make_api, home, monkeypatch, capsys, postgres_server
):
    import psycopg2

    admin = psycopg2.connect(f"postgresql://postgres@{postgres_server}/postgres")
    try:
        with admin.cursor() as cursor:
            cursor.execute("select 1 from pg_roles where rolname = 'no_such_loader'")
            assert cursor.fetchall() == []
    finally:
        admin.close()
    api = make_api(30)
    configure(monkeypatch, api)
    # trust authentication accepts any password, but not a role that does not exist
    to_postgres(monkeypatch, f"postgresql://no_such_loader:{PG_PASSWORD}@{postgres_server}/x")
    result = run_cli(capsys)
    assert result.code == 10, result.err
    assert 'role "no_such_loader" does not exist' in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert PG_PASSWORD not in result.err + result.out
    assert api.count() == 0


def test_a_missing_postgres_password_is_named_where_it_lives(
    make_api, home, monkeypatch, capsys, postgres
):
    api = make_api(30)
    configure(monkeypatch, api)
    without_password = postgres.replace(f":{PG_PASSWORD}@", "@")
    assert without_password != postgres
    to_postgres(monkeypatch, without_password)
    result = run_cli(capsys)
    assert result.code == 2, result.err
    assert result.err == (
        "error: missing setting: password of destination 'warehouse'; set "
        "DESTINATION__WAREHOUSE__CREDENTIALS__PASSWORD, or password under "
        "[destination.warehouse.credentials] in .dlt/secrets.toml\n"
    )
    assert api.count() == 0
    # set where the line says, the same run goes ahead
    monkeypatch.setenv("DESTINATION__WAREHOUSE__CREDENTIALS__PASSWORD", PG_PASSWORD)
    result = run_cli(capsys)
    assert result.code == 0, result.err
    assert _present(postgres) == api.population.truth(SLUG)
