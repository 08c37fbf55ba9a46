"""Repairing chosen sessions: `--session-id ID` re-reads each with one GET, and nothing else.

The stored row is replaced by the API's answer (merged on `sessionId`), or, when the API answers
404, the session is recorded as removed and `finish` sets its `removed_at`. No cursor moves, no
walk or refresh runs: the run costs one request per id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from .client import ChasterClient, Session
from .cursor import CursorRun

# sessionId -> (slug, paginationId) of the ids stored in the destination, read by the runner
Stored = dict[str, tuple[str, str | None]]


def reread_sessions(
    client: ChasterClient,
    session_ids: tuple[str, ...],
    stored: Stored,
    cursor_of: Callable[[str, bool], CursorRun],
    noticed_at: str,
) -> Iterator[tuple[str, str, Session | None]]:
    """One GET per id: (id, what happened, the session if the API still has it). A session it
    no longer has is recorded as removed in the cursor of its extension (`cursor_of(slug,
    create)`), where `finish` looks; one it has adds no cursor to the state."""
    for session_id in session_ids:
        slug, pagination_id = stored.get(session_id, ("", None))
        client.counts.slug = slug
        fresh = client.get_session(session_id)
        if fresh is None:
            if slug:
                cursor_of(slug, True).gone(session_id, noticed_at)
                yield session_id, "gone (HTTP 404), marked removed", None
            else:
                yield session_id, "gone (HTTP 404), and not stored either", None
            continue
        cursor = cursor_of(slug or str(fresh.get("slug") or ""), False)
        cursor.back(session_id)  # it is back
        fresh["paginationId"] = pagination_id  # GET answers without it
        cursor.reread(1)
        yield session_id, "re-read" if session_id in stored else "added", fresh
