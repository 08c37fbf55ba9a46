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
    query,
    run_process,
    standin_env,
    start_process,
)


def _kill_trials(
    tmp_path, trials: int, kills: int, seed: int, sessions: int
) -> list[tuple[int, int]]:
    """`trials` populations of `sessions`, each loaded by `kills` killed runs and a last one;
    chunks of two pages (200 sessions) each cost about as much to commit whatever their size,
    so `sessions` sets how long a run lasts: long enough for the kills to land mid-run."""
    rng = random.Random(seed)
    outcomes = []
    for trial in range(trials):
        api = StandIn(
            Population(sessions, seed=100 + trial), StandInConfig(token=TOKEN, latency=0.02)
        ).start()
        try:
            env = {
                **os.environ,
                **standin_env(api, chunk_pages="2"),
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


@pytest.mark.stress
def test_many_killed_runs_converge(tmp_path, home):
    outcomes = _kill_trials(tmp_path, trials=25, kills=5, seed=2, sessions=2400)
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
