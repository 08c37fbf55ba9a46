"""After every run DuckDB equals the API: ended, changed, deleted and returning sessions."""

from __future__ import annotations

import json
import math

import pytest

from conftest import (
    SLUG,
    configure,
    duplicate_rows,
    present_sessions,
    query,
    removed_sessions,
    run_cli,
    stored_sessions,
)


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_refresh_by_locked_sweep_and_gets(make_api, home, monkeypatch, capsys, order):
    api = make_api(1000, order=order)  # 44 running: a locked sweep beats a full one
    pop = api.population
    configure(monkeypatch, api)
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    locked = pop.session_ids(SLUG, "locked")
    ended, deleted, changed = locked[:5], locked[5:7], locked[7:10]
    for i, session_id in enumerate(ended):
        pop.end(session_id, "deserted" if i == 0 else "unlocked")
    for session_id in deleted:
        pop.delete(session_id)
    for session_id in changed:
        pop.change(session_id, score=42)
    new = pop.add(SLUG, 7)
    old_lock = pop.add(SLUG, 1, on_old_lock=True)  # behind the cursor in both orders
    api.clear_log()

    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 0, result.err
    locked_now = len(pop.truth(SLUG, "locked"))
    # new-session page + locked sweep + one GET per session that left the locked set
    assert api.count("search") == 1 + math.ceil(locked_now / 100)
    assert api.count("get") == len(ended) + len(deleted)
    assert (
        "refresh: locked sweep + " in result.out
        and "full sweep" not in result.out.split("refresh:")[1].split("<=")[0]
    )
    assert present_sessions("out.duckdb") == pop.truth(SLUG)
    assert removed_sessions("out.duckdb") == set(deleted)
    assert set(new + old_lock) <= set(stored_sessions("out.duckdb"))
    assert stored_sessions("out.duckdb")[ended[0]] == "deserted"
    data = query(
        "out.duckdb", "select data from chaster.sessions where session_id = ?", [changed[0]]
    )
    assert json.loads(data[0][0])["score"] == 42
    assert duplicate_rows("out.duckdb") == 0


def test_refresh_by_full_sweep_when_cheaper(make_api, home, monkeypatch, capsys):
    api = make_api(300)
    pop = api.population
    configure(monkeypatch, api)
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    locked = pop.session_ids(SLUG, "locked")
    assert len(locked) > 4  # enough leavers that GETs cost more than 3 pages
    for session_id in locked[:-1]:
        pop.end(session_id)
    pop.delete(locked[-1])
    gone_long_ago = pop.session_ids(SLUG, "unlocked")[0]
    pop.delete(gone_long_ago)  # an ended session deleted: only a full sweep can notice
    api.clear_log()
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 0, result.err
    assert "full sweep" in result.out
    # new-session page + first locked page (to count) + 3-page full sweep; no GETs
    assert api.count("search") == 1 + 1 + 3
    assert api.count("get") == 0
    assert present_sessions("out.duckdb") == pop.truth(SLUG)
    assert removed_sessions("out.duckdb") == {locked[-1], gone_long_ago}


def test_child_rows_of_an_updated_session_are_replaced(make_api, home, monkeypatch, capsys):
    api = make_api(500)
    configure(monkeypatch, api)
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    before = query("out.duckdb", "select count(*) from chaster.sessions__lock__extensions")[0][0]
    for session_id in api.population.session_ids(SLUG, "locked")[:3]:
        api.population.change(session_id, step=1)
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    after = query("out.duckdb", "select count(*) from chaster.sessions__lock__extensions")[0][0]
    assert after == before
    orphans = query(
        "out.duckdb",
        "select count(*) from chaster.sessions__lock__extensions e "
        "left join chaster.sessions s on e._dlt_root_id = s._dlt_id where s._dlt_id is null",
    )
    assert orphans[0][0] == 0


def test_a_removed_session_that_comes_back_is_cleared(make_api, home, monkeypatch, capsys):
    api = make_api(400)
    pop = api.population
    configure(monkeypatch, api)
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    victim = pop.session_ids(SLUG, "locked")[0]
    pop.delete(victim)
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    assert removed_sessions("out.duckdb") == {victim}
    pop.restore(victim)
    assert run_cli(capsys, "--duckdb", "out.duckdb", "--full-refresh").code == 0
    assert removed_sessions("out.duckdb") == set()
    assert present_sessions("out.duckdb") == pop.truth(SLUG)


def test_full_refresh_converges_and_keeps_user_objects(make_api, home, monkeypatch, capsys):
    api = make_api(400)
    pop = api.population
    configure(monkeypatch, api)
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    import duckdb

    with duckdb.connect("out.duckdb") as con:
        con.execute("create schema analysis")
        con.execute(
            "create view analysis.locked as "
            "select * from chaster.sessions where lock__status = 'locked'"
        )
    ended_and_deleted = pop.session_ids(SLUG, "unlocked")[:4]
    for session_id in ended_and_deleted:
        pop.delete(session_id)
    result = run_cli(capsys, "--duckdb", "out.duckdb", "--full-refresh")
    assert result.code == 0, result.err
    assert "4 newly removed" in result.out
    assert present_sessions("out.duckdb") == pop.truth(SLUG)
    assert removed_sessions("out.duckdb") == set(ended_and_deleted)
    assert query("out.duckdb", "select count(*) from analysis.locked")[0][0] == len(
        pop.truth(SLUG, "locked")
    )


def test_status_locked_filter_refreshes_its_sessions(make_api, home, monkeypatch, capsys):
    api = make_api(1000)
    pop = api.population
    configure(monkeypatch, api, status="locked")
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    assert stored_sessions("out.duckdb") == pop.truth(SLUG, "locked")
    ended = pop.session_ids(SLUG, "locked")[:2]
    for session_id in ended:
        pop.end(session_id)
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    stored = stored_sessions("out.duckdb")
    assert {stored[s] for s in ended} == {"unlocked"}  # final state, fetched by GET
    assert api.count("get") == 2
