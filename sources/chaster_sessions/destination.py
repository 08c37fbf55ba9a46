"""(interim: the lead's copy of two reads; the destination module replaces this file)"""

from __future__ import annotations

import dlt

from .db import connection, query
from .schema import SESSIONS


def running_sessions(pipeline: dlt.Pipeline, slugs: list[str]) -> dict[str, dict[str, str]]:
    placeholders = ", ".join(["%s"] * len(slugs))
    with connection(pipeline) as client:
        table = client.make_qualified_table_name(SESSIONS)
        rows = query(
            pipeline,
            f"select slug, session_id, pagination_id from {table} where slug in ({placeholders}) "  # noqa: S608
            "and lock__status = 'locked' and removed_at is null",
            *slugs,
        )
    running: dict[str, dict[str, str]] = {}
    for slug, session_id, pagination_id in rows:
        running.setdefault(slug, {})[session_id] = pagination_id
    return running


def stored_sessions(
    pipeline: dlt.Pipeline, session_ids: list[str]
) -> dict[str, tuple[str, str | None]]:
    placeholders = ", ".join(["%s"] * len(session_ids))
    with connection(pipeline) as client:
        table = client.make_qualified_table_name(SESSIONS)
        rows = query(
            pipeline,
            f"select session_id, slug, pagination_id from {table} "  # noqa: S608
            f"where session_id in ({placeholders})",
            *session_ids,
        )
    return {session_id: (slug, pagination_id) for session_id, slug, pagination_id in rows}
