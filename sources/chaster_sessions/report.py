"""The figures of a run, as the summary a person reads and the JSON a scheduler alerts on.

No token or credential can reach either: error messages are redacted where they are made.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from .analytics import DIALECTS
from .analytics import SCHEMA as VIEWS_SCHEMA
from .contract import summary_line
from .destination import destination_kind, table_counts
from .runner import LoadResult
from .runs import RUNS_TABLE, Outcome, per_slug, version
from .stats import RunStats

__all__ = ["Outcome", "per_slug", "summary", "write_report"]


def summary(result: LoadResult, where: str, seconds: float) -> str:
    """The lines printed at the end of a successful run."""
    stats = result.stats
    chunks = result.chunks
    lines = [
        f"chaster: run finished in {seconds:.1f}s ({chunks} chunk{'s' if chunks != 1 else ''})"
    ]
    if stats.resumed:
        lines.append("  resumed an interrupted run from its last committed chunk")
    if stats.repaired:
        lines.append(
            f"  removed {stats.repaired:,} duplicate rows an interrupted load had left "
            "(dlt-hub/dlt#3023)"
        )
    for slug, f in per_slug(stats, result.before, result.after).items():
        lines.append(
            f"  {slug}: {f['new']:,} new, {f['updated']:,} re-read, "
            f"{f['newly_removed']:,} newly removed; {f['total']:,} in total "
            f"({f['removed']:,} removed); API sort order seen: {f['sort_order'] or 'unknown'}"
        )
        if f["refresh"]:
            lines.append(f"    refresh: {f['refresh']}")
        if f["page_size"]:
            lines.append(f"    page size: {f['page_size']}; kept for later runs")
    if stats.session_repairs:
        repairs = "; ".join(f"{sid} {what}" for sid, what in stats.session_repairs.items())
        lines.append(f"  sessions asked for: {repairs}")
    schema_line = summary_line(stats.schema_changes, first_load=not result.before)
    if schema_line:
        lines.append(f"  {schema_line}")
    lines.append(
        f"  requests: {stats.requests} ({stats.search_requests} search, {stats.get_requests} get), "
        f"{stats.pages} pages, {stats.retries} retries"
    )
    lines.append(
        f"  rate limits: {stats.rate_limited} x 429, waited {stats.rate_limit_wait:.1f}s; "
        f"pacing {stats.pacing_wait:.1f}s"
    )
    lines.append(f"  {where}")
    pipeline = result.pipeline
    lines.append(
        f"  local folder: {pipeline.pipelines_dir} (`dlt pipeline --pipelines-dir "
        f"{pipeline.pipelines_dir} {pipeline.pipeline_name} info` shows it)"
    )
    if stats.runs_error:
        lines.append(f"  run history: {stats.runs_error}")
    else:
        lines.append(
            f"  run history: a row appended to {result.pipeline.dataset_name}.{RUNS_TABLE}"
        )
    if stats.views:
        names = ", ".join(v.split(".", 1)[1] for v in stats.views)
        lines.append(f"  analytics views: {names} (schema {VIEWS_SCHEMA})")
    kind = destination_kind(result.pipeline)
    if kind not in DIALECTS:
        lines.append(f"  analytics views: not created on {kind} (DuckDB and PostgreSQL only)")
    counts = table_counts(result.pipeline)
    lines.append("  tables: " + ", ".join(f"{t} ({n:,})" for t, n in counts.items()))
    return "\n".join(lines)


def write_report(
    path: Path,
    run: dict[str, Any],
    stats: RunStats,
    outcome: Outcome,
    counts: tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]]],
) -> None:
    """The run as JSON for schedulers and monitors: what `--report PATH` writes, on success and
    on failure alike. `run` holds pipeline, destination, location, started_at, seconds and
    chunks."""
    before, after = counts
    started_at, seconds = run["started_at"], run["seconds"]
    report = {
        "status": outcome.status,
        "exit_code": outcome.exit_code,
        "error": outcome.error,
        "pipeline": run["pipeline"],
        "destination": run["destination"],
        "location": run["location"],
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started_at)),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started_at + seconds)),
        "seconds": round(seconds, 3),
        "chunks": run["chunks"],
        "resumed": stats.resumed,
        "requests": {
            "total": stats.requests,
            "search": stats.search_requests,
            "get": stats.get_requests,
            "pages": stats.pages,
            "retries": stats.retries,
            "rate_limited": stats.rate_limited,
            "rate_limit_wait_seconds": round(stats.rate_limit_wait, 3),
            "pacing_wait_seconds": round(stats.pacing_wait, 3),
        },
        "extensions": per_slug(stats, before, after),
        "views": stats.views,
        "schema_changes": stats.schema_changes,
        "sessions_asked_for": stats.session_repairs,
        "version": version(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
