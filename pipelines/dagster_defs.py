"""Dagster assets for the sessions source, through dagster-dlt, with an hourly schedule.

    .venv/bin/pip install dagster-webserver==1.13.27   # the UI; dagster-dlt is in the dev lock
    .venv/bin/dagster dev -f pipelines/dagster_defs.py

The assets come from the dlt source through dagster-dlt (one asset per dlt resource, in the
group `chaster`: the sessions, and the action logs, which a run skips while the setting
`action_logs` is off), and a materialisation runs it the standard way, `DagsterDltResource.run`, so
Dagster gets dlt's per-table metadata. It runs inside `chaster_sessions.load`, the runner the
command uses, for the run lock, the removal marks, the duplicate repair and the views. Unlike the
command it loads in one `pipeline.run`, not chunk by chunk: Dagster takes one materialisation per
asset and run. Settings come from the same places (.dlt/, SOURCES__CHASTER__* env vars,
CHASTER__DESTINATION); `CHASTER_DUCKDB` names the DuckDB file (default chaster_sessions.duckdb
in the working directory). Three asset checks follow each load: no duplicate session_id, no
orphaned child rows, and a last successful load no older than CHASTER__FRESHNESS_HOURS
(default 2). They are `check_specs` of the asset itself and run in its step, after the load and
under its run lock: DuckDB lets one process at a time open a file read-write, and Dagster's
default executor runs each separate `@asset_check` in a process of its own, at the same time.
"""

# no `from __future__ import annotations`: Dagster reads the context annotation at runtime
import os
from collections.abc import Callable, Iterator, Set
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlt
from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Definitions,
    Failure,
    MaterializeResult,
    ScheduleDefinition,
    define_asset_job,
    multi_asset,
)
from dagster_dlt import DagsterDltResource, build_dlt_asset_specs
from dlt import Pipeline

from chaster_sessions import chaster_source, load
from chaster_sessions.destination import (
    connection,
    duplicate_sessions,
    last_successful_load,
    orphaned_rows,
)
from chaster_sessions.explain import explain
from chaster_sessions.pipeline import chaster_pipeline as build_pipeline
from chaster_sessions.pipeline import configured_destination, configured_name, duckdb_destination
from chaster_sessions.runner import run_lock
from chaster_sessions.schema import ACTION_LOGS, SESSIONS
from chaster_sessions.settings import DATASET, DEFAULT_DUCKDB, PIPELINE_NAME


def chaster_destination() -> Any:
    """The configured destination (CHASTER__DESTINATION), else the DuckDB file CHASTER_DUCKDB."""
    return configured_destination() or duckdb_destination(
        Path(os.environ.get("CHASTER_DUCKDB", DEFAULT_DUCKDB))
    )


def chaster_pipeline() -> dlt.Pipeline:
    """The command's pipeline, built as the command builds it: the same name and the same local
    folder of its destination. It resolves the destination's settings, so it is built at run
    time; it connects to nothing until it runs."""
    return build_pipeline(chaster_destination(), configured_name())


# This source object only tells dagster-dlt which assets exist; it is never run. Its settings
# are placeholders so that loading the definitions needs no token: each run reads the real ones.
# It has the action logs on, so their asset exists whatever the setting says at run time.
_ASSET_SPEC_SOURCE = chaster_source(
    api_token="read-at-run-time",  # noqa: S106 - a placeholder, never sent
    extension_slug="read-at-run-time",
    action_logs=True,
)

SESSIONS_ASSET = AssetKey(["dlt_chaster_sessions"])
ACTION_LOGS_ASSET = AssetKey(["dlt_chaster_action_logs"])
DEFAULT_FRESHNESS_HOURS = 2.0  # the schedule is hourly: one missed run is still fresh
SESSION_CHECKS = [
    AssetCheckSpec(
        "no_duplicate_sessions", asset=SESSIONS_ASSET, description="no session_id is stored twice"
    ),
    AssetCheckSpec(
        "no_orphaned_child_rows",
        asset=SESSIONS_ASSET,
        description="every child row belongs to a stored session",
    ),
    AssetCheckSpec(
        "sessions_are_fresh",
        asset=SESSIONS_ASSET,
        description="the last successful load is no older than CHASTER__FRESHNESS_HOURS "
        f"(default {DEFAULT_FRESHNESS_HOURS:g})",
    ),
]


def asset_specs() -> list[AssetSpec]:
    """dagster-dlt's specs, one per resource. The logs' asset depends on the sessions' (it reads
    the logs of the stored sessions) and may be skipped: with `action_logs` off a run does not
    materialise it."""
    specs = build_dlt_asset_specs(
        dlt_source=_ASSET_SPEC_SOURCE,
        # names only: loading the definitions must not need the destination's secrets
        dlt_pipeline=dlt.pipeline(
            PIPELINE_NAME, destination=chaster_destination(), dataset_name=DATASET
        ),
    )
    return [
        spec.replace_attributes(deps=[*spec.deps, SESSIONS_ASSET], skippable=True)
        if spec.key == ACTION_LOGS_ASSET
        else spec
        for spec in specs
    ]


# What `@dlt_assets` builds (dagster-dlt's own specs, one subsettable multi-asset), plus the
# checks, which `@dlt_assets` takes no parameter for.
@multi_asset(
    specs=asset_specs(),
    check_specs=SESSION_CHECKS,
    name="chaster",
    group_name="chaster",
    can_subset=True,
)
def chaster_sessions(
    context: AssetExecutionContext, dlt: DagsterDltResource
) -> Iterator[MaterializeResult | AssetCheckResult]:
    """Load new and changed sessions and, with `action_logs` on, the action logs of the stored
    sessions; then check the stored data, in one step. Either asset can be materialised alone.

    The checks run under the load's run lock. Checks selected without the asset (from the UI)
    take that lock themselves, so they never open the file while another run loads into it.
    """
    selected = context.selected_asset_check_keys
    results: list[AssetCheckResult] = []

    def run_checks(pipeline: Pipeline) -> None:
        results.extend(evaluate_checks(pipeline, selected))

    try:
        if context.selected_asset_keys:
            yield from _materialize(context, dlt, after_load=run_checks)
        else:
            pipeline = chaster_pipeline()
            with run_lock(pipeline):
                run_checks(pipeline)
    except Exception as exc:  # the same one readable line the command prints
        raise Failure(description=explain(exc).message) from None
    yield from results


def _materialize(
    context: AssetExecutionContext,
    dlt: DagsterDltResource,
    after_load: Callable[[Pipeline], None],
) -> Iterator[MaterializeResult]:
    """The load through dagster-dlt; each materialisation carries dlt's per-table metadata and
    the run's figures."""
    materialized: list[Any] = []
    source = chaster_source()
    selected = [
        name
        for key, name in ((SESSIONS_ASSET, SESSIONS), (ACTION_LOGS_ASSET, ACTION_LOGS))
        if key in context.selected_asset_keys and name in source.resources
    ]
    if ACTION_LOGS_ASSET in context.selected_asset_keys and ACTION_LOGS not in source.resources:
        context.log.info(
            "action logs are off (setting action_logs, SOURCES__CHASTER__ACTION_LOGS): "
            f"{ACTION_LOGS_ASSET.to_user_string()} is not materialised"
        )
    if not selected:
        return
    # the runner waits only for the resources it is handed (`runner.resources_extracted`)
    source = source.with_resources(*selected)

    def run_once(pipeline: Any, source: Any, file_format: Any) -> None:
        materialized.extend(
            dlt.run(
                context=context,
                dlt_source=source,
                dlt_pipeline=pipeline,
                loader_file_format=file_format,
            )
        )

    result = load(
        chaster_pipeline(), source, chunked=False, run_once=run_once, after_load=after_load
    )
    record = result.record
    if record.views_error:
        context.log.warning(record.views_error)
    counts = record.requests
    figures = {
        SESSIONS_ASSET: {
            "new": record.new_sessions,
            "re_read": record.re_read,
            "total": record.total_sessions,
            "requests": counts.requests - counts.log_requests,
            "rate_limited": counts.rate_limited,
            "rate_limit_wait_seconds": round(counts.rate_limit_wait, 1),
        },
        ACTION_LOGS_ASSET: record.logs.figures() if record.logs is not None else {},
    }
    for event in materialized:
        metadata = {**event.metadata, **figures.get(event.asset_key, {})}
        yield MaterializeResult(asset_key=event.asset_key, metadata=metadata)


def evaluate_checks(pipeline: Pipeline, selected: Set[AssetCheckKey]) -> list[AssetCheckResult]:
    """The selected checks, in the order of SESSION_CHECKS, on one connection."""
    run = {
        "no_duplicate_sessions": no_duplicate_sessions,
        "no_orphaned_child_rows": no_orphaned_child_rows,
        "sessions_are_fresh": sessions_are_fresh,
    }
    with connection(pipeline):
        return [run[spec.name](pipeline) for spec in SESSION_CHECKS if spec.key in selected]


def no_duplicate_sessions(pipeline: Pipeline | None = None) -> AssetCheckResult:
    """No session_id is stored twice."""
    extra = duplicate_sessions(pipeline or chaster_pipeline())
    return _result("no_duplicate_sessions", extra == 0, {"duplicate_rows": extra})


def no_orphaned_child_rows(pipeline: Pipeline | None = None) -> AssetCheckResult:
    """Every child row belongs to a stored session; the metadata counts orphans per table."""
    orphans = orphaned_rows(pipeline or chaster_pipeline())
    return _result(
        "no_orphaned_child_rows", not orphans, {"orphaned_rows": sum(orphans.values()), **orphans}
    )


def sessions_are_fresh(pipeline: Pipeline | None = None) -> AssetCheckResult:
    """dlt's last completed load is no older than CHASTER__FRESHNESS_HOURS."""
    hours = float(dlt.config.get("chaster.freshness_hours", float) or DEFAULT_FRESHNESS_HOURS)
    last = last_successful_load(pipeline or chaster_pipeline())
    if last is None:
        return _result("sessions_are_fresh", False, {"last_successful_load": "never"})
    age = (datetime.now(UTC) - last).total_seconds() / 3600
    return _result(
        "sessions_are_fresh",
        age <= hours,
        {
            "last_successful_load": last.isoformat(),
            "age_hours": round(age, 2),
            "max_age_hours": hours,
        },
    )


def _result(check_name: str, passed: bool, metadata: dict[str, Any]) -> AssetCheckResult:
    return AssetCheckResult(
        asset_key=SESSIONS_ASSET, check_name=check_name, passed=passed, metadata=metadata
    )


chaster_job = define_asset_job("chaster_sessions_job", selection=[chaster_sessions])

defs = Definitions(
    assets=[chaster_sessions],
    jobs=[chaster_job],
    schedules=[ScheduleDefinition(job=chaster_job, cron_schedule="17 * * * *")],
    resources={"dlt": DagsterDltResource()},
)
