"""Dagster assets for the sessions source, through dagster-dlt, with an hourly schedule.

    .venv/bin/pip install dagster-webserver==1.13.27   # the UI; dagster-dlt is in the dev lock
    .venv/bin/dagster dev -f pipelines/dagster_defs.py

The assets come from the dlt source through dagster-dlt (one asset per dlt resource, in the
group `chaster`), and a materialisation runs it the standard way, `DagsterDltResource.run`, so
Dagster gets dlt's per-table metadata. It runs inside `chaster_sessions.load`, the runner the
command uses, for the run lock, the removal marks, the duplicate repair and the views. Unlike the
command it loads in one `pipeline.run`, not chunk by chunk: Dagster takes one materialisation per
asset and run. Settings come from the same places (.dlt/, SOURCES__CHASTER__* env vars,
CHASTER__DESTINATION); `CHASTER_DUCKDB` names the DuckDB file (default chaster_sessions.duckdb
in the working directory). Three asset checks follow each materialisation: no duplicate
session_id, no orphaned child rows, and a last successful load no older than
CHASTER__FRESHNESS_HOURS (default 2).
"""

# no `from __future__ import annotations`: Dagster reads the context annotation at runtime
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import dlt
from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    Definitions,
    Failure,
    MaterializeResult,
    ScheduleDefinition,
    asset_check,
    define_asset_job,
)
from dagster_dlt import DagsterDltResource, dlt_assets

from chaster_sessions import RunStats, chaster_source, checks, load
from chaster_sessions.errors import explain
from chaster_sessions.settings import DATASET, DEFAULT_DUCKDB, PIPELINE_NAME


def chaster_pipeline() -> dlt.Pipeline:
    """The command's pipeline: the configured destination, else the DuckDB file. It connects to
    nothing until it runs."""
    destination: Any = dlt.config.get("chaster.destination", str)
    if not destination or destination == "duckdb":
        destination = dlt.destinations.duckdb(os.environ.get("CHASTER_DUCKDB", DEFAULT_DUCKDB))
    return dlt.pipeline(PIPELINE_NAME, destination=destination, dataset_name=DATASET)


# This source object only tells dagster-dlt which assets exist; it is never run. Its settings
# are placeholders so that loading the definitions needs no token: each run reads the real ones.
_ASSET_SPEC_SOURCE = chaster_source(
    api_token="read-at-run-time",  # noqa: S106 - a placeholder, never sent
    extension_slug="read-at-run-time",
)


@dlt_assets(
    dlt_source=_ASSET_SPEC_SOURCE,
    dlt_pipeline=chaster_pipeline(),
    name="chaster",
    group_name="chaster",
)
def chaster_sessions(
    context: AssetExecutionContext, dlt: DagsterDltResource
) -> Iterator[MaterializeResult]:
    """Load new and changed sessions; each materialisation carries dlt's per-table metadata and
    the run's figures."""
    stats = RunStats()
    materialized: list[Any] = []

    def run_once(pipeline: Any, source: Any, file_format: Any) -> None:
        materialized.extend(
            dlt.run(
                context=context,
                dlt_source=source,
                dlt_pipeline=pipeline,
                loader_file_format=file_format,
            )
        )

    try:
        result = load(
            chaster_pipeline(), chaster_source(), stats=stats, chunked=False, run_once=run_once
        )
    except Exception as exc:  # the same one readable line the command prints
        raise Failure(description=explain(exc).message) from None
    if stats.views_error:
        context.log.warning(stats.views_error)
    figures = {
        "new": sum(
            total - result.before.get(s, (0, 0))[0] for s, (total, _) in result.after.items()
        ),
        "re_read": sum(stats.updated.values()),
        "total": sum(total for total, _ in result.after.values()),
        "requests": stats.requests,
        "rate_limited": stats.rate_limited,
        "rate_limit_wait_seconds": round(stats.rate_limit_wait, 1),
    }
    for event in materialized:
        yield MaterializeResult(asset_key=event.asset_key, metadata={**event.metadata, **figures})


SESSIONS_ASSET = AssetKey(["dlt_chaster_sessions"])
DEFAULT_FRESHNESS_HOURS = 2.0  # the schedule is hourly: one missed run is still fresh


@asset_check(asset=SESSIONS_ASSET, description="no session_id is stored twice")
def no_duplicate_sessions() -> AssetCheckResult:
    extra = checks.duplicate_sessions(chaster_pipeline())
    return AssetCheckResult(passed=extra == 0, metadata={"duplicate_rows": extra})


@asset_check(asset=SESSIONS_ASSET, description="every child row belongs to a stored session")
def no_orphaned_child_rows() -> AssetCheckResult:
    orphans = checks.orphaned_rows(chaster_pipeline())
    return AssetCheckResult(
        passed=not orphans, metadata={"orphaned_rows": sum(orphans.values()), **orphans}
    )


@asset_check(
    asset=SESSIONS_ASSET,
    description="the last successful load is no older than CHASTER__FRESHNESS_HOURS "
    f"(default {DEFAULT_FRESHNESS_HOURS:g})",
)
def sessions_are_fresh() -> AssetCheckResult:
    hours = float(dlt.config.get("chaster.freshness_hours", float) or DEFAULT_FRESHNESS_HOURS)
    last = checks.last_successful_load(chaster_pipeline())
    if last is None:
        return AssetCheckResult(passed=False, metadata={"last_successful_load": "never"})
    age = (datetime.now(UTC) - last).total_seconds() / 3600
    return AssetCheckResult(
        passed=age <= hours,
        metadata={
            "last_successful_load": last.isoformat(),
            "age_hours": round(age, 2),
            "max_age_hours": hours,
        },
    )


session_checks = [no_duplicate_sessions, no_orphaned_child_rows, sessions_are_fresh]
chaster_job = define_asset_job("chaster_sessions_job", selection=[chaster_sessions])

defs = Definitions(
    assets=[chaster_sessions],
    asset_checks=session_checks,
    jobs=[chaster_job],
    schedules=[ScheduleDefinition(job=chaster_job, cron_schedule="17 * * * *")],
    resources={"dlt": DagsterDltResource()},
)
