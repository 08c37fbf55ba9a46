"""One SQL client for a run's own queries on the destination.

dlt resolves the destination's configuration and builds a new client each time
`pipeline.sql_client()` is called: about 35 ms here, and a run's bookkeeping (stored counts,
removal marks, duplicate check, views, the runs table, the summary) asked for 16, half a second
of every scheduled run. Inside `with connection(pipeline):` every caller shares one client.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import dlt
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.destinations.sql_client import SqlClientBase

_open: ContextVar[tuple[dlt.Pipeline, SqlClientBase[Any]] | None] = ContextVar(
    "chaster_sql_client", default=None
)


@contextmanager
def connection(pipeline: dlt.Pipeline) -> Iterator[SqlClientBase[Any]]:
    """The client already open for `pipeline` in this context, or a new one for the block."""
    active = _open.get()
    if active is not None and active[0] is pipeline:
        yield active[1]
        return
    with pipeline.sql_client() as client:
        token = _open.set((pipeline, client))
        try:
            yield client
        finally:
            _open.reset(token)


def current_pipeline() -> dlt.Pipeline | None:
    """The pipeline extracting right now, or None when a source is iterated outside one (then
    nothing was loaded before, as far as the source can tell)."""
    try:
        return dlt.current.pipeline()
    except Exception:
        return None


def query(pipeline: dlt.Pipeline, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of a query on the pipeline's dataset; none if nothing was loaded yet."""
    try:
        with connection(pipeline) as client, client.execute_query(sql, *params) as cursor:
            return [tuple(row) for row in cursor.fetchall()]
    except DatabaseUndefinedRelation:
        return []
