"""The Dagster assets (through dagster-dlt) run the same load as the command, in-process."""

from __future__ import annotations

from conftest import SLUG, configure, present_sessions


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
