"""One record of a run: everything `load` did, built once, on success and on failure.

The summary a person reads (`report.summary`), the JSON a scheduler alerts on
(`report.write_report`), the row of the runs table (`runs.row`), the report page
(`html_report.render`) and the Dagster metadata each only format a `RunRecord`; none of them
gathers figures of its own, and none imports the runner.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .client import RequestCounts
from .errors import ChasterError, ViewsError, known_secrets, redact
from .explain import explain
from .interrupts import interruption

Counts = dict[str, tuple[int, int]]  # slug -> (sessions stored, of which marked removed)


@dataclass
class CursorReport:
    """What one cursor found and chose in this run, as values for the run's record."""

    order: str | None = None  # the API's order, once a walk saw it
    refresh: str | None = None  # what the refresh chose and why, or the sweep's line
    page_size: str | None = None  # a page size learned from the API's refusal, and why
    updated: int = 0  # sessions re-read (refresh, sweep, --session-id)


@dataclass
class Outcome:
    """How a run ended, as the command, the report and the runs table say it."""

    status: str  # succeeded, failed, interrupted, loaded_but_views_failed
    exit_code: int
    error: str | None = None

    @classmethod
    def of(cls, exc: BaseException | None, views_error: str | None = None) -> Outcome:
        if exc is None:
            if views_error:
                return cls("loaded_but_views_failed", ViewsError.exit_code, views_error)
            return cls("succeeded", 0)
        stop = interruption(exc)
        if stop is not None:
            return cls("interrupted", stop.exit_code, stop.describe())
        error: ChasterError = explain(exc)
        return cls("failed", error.exit_code, redact(error.message, known_secrets()))


@dataclass
class LogFigures:
    """What the action logs of one run cost and brought."""

    sessions: int = 0  # sessions whose log was read
    entries: int = 0  # entries newer than the stored ones
    gone: int = 0  # sessions the API answered 404 for
    left: int | None = None  # sessions never read, after the run (None: not counted)
    order: dict[str, str] | None = None  # per slug, the order of entries seen
    running: int = 0  # stored sessions still running: each run reads them before the backlog
    budget: int = 0  # the requests a run may spend on logs (`action_log_requests`)
    requests: int = 0  # the requests this run spent on them

    def figures(self) -> dict[str, Any]:
        """The same figures for the JSON report and the runs table."""
        return {
            "sessions_read": self.sessions,
            "requests": self.requests,
            "new_entries": self.entries,
            "sessions_gone": self.gone,
            "sessions_not_yet_read": self.left,
            "requests_per_run": self.budget,
            "order": self.order or {},
        }

    def line(self) -> str:
        """`action logs: 142 sessions read (150 requests), 1,204 new entries; 3,850 sessions
        not yet read (about 7 runs at 600 a run)`."""
        text = (
            f"action logs: {self.sessions:,} sessions read ({self.requests:,} requests), "
            f"{self.entries:,} new entries"
        )
        if self.gone:
            text += f", {self.gone:,} session{'s' if self.gone != 1 else ''} gone (HTTP 404)"
        if self.left:
            text += f"; {self.left:,} sessions not yet read "
            spare = self.budget - self.running  # what the running sessions leave the backlog
            if spare <= 0:
                text += (
                    f"(the {self.running:,} running sessions take the whole budget of "
                    f"{self.budget:,} a run; raise action_log_requests)"
                )
            else:
                runs = -(-self.left // spare)
                text += f"(about {runs:,} run{'s' if runs != 1 else ''} at {self.budget:,} a run)"
        elif self.left == 0:
            text += "; no stored session is left unread"
        return text


@dataclass
class RunRecord:
    """What one run did and where its data is."""

    pipeline: str
    dataset: str
    destination: str  # the destination's type: "duckdb", "postgres", ...
    pipelines_dir: str  # dlt's local folder of the pipeline
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    outcome: Outcome = field(default_factory=lambda: Outcome("succeeded", 0))
    chunks: int = 0
    resumed: bool = False  # the previous run stopped mid-backfill or left a package unloaded
    repaired: int = 0  # duplicate rows an interrupted load had left, removed by this run
    requests: RequestCounts = field(default_factory=RequestCounts)
    before: Counts = field(default_factory=dict)
    after: Counts = field(default_factory=dict)
    extensions: dict[str, dict[str, Any]] = field(default_factory=dict)  # per slug, `per_slug`
    schema_changes: list[str] = field(default_factory=list)  # tables, columns, variants added
    views: list[str] = field(default_factory=list)  # analytics views re-created
    views_error: str | None = None  # why they could not be (the load itself stands)
    runs_error: str | None = None  # why the run's row in the runs table was not written
    session_repairs: dict[str, str] = field(default_factory=dict)  # --session-id: id -> outcome
    tables: dict[str, int] = field(default_factory=dict)  # rows per table, after a success
    logs: LogFigures | None = None  # with `action_logs` on

    @property
    def seconds(self) -> float:
        return (self.finished_at or time.time()) - self.started_at

    @property
    def new_sessions(self) -> int:
        return sum(figures["new"] for figures in self.extensions.values())

    @property
    def re_read(self) -> int:
        return sum(figures["updated"] for figures in self.extensions.values())

    @property
    def total_sessions(self) -> int:
        return sum(figures["total"] for figures in self.extensions.values())


def per_slug(
    reports: dict[str, CursorReport], requests: RequestCounts, before: Counts, after: Counts
) -> dict[str, dict[str, Any]]:
    """The run's figures per extension: new, re-read, removed, requests, what it chose."""
    seen = {slug for slug, report in reports.items() if report.order is not None}
    slugs = sorted(set(after) | seen | set(requests.by_slug) - {""})
    figures = {}
    for slug in slugs:
        report = reports.get(slug, CursorReport())
        total, removed = after.get(slug, before.get(slug, (0, 0)))
        total_before, removed_before = before.get(slug, (0, 0))
        figures[slug] = {
            "new": total - total_before,
            "updated": report.updated,
            "newly_removed": removed - removed_before,
            "total": total,
            "removed": removed,
            "requests": requests.by_slug.get(slug, 0),
            "sort_order": report.order,
            "refresh": report.refresh,
            "page_size": report.page_size,
        }
    return figures
