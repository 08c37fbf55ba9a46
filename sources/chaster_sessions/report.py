"""A run's record as the summary a person reads and the JSON a scheduler alerts on.

Both only format the `RunRecord` that `load` built. No token or credential can reach either:
error messages are redacted where they are made.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .analytics import DIALECTS
from .analytics import SCHEMA as VIEWS_SCHEMA
from .contract import summary_line
from .record import RunRecord
from .runs import RUNS_TABLE
from .settings import VERSION


def summary(record: RunRecord, where: str) -> str:
    """The lines printed at the end of a successful run."""
    chunks, requests = record.chunks, record.requests
    lines = [
        f"chaster: run finished in {record.seconds:.1f}s "
        f"({chunks} chunk{'s' if chunks != 1 else ''})"
    ]
    if record.resumed:
        lines.append("  resumed an interrupted run from its last committed chunk")
    if record.repaired:
        lines.append(
            f"  removed {record.repaired:,} duplicate rows an interrupted load had left "
            "(dlt-hub/dlt#3023)"
        )
    for slug, f in record.extensions.items():
        lines.append(
            f"  {slug}: {f['new']:,} new, {f['updated']:,} re-read, "
            f"{f['newly_removed']:,} newly removed; {f['total']:,} in total "
            f"({f['removed']:,} removed); API sort order seen: {f['sort_order'] or 'unknown'}"
        )
        if f["refresh"]:
            lines.append(f"    refresh: {f['refresh']}")
        if f["page_size"]:
            lines.append(f"    page size: {f['page_size']}; kept for later runs")
    if record.session_repairs:
        repairs = "; ".join(f"{sid} {what}" for sid, what in record.session_repairs.items())
        lines.append(f"  sessions asked for: {repairs}")
    schema_line = summary_line(record.schema_changes, first_load=not record.before)
    if schema_line:
        lines.append(f"  {schema_line}")
    logs = f", {requests.log_requests} logs" if record.logs is not None else ""
    lines.append(
        f"  requests: {requests.requests} ({requests.search_requests} search, "
        f"{requests.get_requests} get{logs}), {requests.pages} pages, {requests.retries} retries"
    )
    if record.logs is not None:
        lines.append(f"  {record.logs.line()}")
    lines.append(
        f"  rate limits: {requests.rate_limited} x 429, waited {requests.rate_limit_wait:.1f}s; "
        f"pacing {requests.pacing_wait:.1f}s"
    )
    lines.append(f"  {where}")
    lines.append(
        f"  local folder: {record.pipelines_dir} (`dlt pipeline --pipelines-dir "
        f"{record.pipelines_dir} {record.pipeline} info` shows it)"
    )
    if record.runs_error:
        lines.append(f"  run history: {record.runs_error}")
    else:
        lines.append(f"  run history: a row appended to {record.dataset}.{RUNS_TABLE}")
    if record.views:
        names = ", ".join(v.split(".", 1)[1] for v in record.views)
        lines.append(f"  analytics views: {names} (schema {VIEWS_SCHEMA})")
    if record.destination not in DIALECTS:
        lines.append(
            f"  analytics views: not created on {record.destination} (DuckDB and PostgreSQL only)"
        )
    lines.append("  tables: " + ", ".join(f"{t} ({n:,})" for t, n in record.tables.items()))
    return "\n".join(lines)


def write_report(path: Path, record: RunRecord, destination: str, location: str) -> None:
    """The run as JSON for schedulers and monitors: what `--report PATH` writes, on success and
    on failure alike. `destination` and `location` say where the data went, as the command
    names it."""
    requests, outcome = record.requests, record.outcome
    finished = record.finished_at or time.time()
    report = {
        "status": outcome.status,
        "exit_code": outcome.exit_code,
        "error": outcome.error,
        "pipeline": record.pipeline,
        "destination": destination,
        "location": location,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.started_at)),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(finished)),
        "seconds": round(finished - record.started_at, 3),
        "chunks": record.chunks,
        "resumed": record.resumed,
        "requests": {
            "total": requests.requests,
            "search": requests.search_requests,
            "get": requests.get_requests,
            "pages": requests.pages,
            "retries": requests.retries,
            "rate_limited": requests.rate_limited,
            "rate_limit_wait_seconds": round(requests.rate_limit_wait, 3),
            "pacing_wait_seconds": round(requests.pacing_wait, 3),
        },
        "extensions": record.extensions,
        "views": record.views,
        "schema_changes": record.schema_changes,
        "sessions_asked_for": record.session_repairs,
        "action_logs": record.logs.figures() if record.logs is not None else None,
        "version": VERSION,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
