"""Chaster extension sessions as a dlt source: `chaster_source`, and `load` to run it safely.

What is loaded, with which keys and which cursor, is in this file. How it is fetched: `client.py`
(HTTP), `paging.py` (the walk and its cursor), `refresh.py` (re-reading what was running).
What is kept of each session: `privacy.py`; the table hints: `schema.py`; the settings:
`settings.py` and `config.py`. Running it chunk by chunk with the maintenance a source cannot do
(removal marks, duplicate repair, views): `runner.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any, cast

import dlt
from dlt.sources import DltResource

from . import config, interrupts
from .analytics import create_views
from .chunking import active_run, plain_run
from .client import ChasterClient, Session
from .errors import ChasterError
from .paging import (
    Cursor,
    CursorState,
    PageSize,
    ResourceState,
    WalkResult,
    cursor_key,
    walk_new_sessions,
)
from .prefetch import Prefetcher
from .privacy import scrub
from .refresh import Refresh, is_locked, running_in_destination
from .repair import repair_sessions
from .runner import LoadResult, cursor_states, finish, load
from .schema import (
    SESSIONS,
    ColumnDescriptions,
    add_session_tables,
    drop_null_objects,
    forget_empty_descriptions,
)
from .settings import (
    DEFAULT_BASE_URL,
    DEFAULT_CHUNK_PAGES,
    DEFAULT_CHUNK_SECONDS,
    DEFAULT_FULL_SWEEP_EVERY_DAYS,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_RATE_LIMIT_WAIT,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_REQUESTS_PER_MINUTE,
)
from .settings import DEFAULT_CONNECT_TIMEOUT as _CONNECT_TIMEOUT
from .stats import RunStats
from .sweep import Sweep, start_clock, sweep_due

__version__ = "0.2.0"
__all__ = [
    "ChasterClient",
    "ChasterError",
    "LoadResult",
    "RunStats",
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
    request_timeout: float = DEFAULT_READ_TIMEOUT,
    refresh: bool = True,
    chunk_pages: int = DEFAULT_CHUNK_PAGES,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    privacy: str = "full",
    store_credentials: bool = False,
    pseudonym_key: str | None = dlt.secrets.value,
    schema_contract: str = "evolve",
    full_sweep_every_days: float = DEFAULT_FULL_SWEEP_EVERY_DAYS,
    full_refresh: bool = False,
    session_ids: list[str] | None = None,
) -> DltResource:
    """Sessions of one or more Chaster extensions, loaded incrementally by `paginationId`.

    One `pipeline.run(chaster_source(...))` loads everything new, in either sort order, and
    re-reads what was running at the previous run (ended and changed sessions). Settings come
    from arguments, `.dlt/*.toml` under `[sources.chaster]` or `SOURCES__CHASTER__*` env vars.

    What a source cannot do is `chaster_sessions.load(pipeline, source)`'s: commit a long
    backfill chunk by chunk (a kill loses one chunk, not the backfill), set `removed_at` on
    sessions the API no longer has, repair rows a killed dlt merge inserted twice, and create the
    `analytics` views. A plain `pipeline.run` is complete but does none of these.

    Args:
        api_token: Developer token of the extension's application (a secret).
        extension_slug: One slug, a list, a JSON list or comma-separated slugs.
        status: "locked", "unlocked", "deserted" or "all".
        page_size: Sessions per search request, 1..100. Unset: 100, or the largest size the API
            accepts (learned from its refusal and kept in state).
        base_url: API root. https, or http to a loopback address only.
        allow_insecure_http: Allow plain http to another host (the token travels in clear).
        sort_order: "auto" detects the API's order from the data; "asc"/"desc" force it.
        requests_per_minute: Request budget; requests are spaced evenly under it.
        max_rate_limit_wait: Seconds of waiting on 429s before the run gives up.
        max_attempts: Tries per request on 5xx, resets, timeouts and bodies that are not JSON.
        request_timeout: Seconds to wait for an answer before a try counts as failed.
        refresh: Re-read the sessions that were running at the previous run.
        chunk_pages: Pages per committed chunk when `load` runs the source (0: no limit).
        chunk_seconds: Seconds per committed chunk when `load` runs the source (0: no limit).
        privacy: "full", or "pseudonymous" (keyed hashes for people; needs `pseudonym_key`).
        store_credentials: Keep `lock.offerToken`, `lock.combination` and shared-lock passwords.
        pseudonym_key: Key of the pseudonyms (a secret).
        schema_contract: dlt's contract mode for schema changes: "evolve" (default), "freeze"
            (a run that would add a table, column or value type fails and writes nothing),
            "discard_row" or "discard_value".
        full_sweep_every_days: Re-read every session (status "all") when the last full sweep
            began this many days ago or more, chunk by chunk; 0: every run.
        full_refresh: Walk every session again instead of starting from the stored cursors.
        session_ids: Only re-read these sessions, one GET each (404: marked removed); no walk,
            no refresh, no cursor moves.

    Returns:
        The `sessions` resource: merged on `sessionId`, nested lists as child tables.
    """
    for name, value in (
        ("status", status),
        ("page_size", page_size),
        ("allow_insecure_http", allow_insecure_http),
        ("sort_order", sort_order),
        ("requests_per_minute", requests_per_minute),
        ("max_rate_limit_wait", max_rate_limit_wait),
        ("max_attempts", max_attempts),
        ("request_timeout", request_timeout),
        ("refresh", refresh),
        ("chunk_pages", chunk_pages),
        ("chunk_seconds", chunk_seconds),
        ("privacy", privacy),
        ("store_credentials", store_credentials),
        ("schema_contract", schema_contract),
        ("full_sweep_every_days", full_sweep_every_days),
    ):
        if value is not None:
            config.check(name, value)
    add_session_tables(dlt.current.source_schema())
    slugs = config.parse_slugs(extension_slug)
    session_ids = config.check_session_ids(session_ids)
    url = config.check_base_url(base_url, allow_insecure_http)
    token_origin = config.token_origin(api_token)
    token = config.clean_token(api_token, token_origin)
    key = pseudonym_key.strip().encode() if pseudonym_key and pseudonym_key.strip() else None
    if privacy == "pseudonymous" and not key:
        raise config.ConfigError(
            "privacy = 'pseudonymous' needs a secret pseudonym_key "
            "(SOURCES__CHASTER__PSEUDONYM_KEY)"
        )

    def keep(session: Session) -> Session:
        kept = scrub(session, privacy=privacy, store_credentials=store_credentials, key=key)
        return drop_null_objects(kept)

    def new_client(stats: RunStats) -> ChasterClient:
        return ChasterClient(
            url,
            token,
            stats=stats,
            requests_per_minute=requests_per_minute,
            max_attempts=max_attempts,
            max_rate_limit_wait=max_rate_limit_wait,
            timeout=(_CONNECT_TIMEOUT, request_timeout),
            token_origin=token_origin,
        )

    def fetch_ahead(
        client: ChasterClient, page: PageSize, slug: str, entry: CursorState
    ) -> Prefetcher:
        """The walk from the stored cursor, fetching on a thread while dlt works."""

        def walk(cursor: Cursor, result: WalkResult) -> Iterator[list[Session]]:
            return walk_new_sessions(client, cursor, (slug, status), page, sort_order, result)

        return Prefetcher(walk, Cursor.from_state(entry))

    @dlt.resource(name=SESSIONS, primary_key="sessionId", write_disposition="merge")
    def sessions() -> Iterator[list[Session]]:
        """New sessions since the stored cursor, then the re-read running ones; merged on
        `sessionId`, so none is stored twice and a re-read one replaces its old rows."""
        run = active_run() or plain_run()
        run.extractions += 1
        stats = run.stats
        state = cast(ResourceState, dlt.current.resource_state())
        cursors = state.setdefault("cursors", {})
        page = PageSize.from_setting(page_size, state)
        client = run.client((url, requests_per_minute), lambda: new_client(stats))
        stop = run.stop(chunk_pages, chunk_seconds)
        state["pending"] = False
        forget_empty_descriptions(dlt.current.source_schema())
        descriptions = ColumnDescriptions()
        try:
            interrupts.begin_fetching()  # a signal stops the fetching at once
            if session_ids:
                repaired = repair_sessions(client, session_ids, state, status, run.noticed_at)
                for session_page in repaired:
                    yield descriptions.hinted([keep(session) for session in session_page])
                return
            for slug in slugs:
                key_ = cursor_key(slug, status)
                if key_ in run.completed:
                    continue
                if stop is not None and stop.reached():
                    state["pending"] = True
                    return
                stats.current_slug = slug
                entry = cursors.setdefault(key_, {})
                if key_ not in run.started:
                    running = {} if full_refresh else running_in_destination(slug)
                    run.begin(key_, entry, running, full_refresh=full_refresh)
                    if run.first_load[key_] and status == "all":
                        # once this walk is complete, in this run or a later one, it has seen
                        # every session: it counts as a full sweep begun now
                        entry.setdefault("first_walk_began", run.started_at)
                removed = entry.setdefault("removed", {})
                new_locked = run.new_locked[key_]
                while key_ not in run.walked:
                    fetcher = run.fetcher(key_, partial(fetch_ahead, client, page, slug, entry))
                    for fetched in fetcher.pages():
                        for session in fetched.sessions:
                            keep(session)
                            removed.pop(session["sessionId"], None)  # it is back
                            if is_locked(session):
                                new_locked.add(session["sessionId"])
                        fetched.cursor.save(entry)  # the cursor moves with the data it covers
                        page.remember(state)
                        yield descriptions.hinted(fetched.sessions)
                        if stats.progress is not None:
                            stats.progress(stats, slug, fetched.count or 0)
                        if stop is not None:
                            stop.pages += 1
                            waiting = fetcher.waiting() and client.limiter.holding()
                            if stop.reached(waiting) and not fetcher.done_next():
                                state["pending"] = True  # the fetcher goes on meanwhile
                                return
                    assert fetcher.finished is not None
                    cursor, result = fetcher.finished.cursor, fetcher.finished.result
                    run.walk_done(key_)
                    cursor.save(entry)
                    page.remember(state)
                    run.walk_counts[key_] = result.count
                    if key_ not in run.top_pass_due:
                        run.walked.add(key_)  # a later chunk goes on after the walk
                        if "first_walk_began" in entry:
                            entry["last_sweep"] = entry.pop("first_walk_began")
                        break
                    # the cut walk is done; now what arrived above it since it began
                    run.top_pass_due.discard(key_)
                due = sweep_due(entry, full_sweep_every_days, run.started_at)
                if status == "all" and not due:
                    start_clock(entry, run.started_at)
                if full_refresh and status == "all":
                    entry["last_sweep"] = run.started_at  # this walk saw every session
                    entry.pop("sweep", None)
                elif refresh and status == "all" and not run.first_load[key_] and due:
                    sweep = run.sweeps.setdefault(
                        key_,
                        Sweep(client, entry, slug, page, entry.get("order"), run.started_at, due),
                    )
                    sweep.entry, sweep.page_size = entry, page  # this chunk's state
                    if stop is not None and stop.reached():
                        state["pending"] = True
                        return
                    for sweep_page in sweep.pages(stop):
                        page.remember(state)
                        yield descriptions.hinted([keep(session) for session in sweep_page])
                    if not sweep.done:
                        state["pending"] = True
                        return
                elif (
                    refresh
                    and status in ("all", "locked")
                    and not (full_refresh or run.first_load[key_])
                ):
                    for sessions_page in Refresh(
                        client,
                        entry,
                        slug,
                        status,
                        page,
                        entry.get("order"),
                        run.locked_before[key_],
                        new_locked,
                        run.noticed_at,
                        run.started_at,
                    ).sessions(run.walk_counts.get(key_)):
                        yield descriptions.hinted([keep(session) for session in sessions_page])
                run.completed.add(key_)
        finally:
            interrupts.end_fetching()
            if not run.chunked:
                run.close()

    if schema_contract != "evolve":
        sessions.apply_hints(schema_contract=cast(Any, schema_contract))
    return sessions
