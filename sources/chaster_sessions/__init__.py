"""Chaster extension sessions as a dlt source: `chaster_source`, and `load` to run it safely.

What is loaded, with which keys and which cursor, is in this file and `sessions.py` (the
resource's loop over the cursors). How it is fetched: `client.py` (HTTP and request counts),
`paging.py` (the walk), `cursor.py` (one cursor in one run), `plan.py` (the pure decisions),
`refresh.py` and `sweep.py` (re-reading what may have changed). What is kept of each session:
`privacy.py`; the table hints: `schema.py`; the settings and their checks: `settings.py`.
Running it chunk by chunk with the maintenance a source cannot do (removal marks, duplicate
repair, views): `runner.py`, with every query it sends in `destination.py`.
"""

from __future__ import annotations

from typing import Any

import dlt
from dlt.sources import DltResource

from .analytics import create_views
from .client import ChasterClient
from .errors import ChasterError
from .logs import logs_resource
from .record import RunRecord
from .runner import LoadResult, cursor_states, finish, load
from .schema import add_session_tables
from .sessions import sessions_resource
from .settings import (
    DEFAULT_ACTION_LOG_REQUESTS,
    DEFAULT_BASE_URL,
    DEFAULT_CHUNK_PAGES,
    DEFAULT_CHUNK_SECONDS,
    DEFAULT_FULL_SWEEP_EVERY_DAYS,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_RATE_LIMIT_WAIT,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_REQUESTS_PER_MINUTE,
    DEFAULT_RETRY_BACKOFF,
    VERSION,
    Settings,
)

__version__ = VERSION
__all__ = [
    "ChasterClient",
    "ChasterError",
    "LoadResult",
    "RunRecord",
    "Settings",
    "chaster_source",
    "create_views",
    "cursor_states",
    "finish",
    "load",
]


@dlt.source(name="chaster", section="chaster")
def chaster_source(
    api_token: str = dlt.secrets.value,
    extension_slug: Any = None,
    status: str = "all",
    page_size: int | None = None,
    base_url: str = DEFAULT_BASE_URL,
    allow_insecure_http: bool = False,
    sort_order: str = "auto",
    requests_per_minute: float = DEFAULT_REQUESTS_PER_MINUTE,
    max_rate_limit_wait: float = DEFAULT_MAX_RATE_LIMIT_WAIT,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    retry_backoff: float = DEFAULT_RETRY_BACKOFF,
    request_timeout: float = DEFAULT_READ_TIMEOUT,
    refresh: bool = True,
    chunk_pages: int = DEFAULT_CHUNK_PAGES,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    privacy: str = "full",
    store_credentials: bool = False,
    pseudonym_key: str | None = dlt.secrets.value,
    schema_contract: str = "evolve",
    full_sweep_every_days: float = DEFAULT_FULL_SWEEP_EVERY_DAYS,
    action_logs: bool = False,
    action_log_role: str = "keyholder",
    action_log_requests: int = DEFAULT_ACTION_LOG_REQUESTS,
    full_refresh: bool = False,
    session_ids: list[str] | None = None,
) -> DltResource | list[DltResource]:
    """Sessions of one or more Chaster extensions, loaded incrementally by `paginationId`.

    One `pipeline.run(chaster_source(...))` loads everything new, in either sort order, and
    re-reads what was running at the previous run (ended and changed sessions). Settings come
    from arguments, `.dlt/*.toml` under `[sources.chaster]` or `SOURCES__CHASTER__*` env vars.

    What a source cannot do is `chaster_sessions.load(pipeline, source)`'s: commit a long
    backfill chunk by chunk (a kill loses one chunk, not the backfill), set `removed_at` on
    sessions the API no longer has, repair rows a killed dlt merge inserted twice, and create the
    `analytics` views. A plain `pipeline.run` is complete but does none of these.

    Args:
        Each argument but the last two is a key of the settings table, `settings.SETTINGS`
        (type, default, allowed values and meaning; the README prints it), checked by
        `Settings.build` before the first request.
        full_refresh: Walk every session again instead of starting from the stored cursors.
        session_ids: Only re-read these sessions, one GET each (404: marked removed); no walk,
            no refresh, no cursor moves.

    Returns:
        The `sessions` resource: merged on `sessionId`, nested lists as child tables; with
        `action_logs`, also the `action_logs` resource (`logs.py`), merged on `log_id`.
    """
    settings = Settings.build(locals())
    add_session_tables(dlt.current.source_schema())
    if not settings.action_logs:
        return sessions_resource(settings)
    return [sessions_resource(settings), logs_resource(settings)]
