"""Run history in the destination: one row per run in `<dataset>._chaster_runs`.

Every run that reached a loaded dataset appends a row, whether it succeeded or failed: when it
ran, how it ended (the same error line the command prints), what it found per extension and what
it cost. This module says what the row holds; `destination.append_run` writes it with the
destination's SQL client, never through dlt, so it cannot load a failed run's pending package or
move a cursor; it is the only thing a failed run adds.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from .record import RunRecord
from .settings import VERSION

RUNS_TABLE = "_chaster_runs"

COLUMNS = (  # name, SQL type ("json": the dialect's JSON type), description
    ("started_at", "timestamp with time zone", "when the run started (UTC)"),
    ("finished_at", "timestamp with time zone", "when it ended (UTC)"),
    (
        "status",
        "text",
        "`succeeded`, `failed`, `interrupted` or `loaded_but_views_failed`, as in `--report`",
    ),
    ("exit_code", "integer", "the command's exit code (0: success; see the README)"),
    ("error", "text", "the line the command printed after `error: `; null on success"),
    ("seconds", "double precision", "how long the run took, in seconds"),
    ("chunks", "integer", "loads committed by the run"),
    ("resumed", "boolean", "the run went on from an interrupted one"),
    ("requests", "integer", "requests sent to the API"),
    ("search_requests", "integer", "of those, searches (pages)"),
    ("get_requests", "integer", "of those, GETs of one session"),
    ("retries", "integer", "requests tried again after a fault"),
    ("rate_limited", "integer", "429 answers"),
    ("rate_limit_wait_seconds", "double precision", "seconds waited because of rate limits"),
    (
        "extensions",
        "json",
        "per extension slug: `new`, `updated` (re-read), `newly_removed`, `total`, `removed`, "
        "`requests`, `sort_order`, `refresh` (JSON)",
    ),
    (
        "schema_changes",
        "json",
        "what the run added to the schema: tables, columns, columns for a new type (JSON list)",
    ),
    (
        "action_logs",
        "json",
        "with `action_logs` on: `sessions_read`, `requests`, `new_entries`, `sessions_gone`, "
        "`sessions_not_yet_read`, `requests_per_run`, `order` (JSON); null when off",
    ),
    ("version", "text", "version of chaster_sessions that ran"),
    ("pipeline", "text", "dlt pipeline name"),
)


def row(record: RunRecord) -> dict[str, Any]:
    """The runs table's row of a run: the same facts as the JSON report."""
    requests, finished = record.requests, record.finished_at or time.time()
    return {
        "started_at": datetime.fromtimestamp(record.started_at, UTC),
        "finished_at": datetime.fromtimestamp(finished, UTC),
        "status": record.outcome.status,
        "exit_code": record.outcome.exit_code,
        "error": record.outcome.error,
        "seconds": round(finished - record.started_at, 3),
        "chunks": record.chunks,
        "resumed": record.resumed,
        "requests": requests.requests,
        "search_requests": requests.search_requests,
        "get_requests": requests.get_requests,
        "retries": requests.retries,
        "rate_limited": requests.rate_limited,
        "rate_limit_wait_seconds": round(requests.rate_limit_wait, 3),
        "extensions": json.dumps(record.extensions, sort_keys=True),
        "schema_changes": json.dumps(record.schema_changes),
        "action_logs": json.dumps(record.logs.figures()) if record.logs is not None else None,
        "version": VERSION,
        "pipeline": record.pipeline,
    }
