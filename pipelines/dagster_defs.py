"""Dagster assets for the sessions pipeline, through dagster-dlt, with an hourly schedule.

    .venv/bin/pip install dagster-webserver==1.13.27   # the UI; dagster-dlt is in the lock
    .venv/bin/dagster dev -f pipelines/dagster_defs.py

The assets come from the dlt source through dagster-dlt (one asset per dlt resource, in the
group `chaster`). A materialisation runs exactly what `python pipelines/sessions.py` runs:
the chunked incremental load, the refresh of running sessions, the removal marks and the
`analytics` views. Settings come from the same places (.dlt/, SOURCES__CHASTER__* env vars,
CHASTER__DESTINATION); `CHASTER_DUCKDB` names the DuckDB file (default chaster.duckdb in the
working directory).
"""

# no `from __future__ import annotations`: Dagster reads the context annotation at runtime
import os
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dagster import (  # noqa: E402
    AssetExecutionContext,
    Definitions,
    Failure,
    MaterializeResult,
    ScheduleDefinition,
    define_asset_job,
)
from dagster_dlt import DagsterDltResource, dlt_assets  # noqa: E402

from pipelines.sessions import (  # noqa: E402
    DEFAULT_DUCKDB,
    PIPELINE_NAME,
    RunPlan,
    configured_destination,
    explain,
    load,
    make_pipeline,
)
from sources.chaster import RunStats, chaster  # noqa: E402


def current_plan() -> RunPlan:
    """The run's settings, read when a run starts (not when the definitions load)."""
    path = Path(os.environ.get("CHASTER_DUCKDB", DEFAULT_DUCKDB)).resolve()
    return RunPlan(PIPELINE_NAME, path, {}, destination=configured_destination())


# This source object only tells dagster-dlt which assets exist; it is never run. Its settings
# are placeholders so that loading the definitions needs no token: each run reads the real ones.
_ASSET_SPEC_SOURCE = chaster(
    api_token="read-at-run-time",  # noqa: S106 - a placeholder, never sent
    extension_slug="read-at-run-time",
)


@dlt_assets(
    dlt_source=_ASSET_SPEC_SOURCE,
    dlt_pipeline=make_pipeline(current_plan()),
    name="chaster",
    group_name="chaster",
)
def chaster_sessions(
    context: AssetExecutionContext, dlt: DagsterDltResource
) -> Iterator[MaterializeResult]:
    """Load new and changed sessions; the materialisation carries the run's figures."""
    plan = current_plan()
    stats = RunStats()
    try:
        chunks, _, after = load(plan, stats)
    except Exception as exc:  # the same one readable line the command prints
        raise Failure(description=explain(exc).message) from None
    if stats.views_error:
        context.log.warning(stats.views_error)
    metadata = {
        "new": sum(after[s][0] - stats.stored_before.get(s, (0, 0))[0] for s in after),
        "re_read": sum(stats.updated.values()),
        "total": sum(total for total, _ in after.values()),
        "requests": stats.requests,
        "rate_limited": stats.rate_limited,
        "rate_limit_wait_seconds": round(stats.rate_limit_wait, 1),
        "chunks": chunks,
        "destination": plan.where(),
    }
    for key in context.selected_asset_keys:
        yield MaterializeResult(asset_key=key, metadata=metadata)


chaster_job = define_asset_job("chaster_sessions_job", selection=[chaster_sessions])

defs = Definitions(
    assets=[chaster_sessions],
    jobs=[chaster_job],
    schedules=[ScheduleDefinition(job=chaster_job, cron_schedule="17 * * * *")],
    resources={"dlt": DagsterDltResource()},
)
