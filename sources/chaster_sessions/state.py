"""What this source keeps in dlt's state, written down once: cursors per (extension, status).

The state stays the size of the cursors: what was running, what is stored and what a sweep saw
live in the destination. Only `cursor.CursorRun` changes a cursor's entry during a run; this
module only names the keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict


class Position(TypedDict, total=False):
    """Where a walk over search pages stands (`paging.Cursor` reads and writes it)."""

    high: str | None  # every session with a paginationId up to this one has been loaded
    order: str | None  # "asc" / "desc" once seen (or forced)
    walk_top: str | None  # a descending walk cut into chunks: the newest id of that walk ...
    walk_after: str | None  # ... and the last id it loaded, where the next chunk goes on


class SweepState(Position, total=False):
    """Where a periodic full sweep (`sweep.py`) stands, committed with the pages it covers."""

    started_at: float  # when the sweep began: becomes `last_sweep` once it is complete


class CursorState(Position, total=False):
    """dlt state of one (extension, status) walk, under `cursors` in the resource state."""

    removed: dict[str, str]  # sessionId -> when a GET first answered 404 for it
    locked: dict[str, str]  # earlier versions kept the running set here; dropped when read
    last_sweep: float  # when the last full sweep began; rows not reloaded since are gone
    sweep: SweepState  # a periodic full sweep in progress, cut at a chunk boundary
    first_walk_began: float  # a first walk in progress: when complete, it is a full sweep
    sweep_clock_from: float  # no sweep recorded (loaded by an older version): period starts


class ResourceState(TypedDict, total=False):
    """dlt state of the `sessions` resource."""

    cursors: dict[str, CursorState]  # by `cursor_key(slug, status)`
    pending: bool  # the runner stopped at a chunk boundary: the next chunk goes on
    page_cap: int  # the largest page the API accepted, once it refused a larger one


def cursor_key(slug: str, status: str) -> str:
    """Cursors are kept per extension and status filter: a `locked` walk proves nothing of `all`."""
    return f"{slug}|{status}"


def split_key(key: str) -> tuple[str, str]:
    """(slug, status) of a `cursor_key`."""
    slug, status = key.split("|", 1)
    return slug, status


ENDED = ("unlocked", "deserted")


@dataclass(frozen=True)
class LogTask:
    """One session whose action log a chunk may read, and where its stored history ends."""

    session_id: str
    slug: str
    status: str | None  # the session's `lock.status` as stored: read after its end, complete
    newest: str | None  # the newest stored entry's id; None: never read (or re-read whole)

    @property
    def ended(self) -> bool:
        return self.status in ENDED
