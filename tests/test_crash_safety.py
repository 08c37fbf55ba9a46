"""Killing the pipeline (SIGKILL) at any moment loses at most the chunk in flight.

Each trial starts the real command against a slowed stand-in, kills it at random moments
(during extract, normalize or load), and finally lets one run finish: DuckDB must then equal
the stand-in exactly. `python task.py stress` runs many more trials.
"""

from __future__ import annotations

import os
import random
import signal
import time

import pytest

from chaster_standin import Population, StandIn, StandInConfig
from conftest import (
    SLUG,
    TOKEN,
    duplicate_rows,
    killed_after_commits,
    log_requests_needed,
    query,
    run_process,
    standin_env,
    start_process,
    stored_log,
)


def _kill_trials(
    tmp_path, trials: int, kills: int, seed: int, sessions: int, logs: bool = False
) -> list[tuple[int, int]]:
    """`trials` populations of `sessions`, each loaded by `kills` killed runs and a last one;
    chunks of two pages (200 sessions) each cost about as much to commit whatever their size,
    so `sessions` sets how long a run lasts: long enough for the kills to land mid-run.
    With `logs`, every second trial reads action logs too (newest first, then oldest first):
    once the sessions stand, later runs start in the logs phase, so kills land there."""
    rng = random.Random(seed)
    outcomes = []
    for trial in range(trials):
        with_logs = logs and trial % 2 == 1
        log_order = "desc" if trial % 4 == 1 else "asc"
        api = StandIn(
            Population(sessions, seed=100 + trial),
            StandInConfig(token=TOKEN, latency=0.02, log_order=log_order),
        ).start()
        try:
            env = {
                **os.environ,
                **standin_env(api, chunk_pages="2", action_logs=str(with_logs).lower()),
                "DLT_DATA_DIR": str(tmp_path / f"dlt{trial}"),
            }
            db = tmp_path / f"trial{trial}.duckdb"
            killed = 0
            for _ in range(kills):
                proc = start_process("--duckdb", str(db), env=env, quiet=True)
                time.sleep(rng.uniform(1.5, 4.5))  # past dlt's import, into the chunks
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    killed += 1
                proc.wait()
            final = run_process("--duckdb", str(db), env=env)
            assert final.code == 0, final.err
            truth = api.population.truth(SLUG)
            stored = dict(query(db, "select session_id, lock__status from chaster.sessions"))
            assert stored == truth, f"trial {trial}: {len(stored)} stored, {len(truth)} in the API"
            assert duplicate_rows(db) == 0
            if with_logs:
                assert_logs_caught_up(db, api.population.log_truth(SLUG), f"trial {trial}")
            outcomes.append((killed, len(stored)))
        finally:
            api.stop()
    return outcomes


def test_killed_runs_resume_and_converge(tmp_path, home):
    # 6 chunks a run: the kills (1.9, 4.0 and 3.8 s, then 2.3, 3.0 and 2.9 s after each start
    # for seed 1) come after dlt's import and before the last chunk, at least the first ones
    outcomes = _kill_trials(tmp_path, trials=2, kills=3, seed=1, sessions=1200)
    assert sum(killed for killed, _ in outcomes) >= 3  # the kills did land mid-run
    assert all(stored == 1200 for _, stored in outcomes)


def test_resumed_run_says_so(tmp_path, home, make_api):
    api = make_api(1000, latency=0.02)  # 10 pages, 5 chunks of two
    env = standin_env(api, chunk_pages="2")
    killed_after_commits(home, 2, "--duckdb", "out.duckdb", env=env)
    committed = query("out.duckdb", "select count(*) from chaster.sessions")[0][0]
    assert 0 < committed < 1000
    api.clear_log()
    result = run_process("--duckdb", "out.duckdb", env=env)
    assert result.code == 0, result.err
    assert "resumed an interrupted run" in result.out
    # continued from the last committed chunk, not started over: the pages after it, then,
    # no longer a first load, one page of the running locks (44 of them, under one page of 100)
    assert len(api.population.truth(SLUG, "locked")) == 44
    assert api.count("search") == (1000 - committed) // 100 + 1
    assert (
        query("out.duckdb", "select count(distinct session_id) from chaster.sessions")[0][0] == 1000
    )


def assert_logs_caught_up(db, truth: dict[str, list[str]], trial: str = "") -> None:
    """No entry stored twice, and every session whose history is caught up (its cursor says
    complete, or it is running: read in this run) holds exactly the API's entries. A backlog
    the budget left for later runs is not checked."""
    assert query(db, "select count(*) = count(distinct log_id) from chaster.action_logs") == [
        (True,)
    ], trial
    caught_up = query(
        db,
        "select s.session_id from chaster.sessions s join chaster.action_log_cursors c "
        "using (session_id) where c.complete or s.lock__status = 'locked'",
    )
    assert caught_up, trial
    stored = stored_log(db)
    for (session_id,) in caught_up:
        assert stored.get(session_id, []) == truth[session_id], f"{trial}: {session_id}"


# newest first in the suite; oldest first with the stress trials (`python task.py stress`)
@pytest.mark.parametrize("log_order", ["desc", pytest.param("asc", marks=pytest.mark.stress)])
def test_a_run_killed_while_it_reads_logs_loses_and_doubles_nothing(tmp_path, home, log_order):
    """SIGKILL in the logs phase, after some of its chunks are committed. A run with logs off
    then ends (the killed run's `pending` is the logs' own, not a reason to wait) and reads no
    log. Entries arrive and a session ends; a run with logs on reads only what is needed and
    leaves every session's history equal to the API's, no entry twice."""
    api = StandIn(
        Population(100, seed=7), StandInConfig(token=TOKEN, latency=0.03, log_order=log_order)
    ).start()
    try:
        # chunks of five pages: a logs chunk holds about 500 entries, some 17 sessions
        env = {**standin_env(api, chunk_pages="5"), "SOURCES__CHASTER__ACTION_LOGS": "true"}
        db = home / "out.duckdb"
        proc = start_process("--duckdb", str(db), env=env, quiet=True)
        deadline = time.monotonic() + 60
        while api.count("logs") <= 30 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "the run ended before the kill"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        truth = api.population.log_truth(SLUG)
        assert 0 < query(db, "select count(*) from chaster.action_log_cursors")[0][0] < 100

        api.clear_log()
        logs_off = run_process(
            "--duckdb", str(db), env={**env, "SOURCES__CHASTER__ACTION_LOGS": "false"}, timeout=60
        )
        assert logs_off.code == 0, logs_off.err
        assert api.count("logs") == 0

        running = api.population.session_ids(SLUG, "locked")
        for session_id in running[:2]:
            api.population.add_log_entries(session_id, 3)
        api.population.end(running[2], "deserted")
        truth = api.population.log_truth(SLUG)
        needed = log_requests_needed(db, truth)
        api.clear_log()
        final = run_process("--duckdb", str(db), env=env)
        assert final.code == 0, final.err
        assert api.count("logs") == needed
        assert_logs_caught_up(db, truth)
        assert stored_log(db) == {sid: ids for sid, ids in truth.items() if ids}
        incomplete = query(
            db, "select session_id from chaster.action_log_cursors where not complete"
        )
        assert sorted(sid for (sid,) in incomplete) == sorted(
            api.population.session_ids(SLUG, "locked")
        )
    finally:
        api.stop()


@pytest.mark.stress
def test_many_killed_runs_converge(tmp_path, home):
    outcomes = _kill_trials(tmp_path, trials=25, kills=5, seed=2, sessions=2400, logs=True)
    print(f"\n{len(outcomes)} trials, {sum(k for k, _ in outcomes)} kills, all converged")


def test_rows_a_killed_load_inserted_twice_are_removed(make_api, home, monkeypatch, capsys):
    """dlt can insert a package's root rows twice when killed mid-merge (dlt-hub/dlt#3023; the
    kill trials above hit it about once in 20 trials). Made here by hand, the same way it
    looks: identical rows, same `_dlt_id`."""
    import duckdb

    from conftest import configure, run_cli

    api = make_api(300)
    configure(monkeypatch, api)
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    with duckdb.connect("out.duckdb") as con:
        con.execute("insert into chaster.sessions select * from chaster.sessions limit 5")
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 0, result.err
    assert "removed 5 duplicate rows an interrupted load had left" in result.out
    assert query(
        "out.duckdb", "select count(*), count(distinct _dlt_id) from chaster.sessions"
    ) == [(300, 300)]
