"""The Chaster extension-sessions source: what is loaded, with which keys and which cursor.

How it is fetched (HTTP, pacing, retries, paging guards) lives in `helpers.py`; what is kept of
each session in `privacy.py`; the table hints in `schema.py`; defaults in `settings.py`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import dlt

from sources.chaster import settings
from sources.chaster.errors import ConfigError
from sources.chaster.helpers import (
    ChasterClient,
    Cursor,
    RunStats,
    Session,
    WalkResult,
    is_locked,
    refresh_sessions,
    validate_base_url,
    walk_new_sessions,
)
from sources.chaster.privacy import scrub
from sources.chaster.schema import SESSIONS, sessions_schema

__all__ = ["ChasterClient", "RunStats", "chaster", "cursor_states", "parse_slugs"]


def parse_slugs(extension_slug: Any) -> list[str]:
    """One slug, a list, a JSON list or a comma-separated string: env vars can only hold text."""
    if isinstance(extension_slug, str):
        text = extension_slug.strip()
        if text.startswith("["):
            try:
                extension_slug = json.loads(text)
            except ValueError:
                raise ConfigError(f"extension_slug {text!r} is not a valid JSON list") from None
        else:
            extension_slug = [part.strip() for part in text.split(",")]
    if not isinstance(extension_slug, list | tuple):
        extension_slug = []
    slugs = [s for s in extension_slug if isinstance(s, str) and s]
    if not slugs:
        raise ConfigError(
            "no extension slug: set SOURCES__CHASTER__EXTENSION_SLUG (or extension_slug under "
            "[sources.chaster] in .dlt/config.toml), or pass --extension-slug"
        )
    return list(dict.fromkeys(slugs))


def _validate(status: str, page_size: Any, sort_order: str, privacy: str) -> int:
    if status not in settings.STATUSES:
        raise ConfigError(
            f"status {status!r} is not one of {', '.join(settings.STATUSES)} "
            "(SOURCES__CHASTER__STATUS or --status)"
        )
    if isinstance(page_size, bool) or not isinstance(page_size, int):
        raise ConfigError(
            f"page_size {page_size!r} is not a whole number (SOURCES__CHASTER__PAGE_SIZE)"
        )
    if not 1 <= page_size <= settings.MAX_PAGE_SIZE:
        raise ConfigError(
            f"page_size {page_size} is out of range 1..{settings.MAX_PAGE_SIZE} "
            "(SOURCES__CHASTER__PAGE_SIZE)"
        )
    if sort_order not in settings.SORT_ORDERS:
        raise ConfigError(
            f"sort_order {sort_order!r} is not one of {', '.join(settings.SORT_ORDERS)}"
        )
    if privacy not in settings.PRIVACY_MODES:
        raise ConfigError(f"privacy {privacy!r} is not one of {', '.join(settings.PRIVACY_MODES)}")
    return page_size


def cursor_key(slug: str, status: str) -> str:
    """Cursors are kept per extension and status filter: a `locked` walk proves nothing of `all`."""
    return f"{slug}|{status}"


@dlt.source(section="chaster", schema=sessions_schema("chaster"))
def chaster(
    api_token: str = dlt.secrets.value,
    extension_slug: Any = None,
    status: str = "all",
    page_size: int = settings.DEFAULT_PAGE_SIZE,
    base_url: str = settings.DEFAULT_BASE_URL,
    sort_order: str = "auto",
    requests_per_minute: float = settings.DEFAULT_REQUESTS_PER_MINUTE,
    max_rate_limit_wait: float = settings.DEFAULT_MAX_RATE_LIMIT_WAIT,
    max_attempts: int = settings.DEFAULT_MAX_ATTEMPTS,
    request_timeout: float = settings.DEFAULT_READ_TIMEOUT,
    chunk_pages: int = settings.DEFAULT_CHUNK_PAGES,
    chunk_seconds: float = settings.DEFAULT_CHUNK_SECONDS,
    privacy: str = "full",
    store_credentials: bool = False,
    pseudonym_key: str | None = dlt.secrets.value,
    refresh: bool = True,
    full_refresh: bool = False,
    stats: RunStats | None = None,
) -> Any:
    """Sessions of one or more extensions, loaded incrementally by `paginationId`.

    Every setting can come from `.dlt/config.toml`, `.dlt/secrets.toml` or `SOURCES__CHASTER__*`
    env vars. `stats` is shared by the chunks of one run (the pipeline passes it). `refresh`
    re-reads what was running at the previous run; `full_refresh` walks every session again
    instead of starting from the stored cursors.
    """
    slugs = parse_slugs(extension_slug)
    page_size = _validate(status, page_size, sort_order, privacy)
    base_url = validate_base_url(base_url)
    if not api_token:
        raise ConfigError("api_token is empty; set SOURCES__CHASTER__API_TOKEN")
    key = pseudonym_key.encode() if pseudonym_key else None
    if privacy == "pseudonymous" and not key:
        raise ConfigError(
            "privacy = 'pseudonymous' needs a secret pseudonym_key "
            "(SOURCES__CHASTER__PSEUDONYM_KEY)"
        )
    run_stats = stats if stats is not None else RunStats()

    @dlt.resource(name=SESSIONS, primary_key="sessionId", write_disposition="merge")
    def sessions() -> Iterator[list[Session]]:
        """New sessions since the stored cursor, merged on `sessionId` so none is stored twice."""
        state = dlt.current.resource_state()
        cursors: dict[str, Any] = state.setdefault("cursors", {})
        client = ChasterClient(
            base_url,
            api_token,
            stats=run_stats,
            requests_per_minute=requests_per_minute,
            max_attempts=max_attempts,
            max_rate_limit_wait=max_rate_limit_wait,
            timeout=(settings.DEFAULT_CONNECT_TIMEOUT, request_timeout),
        )
        deadline = time.monotonic() + chunk_seconds if chunk_seconds > 0 else None
        pages_left = chunk_pages if chunk_pages > 0 else None
        state["pending"] = False
        try:
            for slug in slugs:
                key_ = cursor_key(slug, status)
                if key_ in run_stats.completed:
                    continue
                run_stats.current_slug = slug
                entry: dict[str, Any] = cursors.setdefault(key_, {})
                if key_ not in run_stats.started:
                    run_stats.started.add(key_)
                    run_stats.locked_before[key_] = dict(entry.get("locked", {}))
                    run_stats.first_load[key_] = not entry.get("high") and not entry.get(
                        "walk_after"
                    )
                    if full_refresh:
                        entry.update(high=None, walk_top=None, walk_after=None, locked={})
                locked: dict[str, str] = entry.setdefault("locked", {})
                removed: dict[str, str] = entry.setdefault("removed", {})
                new_locked = run_stats.new_locked.setdefault(key_, set())
                cursor = Cursor.from_state(entry)
                result = WalkResult(done=False, pages=0, count=None)
                for page in walk_new_sessions(
                    client,
                    cursor,
                    slug,
                    status,
                    page_size,
                    sort_order,
                    pages_left,
                    deadline,
                    result,
                ):
                    for session in page:
                        scrub(
                            session, privacy=privacy, store_credentials=store_credentials, key=key
                        )
                        removed.pop(session["sessionId"], None)  # it is back
                        if is_locked(session):
                            locked[session["sessionId"]] = session["paginationId"]
                            new_locked.add(session["sessionId"])
                        else:
                            locked.pop(session["sessionId"], None)
                    entry.update(cursor.to_state())
                    yield page
                    if run_stats.progress is not None:
                        run_stats.progress(run_stats, slug, result.count or 0)
                entry.update(cursor.to_state())
                run_stats.totals[slug] = result.count
                if not result.done:
                    state["pending"] = True
                    return
                if full_refresh and status == "all":
                    entry["last_sweep"] = run_stats.started_at
                elif (
                    refresh
                    and status in ("all", "locked")
                    and not (full_refresh or run_stats.first_load[key_])
                ):
                    # Sessions change after the cursor has passed them: refresh what was running.
                    for page in refresh_sessions(
                        client,
                        entry,
                        slug,
                        status,
                        page_size,
                        cursor.order,
                        result.count,
                        run_stats.locked_before[key_],
                        new_locked,
                        run_stats.noticed_at,
                        run_stats.started_at,
                    ):
                        for session in page:
                            scrub(
                                session,
                                privacy=privacy,
                                store_credentials=store_credentials,
                                key=key,
                            )
                        yield page
                run_stats.completed.add(key_)
                if pages_left is not None:
                    pages_left -= result.pages
                    if pages_left <= 0 and slug != slugs[-1]:
                        state["pending"] = True
                        return
        finally:
            client.close()

    return sessions


def cursor_states(pipeline: dlt.Pipeline) -> dict[str, Any]:
    """The `sessions` resource state as last committed: cursors per slug and `pending`."""
    sources = pipeline.state.get("sources", {})
    return sources.get("chaster", {}).get("resources", {}).get(SESSIONS, {})
