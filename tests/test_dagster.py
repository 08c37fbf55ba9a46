"""The Dagster assets (through dagster-dlt) run the same load as the command: in-process, and
from Dagster's own command line with its default (multiprocess) executor."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, SLUG, configure, present_sessions, standin_env

CHECKS = {"no_duplicate_sessions", "no_orphaned_child_rows", "sessions_are_fresh"}


def test_dagster_materialisations_load_and_then_continue(make_api, home, monkeypatch):
    from dagster import materialize

    api = make_api(300)
    configure(monkeypatch, api)
    monkeypatch.setenv("CHASTER_DUCKDB", str(home / "dagster.duckdb"))
    from pipelines.dagster_defs import chaster_sessions, defs

    resources = {"dlt": defs.resources["dlt"]}
    first = materialize([chaster_sessions], resources=resources)
    assert first.success
    [event] = first.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert event.asset_key.path == ["dlt_chaster_sessions"]
    assert metadata["new"].value == 300
    assert metadata["requests"].value == api.count() == 3
    assert present_sessions(home / "dagster.duckdb") == api.population.truth(SLUG)

    api.population.add(SLUG, 4)
    api.clear_log()
    second = materialize([chaster_sessions], resources=resources)
    assert second.success
    [event] = second.get_asset_materialization_events()
    assert event.materialization.metadata["new"].value == 4
    assert present_sessions(home / "dagster.duckdb") == api.population.truth(SLUG)
    assert defs.get_schedule_def("chaster_sessions_job_schedule").cron_schedule == "17 * * * *"


def test_after_a_killed_run_the_asset_is_materialised_once_and_complete(
    make_api, home, monkeypatch
):
    """dagster-dlt drops a package a killed run left (the state comes back from the
    destination) and extracts: one load, one materialisation, nothing missed."""
    from dagster import materialize

    from chaster_sessions import chaster_source

    api = make_api(300)
    configure(monkeypatch, api)
    monkeypatch.setenv("CHASTER_DUCKDB", str(home / "dagster.duckdb"))
    from pipelines.dagster_defs import chaster_pipeline, chaster_sessions, defs

    resources = {"dlt": defs.resources["dlt"]}
    assert materialize([chaster_sessions], resources=resources).success
    api.population.add(SLUG, 6)
    chaster_pipeline().extract(chaster_source())  # a run killed after its extract
    api.population.add(SLUG, 4)
    result = materialize([chaster_sessions], resources=resources)
    assert result.success
    [event] = result.get_asset_materialization_events()
    assert event.materialization.metadata["new"].value == 10
    assert present_sessions(home / "dagster.duckdb") == api.population.truth(SLUG)


def test_dagster_failure_is_the_same_readable_line(make_api, home, monkeypatch):
    from dagster import materialize

    api = make_api(30)
    configure(monkeypatch, api, token="not-the-token")
    monkeypatch.setenv("CHASTER_DUCKDB", str(home / "dagster.duckdb"))
    from pipelines.dagster_defs import chaster_sessions, defs

    result = materialize(
        [chaster_sessions], resources={"dlt": defs.resources["dlt"]}, raise_on_error=False
    )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "the API refused the token (HTTP 401" in failure.message
    assert "not-the-token" not in failure.to_string()


def test_dagster_asset_checks_pass_then_catch_duplicates_orphans_and_staleness(
    make_api, home, monkeypatch
):
    import duckdb
    from dagster import materialize

    api = make_api(300)
    configure(monkeypatch, api)
    database = home / "dagster.duckdb"
    monkeypatch.setenv("CHASTER_DUCKDB", str(database))
    from pipelines.dagster_defs import (
        chaster_sessions,
        defs,
        no_duplicate_sessions,
        no_orphaned_child_rows,
        sessions_are_fresh,
    )

    result = materialize([chaster_sessions], resources={"dlt": defs.resources["dlt"]})
    assert result.success
    passed = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert passed == {
        "no_duplicate_sessions": True,
        "no_orphaned_child_rows": True,
        "sessions_are_fresh": True,
    }
    job = defs.resolve_job_def("chaster_sessions_job")  # the hourly schedule runs them too
    assert {k.name for k in job.asset_layer.asset_graph.asset_check_keys} == set(passed)

    with duckdb.connect(str(database)) as con:
        con.execute(
            "insert into chaster.sessions select * replace (_dlt_id || '-copy' as _dlt_id) "
            "from chaster.sessions order by session_id limit 2"
        )
        con.execute(
            "insert into chaster.sessions__lock__extensions select * replace "
            "('no-such-session' as _dlt_root_id, _dlt_id || '-orphan' as _dlt_id) "
            "from chaster.sessions__lock__extensions order by _dlt_id limit 3"
        )
        con.execute("update chaster._dlt_loads set inserted_at = inserted_at - interval 3 hours")
    duplicates = no_duplicate_sessions()
    assert (duplicates.passed, duplicates.metadata["duplicate_rows"].value) == (False, 2)
    orphans = no_orphaned_child_rows()
    assert orphans.passed is False
    assert orphans.metadata["sessions__lock__extensions"].value == 3
    assert orphans.metadata["orphaned_rows"].value == 3
    stale = sessions_are_fresh()
    assert stale.passed is False
    assert 3.0 <= stale.metadata["age_hours"].value < 3.1
    monkeypatch.setenv("CHASTER__FRESHNESS_HOURS", "4")
    assert sessions_are_fresh().passed is True


def test_dagster_command_line_runs_load_and_checks_in_a_row(make_api, home):
    """`dagster asset materialize --select '*'` as a user types it: the default executor gives
    each step its own process, and DuckDB lets one process at a time open the file read-write.
    The checks run in the asset's one step, after the load, so no run trips over a lock."""
    api = make_api(30)
    database = home / "dagster.duckdb"
    env = {
        **os.environ,
        **standin_env(api),
        "CHASTER_DUCKDB": str(database),
        "DAGSTER_HOME": str(home / "dagster_home"),
        "PYTHONPATH": str(ROOT / "sources"),  # this checkout's package, in every step process
    }
    (home / "dagster_home").mkdir()
    command = [
        str(Path(sys.executable).parent / "dagster"),
        *("asset", "materialize", "-f", str(ROOT / "pipelines" / "dagster_defs.py")),
        *("--select", "*"),
    ]
    for run in range(2):  # a first load, then one that goes on from it
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=180)
        log = done.stdout + done.stderr
        assert done.returncode == 0, log[-3000:]
        assert "RUN_SUCCESS" in log
        assert "RUN_FAILURE" not in log
        assert re.findall(r'STEP_START - Started execution of step "([^"]+)"', log) == ["chaster"]
        passed = re.findall(r"Asset check '(\w+)' on 'dlt_chaster_sessions' passed", log)
        assert sorted(passed) == sorted(CHECKS), log[-3000:]
        assert present_sessions(database) == api.population.truth(SLUG)
        api.population.add(SLUG, run + 1)
