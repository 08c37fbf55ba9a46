"""The Dagster assets (through dagster-dlt) run the same load as the command: in-process, and
from Dagster's own command line with its default (multiprocess) executor."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import (
    ROOT,
    SLUG,
    configure,
    has_table,
    log_requests_needed,
    present_sessions,
    standin_env,
    stored_log,
)

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


def test_action_logs_are_an_asset_of_their_own(make_api, home, monkeypatch):
    """Materialising only the sessions reads no log; only the logs reads no session and reads
    the logs of the stored sessions; both: the sessions, then the logs of those stored before
    (the running ones again, one request each)."""
    from dagster import materialize

    api = make_api(60)
    configure(monkeypatch, api, action_logs="true")
    database = home / "dagster.duckdb"
    monkeypatch.setenv("CHASTER_DUCKDB", str(database))
    from pipelines.dagster_defs import ACTION_LOGS_ASSET, SESSIONS_ASSET, chaster_sessions, defs

    resources = {"dlt": defs.resources["dlt"]}
    assert ACTION_LOGS_ASSET.path == ["dlt_chaster_action_logs"]
    assert set(chaster_sessions.keys) == {SESSIONS_ASSET, ACTION_LOGS_ASSET}
    assert chaster_sessions.asset_deps[ACTION_LOGS_ASSET] >= {SESSIONS_ASSET}

    sessions = materialize([chaster_sessions], selection=[SESSIONS_ASSET], resources=resources)
    assert sessions.success
    assert [e.asset_key for e in sessions.get_asset_materialization_events()] == [SESSIONS_ASSET]
    assert (api.count("search"), api.count("logs")) == (1, 0)
    assert not has_table(database, "action_logs")

    truth = api.population.log_truth(SLUG)
    needed = log_requests_needed(database, truth)
    assert needed >= 60
    api.clear_log()
    logs = materialize([chaster_sessions], selection=[ACTION_LOGS_ASSET], resources=resources)
    assert logs.success
    [event] = logs.get_asset_materialization_events()
    assert event.asset_key == ACTION_LOGS_ASSET
    metadata = event.materialization.metadata
    assert (api.count("search"), api.count("logs")) == (0, needed)
    assert (metadata["sessions_read"].value, metadata["requests"].value) == (60, needed)
    assert metadata["new_entries"].value == sum(len(ids) for ids in truth.values())
    assert stored_log(database) == truth

    running = api.population.session_ids(SLUG, "locked")
    api.population.add_log_entries(running[0], 2)
    api.population.add(SLUG, 3)  # new in the next run: their logs come in the run after
    truth = api.population.log_truth(SLUG)
    api.clear_log()
    both = materialize([chaster_sessions], resources=resources)
    assert both.success
    events = {
        e.asset_key: e.materialization.metadata for e in both.get_asset_materialization_events()
    }
    assert set(events) == {SESSIONS_ASSET, ACTION_LOGS_ASSET}
    assert events[SESSIONS_ASSET]["new"].value == 3
    assert events[SESSIONS_ASSET]["requests"].value == api.count("search") + api.count("get")
    assert api.count("logs") == len(running) == events[ACTION_LOGS_ASSET]["requests"].value
    assert events[ACTION_LOGS_ASSET]["new_entries"].value == 2
    stored = stored_log(database)
    assert stored == {sid: ids for sid, ids in truth.items() if sid in stored}
    assert len(stored) == 60


def test_with_action_logs_off_their_asset_materialises_nothing(make_api, home, monkeypatch):
    from dagster import materialize

    api = make_api(30)
    configure(monkeypatch, api)
    database = home / "dagster.duckdb"
    monkeypatch.setenv("CHASTER_DUCKDB", str(database))
    from pipelines.dagster_defs import ACTION_LOGS_ASSET, SESSIONS_ASSET, chaster_sessions, defs

    resources = {"dlt": defs.resources["dlt"]}
    result = materialize([chaster_sessions], resources=resources)
    assert result.success
    assert [e.asset_key for e in result.get_asset_materialization_events()] == [SESSIONS_ASSET]
    assert (api.count(), api.count("logs")) == (1, 0)
    api.clear_log()
    alone = materialize([chaster_sessions], selection=[ACTION_LOGS_ASSET], resources=resources)
    assert alone.success
    assert alone.get_asset_materialization_events() == []
    assert api.count() == 0
    assert not has_table(database, "action_logs")


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
    The checks run in the asset's one step, after the load, so no run trips over a lock. With
    action logs on, each run reads the logs of the sessions stored before it: none at first,
    then exactly the 30 of the first run's, at one request per page."""
    api = make_api(30)
    database = home / "dagster.duckdb"
    env = {
        **os.environ,
        **standin_env(api, action_logs="true"),
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
    needed = 0  # log requests: no session is stored before the first run
    for run in range(2):  # a first load, then one that goes on from it
        stored_before = set(present_sessions(database)) if run else set()
        api.clear_log()
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=180)
        log = done.stdout + done.stderr
        assert done.returncode == 0, log[-3000:]
        assert "RUN_SUCCESS" in log
        assert "RUN_FAILURE" not in log
        assert re.findall(r'STEP_START - Started execution of step "([^"]+)"', log) == ["chaster"]
        passed = re.findall(r"Asset check '(\w+)' on 'dlt_chaster_sessions' passed", log)
        assert sorted(passed) == sorted(CHECKS), log[-3000:]
        assert present_sessions(database) == api.population.truth(SLUG)
        materialised = re.findall(r"Materialized value (\w+)", log)
        assert sorted(materialised) == ["dlt_chaster_action_logs", "dlt_chaster_sessions"], log
        assert api.count("logs") == needed
        truth = api.population.log_truth(SLUG)
        assert stored_log(database) == {sid: truth[sid] for sid in stored_before}
        api.population.add(SLUG, run + 1)
        needed = log_requests_needed(database, api.population.log_truth(SLUG))
