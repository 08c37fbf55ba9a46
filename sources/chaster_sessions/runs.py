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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import ChasterError, ViewsError, known_secrets, redact
from .explain import explain
from .interrupts import interruption
from .stats import RunStats

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


def per_slug(
    stats: RunStats, before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]
) -> dict[str, dict[str, Any]]:
    """The run's figures per extension: new, re-read, removed, requests, ..."""
    slugs = sorted(set(after) | set(stats.order_seen) | set(stats.requests_by_slug) - {""})
    figures = {}
    for slug in slugs:
        total, removed = after.get(slug, before.get(slug, (0, 0)))
        total_before, removed_before = before.get(slug, (0, 0))
        figures[slug] = {
            "new": total - total_before,
            "updated": stats.updated.get(slug, 0),
            "newly_removed": removed - removed_before,
            "total": total,
            "removed": removed,
            "requests": stats.requests_by_slug.get(slug, 0),
            "sort_order": stats.order_seen.get(slug),
            "refresh": stats.refresh.get(slug),
            "page_size": stats.page_size.get(slug),
        }
    return figures


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
