"""Data checks an orchestrator runs after a load: duplicates, orphans, freshness.

Each is one query on the pipeline's dataset and returns plain figures; the Dagster asset checks
(`pipelines/dagster_defs.py`) turn them into pass / fail with metadata, and any other scheduler
can call them the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dlt

from .db import connection, query
from .runner import tables
from .schema import SESSIONS


def duplicate_sessions(pipeline: dlt.Pipeline) -> int:
    """Rows of `sessions` beyond one per `session_id` (0 when the merge key holds)."""
    if SESSIONS not in tables(pipeline):
        return 0
    with connection(pipeline) as client:
        table = client.make_qualified_table_name(SESSIONS)
    rows = query(pipeline, f"select count(*) - count(distinct session_id) from {table}")  # noqa: S608
    return int(rows[0][0])


def orphaned_rows(pipeline: dlt.Pipeline) -> dict[str, int]:
    """Child table -> its rows whose `_dlt_root_id` matches no `sessions` row (only tables that
    have any)."""
    names = tables(pipeline)
    if SESSIONS not in names:
        return {}
    found: dict[str, int] = {}
    with connection(pipeline) as client:
        root = client.make_qualified_table_name(SESSIONS)
        for name in names:
            if not name.startswith(f"{SESSIONS}__"):
                continue
            child = client.make_qualified_table_name(name)
            # names come from information_schema, not from the user
            sql = (
                f"select count(*) from {child} c where not exists "  # noqa: S608
                f"(select 1 from {root} s where s._dlt_id = c._dlt_root_id)"
            )
            with client.execute_query(sql) as cursor:
                orphans = int(cursor.fetchall()[0][0])
            if orphans:
                found[name] = orphans
    return found


def last_successful_load(pipeline: dlt.Pipeline) -> datetime | None:
    """When dlt last completed a load of the pipeline's schema into the dataset (UTC)."""
    with connection(pipeline) as client:
        loads = client.make_qualified_table_name("_dlt_loads")
    rows = query(
        pipeline,
        f"select max(inserted_at) from {loads} where status = 0 and schema_name = %s",  # noqa: S608
        pipeline.default_schema_name or "chaster",
    )
    if not rows or rows[0][0] is None:
        return None
    value: datetime = rows[0][0]
    return value if value.tzinfo else value.replace(tzinfo=UTC)
