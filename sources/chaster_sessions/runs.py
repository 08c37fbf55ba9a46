"""Run history in the destination: one row per run in `<dataset>._chaster_runs`.

Every run that reached a loaded dataset appends a row, whether it succeeded or failed: when it
ran, how it ended (the same error line the command prints), what it found per extension and what
it cost. The row is written with the destination's SQL client, never through dlt, so it cannot
load a failed run's pending package or move a cursor; it is the only thing a failed run adds.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dlt

from .analytics import DIALECTS
from .db import connection, query
from .errors import ChasterError, ViewsError, known_secrets, redact
from .explain import explain
from .interrupts import interruption
from .stats import RunStats

RUNS_TABLE = "_chaster_runs"

_JSON = {"duckdb": "json", "postgres": "jsonb"}
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
    ("version", "text", "version of chaster_sessions that ran"),
    ("pipeline", "text", "dlt pipeline name"),
)


@dataclass
class Outcome:
    """How a run ended, as the command, the report and the runs table say it."""

    status: str  # succeeded, failed, interrupted, loaded_but_views_failed
    exit_code: int
    error: str | None = None

    @classmethod
    def of(cls, stats: RunStats, exc: BaseException | None) -> Outcome:
        if exc is None:
            if stats.views_error:
                return cls("loaded_but_views_failed", ViewsError.exit_code, stats.views_error)
            return cls("succeeded", 0)
        stop = interruption(exc)
        if stop is not None:
            return cls("interrupted", stop.exit_code, stop.describe())
        error: ChasterError = explain(exc)
        return cls("failed", error.exit_code, redact(error.message, known_secrets()))


def version() -> str:
    from . import __version__

    return __version__


def row(
    stats: RunStats,
    outcome: Outcome,
    counts: tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]]],
    *,
    chunks: int,
    pipeline_name: str,
    finished_at: float | None = None,
) -> dict[str, Any]:
    """The runs table's row of a run: the same facts as the JSON report."""
    from .report import per_slug  # report imports the runner, which imports this module

    finished = finished_at if finished_at is not None else time.time()
    return {
        "started_at": datetime.fromtimestamp(stats.started_at, UTC),
        "finished_at": datetime.fromtimestamp(finished, UTC),
        "status": outcome.status,
        "exit_code": outcome.exit_code,
        "error": outcome.error,
        "seconds": round(finished - stats.started_at, 3),
        "chunks": chunks,
        "resumed": stats.resumed,
        "requests": stats.requests,
        "search_requests": stats.search_requests,
        "get_requests": stats.get_requests,
        "retries": stats.retries,
        "rate_limited": stats.rate_limited,
        "rate_limit_wait_seconds": round(stats.rate_limit_wait, 3),
        "extensions": json.dumps(per_slug(stats, *counts), sort_keys=True),
        "schema_changes": json.dumps(stats.schema_changes),
        "version": version(),
        "pipeline": pipeline_name,
    }


def _dataset_loaded(pipeline: dlt.Pipeline) -> bool:
    """True once dlt has loaded into the dataset: a failed first run adds nothing, not even a
    runs table (and on DuckDB leaves no file behind)."""
    from .runner import duckdb_path

    path = duckdb_path(pipeline)
    if path is not None and not path.exists():
        return False
    found = query(
        pipeline,
        "select count(*) from information_schema.tables where table_schema = %s "
        "and table_name = '_dlt_version'",
        pipeline.dataset_name,
    )
    return bool(found and found[0][0])


def record(pipeline: dlt.Pipeline, values: dict[str, Any]) -> str | None:
    """Append the row; returns why it could not be written, if it could not (never raises: the
    history must not turn a run's real outcome into another)."""
    from .runner import destination_kind

    kind = destination_kind(pipeline)
    if kind not in DIALECTS:
        return f"not written on {kind} (DuckDB and PostgreSQL only)"
    try:
        if not _dataset_loaded(pipeline):
            return "not written: nothing was ever loaded into the dataset"
        json_type = _JSON[DIALECTS[kind]]
        with connection(pipeline) as client:
            table = client.make_qualified_table_name(RUNS_TABLE)
            columns = ", ".join(
                f"{name} {json_type if sql == 'json' else sql}" for name, sql, _ in COLUMNS
            )
            client.execute_sql(f"create table if not exists {table} ({columns})")
            names = [name for name, _, _ in COLUMNS]
            client.execute_sql(
                f"insert into {table} ({', '.join(names)}) "  # noqa: S608 - names are constants
                f"values ({', '.join(['%s'] * len(names))})",
                *[values[name] for name in names],
            )
    except Exception as exc:  # reported in the summary, never raised
        first = str(exc).strip().splitlines() or [type(exc).__name__]
        return f"not written ({redact(first[0], known_secrets())})"
    return None
