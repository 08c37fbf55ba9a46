"""What a run spent and found: counters for the summary, the JSON report and the progress line.

Only figures live here. What carries a run across its chunks (which walks began, what was running
before) is control state and lives in `chunking.py`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class RunStats:
    """Counters of one run, shared by its chunks. Nothing in here steers the load."""

    requests: int = 0
    search_requests: int = 0
    get_requests: int = 0
    pages: int = 0
    sessions_fetched: int = 0
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
    current_slug: str = ""  # the extension being fetched, so requests are counted per slug
    requests_by_slug: dict[str, int] = field(default_factory=dict)
    views: list[str] = field(default_factory=list)  # analytics views re-created after the load
    views_error: str | None = None  # why they could not be (the load itself succeeded)
    schema_changes: list[str] = field(default_factory=list)  # tables, columns, variants added
    runs_error: str | None = None  # why the run's row in the runs table was not written
    session_repairs: dict[str, str] = field(default_factory=dict)  # --session-id: id -> outcome
    started_at: float = field(default_factory=time.time)
    progress: Callable[[RunStats, str, int], None] | None = None  # (stats, slug, total count)
    on_wait: Callable[[float, str], None] | None = None  # (seconds, why): a long wait begins

    def count_request(self, method: str) -> None:
        self.requests += 1
        slug = self.current_slug
        self.requests_by_slug[slug] = self.requests_by_slug.get(slug, 0) + 1
        if method == "POST":
            self.search_requests += 1
        else:
            self.get_requests += 1

    def count_updated(self, slug: str, sessions: int) -> None:
        self.updated[slug] = self.updated.get(slug, 0) + sessions

    def announce_wait(self, seconds: float, why: str) -> None:
        """Tell the progress output of a wait long enough (2 s or more) to look like a hang."""
        if self.on_wait is not None and seconds >= 2:
            self.on_wait(seconds, why)
