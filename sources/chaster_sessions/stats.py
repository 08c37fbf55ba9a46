"""What a run spent and found: counters for the summary, the JSON report and the progress line.

Only figures live here. What carries a run across its chunks (which walks began, what was running
before) is control state and lives in `chunking.py`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .chunking import RunControl


@dataclass
class RunStats:
    """Counters of one run, shared by its chunks. Nothing in here steers the load."""

    requests: int = 0
    search_requests: int = 0
    get_requests: int = 0
    pages: int = 0
    retries: int = 0
    resumed: bool = False  # the previous run stopped mid-backfill or left a package unloaded
    repaired: int = 0  # duplicate rows an interrupted load had left, removed by this run
    stored_before: dict[str, tuple[int, int]] = field(default_factory=dict)  # slug -> counts
    rate_limited: int = 0  # 429 answers
    rate_limit_wait: float = 0.0  # seconds waited because of 429s or an exhausted budget
    pacing_wait: float = 0.0  # seconds spent spacing requests under the budget
    order_seen: dict[str, str] = field(default_factory=dict)  # slug -> "asc"/"desc"/"unknown"
    refresh: dict[str, str] = field(default_factory=dict)  # slug -> what the refresh chose, why
    updated: dict[str, int] = field(default_factory=dict)  # slug -> sessions re-read
    page_size: dict[str, str] = field(default_factory=dict)  # slug -> a learned page cap, why
    requests_by_slug: dict[str, int] = field(default_factory=dict)
    views: list[str] = field(default_factory=list)  # analytics views re-created after the load
    views_error: str | None = None  # why they could not be (the load itself succeeded)
    schema_changes: list[str] = field(default_factory=list)  # tables, columns, variants added
    runs_error: str | None = None  # why the run's row in the runs table was not written
    session_repairs: dict[str, str] = field(default_factory=dict)  # --session-id: id -> outcome
    started_at: float = field(default_factory=time.time)

    def absorb(self, run: RunControl) -> None:
        """Take the run's request counts and each cursor's decisions."""
        counts = run.counts
        self.requests, self.search_requests = counts.requests, counts.search_requests
        self.get_requests, self.pages, self.retries = (
            counts.get_requests,
            counts.pages,
            counts.retries,
        )
        self.rate_limited, self.rate_limit_wait = counts.rate_limited, counts.rate_limit_wait
        self.pacing_wait, self.requests_by_slug = counts.pacing_wait, dict(counts.by_slug)
        self.session_repairs = dict(run.session_repairs)
        for cursor in run.cursors():
            report = cursor.report
            if report.order is not None:
                self.order_seen[cursor.slug] = report.order
            if report.refresh is not None:
                self.refresh[cursor.slug] = report.refresh
            if report.page_size is not None:
                self.page_size[cursor.slug] = report.page_size
            if report.updated:
                self.updated[cursor.slug] = self.updated.get(cursor.slug, 0) + report.updated
