"""Repairing chosen sessions: `--session-id ID` re-reads each with one GET, and nothing else.

The stored row is replaced by the API's answer (merged on `sessionId`), or, when the API answers
404, the session is recorded as removed and `destination.mark_removed` sets its `removed_at`. No
cursor moves, no walk or refresh runs: the run costs one request per id.
"""

from __future__ import annotations

from collections.abc import Iterator

from .client import ChasterClient, Session
from .destination import stored_sessions
from .paging import ResourceState, cursor_key
from .refresh import current_pipeline


def stored_in_destination(session_ids: list[str]) -> dict[str, tuple[str, str | None]]:
    """sessionId -> (slug, paginationId) of those of `session_ids` stored in the destination
    of the pipeline that is extracting; empty outside one."""
    pipeline = current_pipeline()
    if pipeline is None:
        return {}
    return stored_sessions(pipeline, session_ids)


def repair_sessions(
    client: ChasterClient,
    session_ids: list[str],
    state: ResourceState,
    status: str,
    noticed_at: str,
) -> Iterator[list[Session]]:
    """One GET per id: yield each session the API still has; record each it has not as removed
    (in the cursor entry of its extension, where `mark_removed` looks)."""
    stats = client.stats
    stored = stored_in_destination(session_ids)
    cursors = state.setdefault("cursors", {})
    for session_id in session_ids:
        slug, pagination_id = stored.get(session_id, ("", None))
        stats.current_slug = slug
        fresh = client.get_session(session_id)
        if fresh is None:
            if slug:
                removed = cursors.setdefault(cursor_key(slug, status), {}).setdefault("removed", {})
                removed.setdefault(session_id, noticed_at)
                stats.session_repairs[session_id] = "gone (HTTP 404), marked removed"
            else:
                stats.session_repairs[session_id] = "gone (HTTP 404), and not stored either"
            continue
        slug = slug or str(fresh.get("slug") or "")
        entry = cursors.get(cursor_key(slug, status))
        if entry is not None:
            entry.get("removed", {}).pop(session_id, None)  # it is back
        fresh["paginationId"] = pagination_id  # GET answers without it
        stats.count_updated(slug, 1)
        stats.session_repairs[session_id] = "re-read" if session_id in stored else "added"
        yield [fresh]
