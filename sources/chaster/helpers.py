"""How sessions are fetched: one HTTP client (auth, pacing, retries, errors) and one paging walk.

The client is the only place that talks to the API and the only place that turns an HTTP answer
into a user-facing error. The walk is the only paging loop; it keeps the per-slug cursor and
refuses to loop forever or skip data when the API answers inconsistently.
"""

from __future__ import annotations

import email.utils
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from sources.chaster import settings
from sources.chaster.errors import (
    APIUnavailableError,
    AuthError,
    ConfigError,
    PagingError,
    UnknownExtensionError,
)

Session = dict[str, Any]


@dataclass
class RunStats:
    """What a run spent, for the summary and the progress line. Shared by every chunk of a run."""

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
    totals: dict[str, int | None] = field(default_factory=dict)  # slug -> the API's `count`
    started: set[str] = field(default_factory=set)  # cursor keys this run has begun
    completed: set[str] = field(default_factory=set)  # cursor keys this run has finished
    started_at: float = field(default_factory=time.time)  # compared with dlt load ids
    noticed_at: str = field(
        default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    )
    first_load: dict[str, bool] = field(default_factory=dict)  # key -> no walk completed before
    locked_before: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> L_prev
    new_locked: dict[str, set[str]] = field(default_factory=dict)  # key -> locked, new this run
    refresh: dict[str, str] = field(default_factory=dict)  # slug -> what the refresh chose, why
    updated: dict[str, int] = field(default_factory=dict)  # slug -> sessions re-read
    removed: dict[str, int] = field(default_factory=dict)  # slug -> sessions found gone
    progress: Callable[[RunStats, str, int], None] | None = None  # (stats, slug, total count)
    on_wait: Callable[[float, str], None] | None = None  # (seconds, why): a long wait begins
    current_slug: str = ""  # the extension being fetched, so requests are counted per slug
    requests_by_slug: dict[str, int] = field(default_factory=dict)
    views: list[str] = field(default_factory=list)  # analytics views re-created after the load
    views_error: str | None = None  # why they could not be (the load itself succeeded)


class RateLimiter:
    """Spaces requests evenly under a budget, so no window of any length sees a burst.

    NestJS's throttler counts requests over a rolling window; even spacing at just under the
    budget can never exceed it, whatever the window's phase. Server headers tighten it further.
    """

    def __init__(self, requests_per_minute: float, margin: float = 0.02) -> None:
        self.interval = settings.RATE_WINDOW_SECONDS / requests_per_minute * (1 + margin)
        self._next_at = 0.0
        self._paused_until = 0.0

    def wait(self) -> float:
        """Sleep until the next request may go; return the seconds slept."""
        now = time.monotonic()
        until = max(self._next_at, self._paused_until)
        slept = 0.0
        if until > now:
            slept = until - now
            time.sleep(slept)
            now = until
        self._next_at = now + self.interval
        return slept

    def pause_for(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)


def reset_seconds(value: str, now: float | None = None) -> float | None:
    """Read `X-RateLimit-Reset` as seconds from now, whatever unit the API uses.

    The unit is undocumented: a small number is seconds until the reset, a 10-digit number epoch
    seconds, a 13-digit number epoch milliseconds.
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    now = time.time() if now is None else now
    if number > 1e11:
        number = number / 1000 - now
    elif number > 1e9:
        number = number - now
    return max(0.0, number)


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds: either a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def validate_base_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"base_url {base_url!r} is not an http(s) URL; "
            f"set SOURCES__CHASTER__BASE_URL (default {settings.DEFAULT_BASE_URL})"
        )
    return base_url.rstrip("/")


class ChasterClient:
    """Talks to the Extensions API: paced under the budget, retried where retrying is safe."""

    def __init__(
        self,
        base_url: str,
        api_token: str,
        *,
        stats: RunStats | None = None,
        requests_per_minute: float = settings.DEFAULT_REQUESTS_PER_MINUTE,
        max_attempts: int = settings.DEFAULT_MAX_ATTEMPTS,
        max_rate_limit_wait: float = settings.DEFAULT_MAX_RATE_LIMIT_WAIT,
        timeout: tuple[float, float] = (
            settings.DEFAULT_CONNECT_TIMEOUT,
            settings.DEFAULT_READ_TIMEOUT,
        ),
        backoff: float = 0.5,
    ) -> None:
        self.base_url = validate_base_url(base_url)
        self._token = api_token
        self.stats = stats or RunStats()
        self.limiter = RateLimiter(requests_per_minute)
        self.max_attempts = max_attempts
        self.max_rate_limit_wait = max_rate_limit_wait
        self.timeout = timeout
        self.backoff = backoff
        self._http = requests.Session()
        self._http.headers.update(
            {
                "Authorization": f"Bearer {api_token}",
                "Accept": "application/json",
                "User-Agent": "chaster-sessions-dlt/0.1",
            }
        )

    def close(self) -> None:
        self._http.close()

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Send one call and return its JSON; None for a 404 on GET (the session is gone)."""
        url = self.base_url + path
        transient_failures = 0
        waited_for_limit = 0.0
        while True:
            self.stats.pacing_wait += self.limiter.wait()
            self.stats.requests += 1
            slug = self.stats.current_slug
            self.stats.requests_by_slug[slug] = self.stats.requests_by_slug.get(slug, 0) + 1
            if method == "POST":
                self.stats.search_requests += 1
            else:
                self.stats.get_requests += 1
            problem, response = self._send(method, url, body)
            if response is not None and response.status_code == 429:
                self.stats.rate_limited += 1
                delay = self._rate_limit_delay(response, waited_for_limit)
                if waited_for_limit + delay > self.max_rate_limit_wait:
                    raise APIUnavailableError(
                        f"rate limited by the API for over {self.max_rate_limit_wait:.0f}s in "
                        "total (HTTP 429); raise SOURCES__CHASTER__MAX_RATE_LIMIT_WAIT or lower "
                        "SOURCES__CHASTER__REQUESTS_PER_MINUTE if other clients share the budget"
                    )
                waited_for_limit += delay
                self._pause(delay, "the API answered 429 Too Many Requests")
                continue
            if response is not None:
                self._follow_rate_headers(response)
                problem, payload = self._interpret(method, path, response)
                if problem is None:
                    return payload
            transient_failures += 1
            if transient_failures >= self.max_attempts:
                raise APIUnavailableError(
                    self._redact(
                        f"{method} {path} failed {transient_failures} times: {problem}; "
                        "the API may be down, try again later"
                    )
                )
            self.stats.retries += 1
            delay = min(30.0, self.backoff * 2 ** (transient_failures - 1))
            self._announce(delay, self._redact(f"retrying {method} {path} after {problem}"))
            time.sleep(delay)

    def _send(
        self, method: str, url: str, body: dict[str, Any] | None
    ) -> tuple[str | None, requests.Response | None]:
        try:
            return None, self._http.request(method, url, json=body, timeout=self.timeout)
        except requests.exceptions.InvalidURL as exc:
            raise ConfigError(f"base_url is not a valid URL: {self.base_url}") from exc
        except requests.exceptions.ConnectionError as exc:
            if _refused(exc) and self.stats.requests == 1:
                # Nothing listens there: retrying a wrong base_url only delays the message.
                raise APIUnavailableError(
                    f"cannot connect to {self.base_url} (connection refused); check "
                    "SOURCES__CHASTER__BASE_URL and your network"
                ) from None
            return f"connection error ({type(exc).__name__})", None
        except requests.exceptions.Timeout:
            return f"no answer within {self.timeout[1]:g}s", None

    def _rate_limit_delay(self, response: requests.Response, waited: float) -> float:
        """How long to wait after a 429: the server's word if any, else a growing backoff."""
        delay = retry_after_seconds(response.headers.get("Retry-After"))
        if delay is None and response.headers.get("X-RateLimit-Reset"):
            delay = reset_seconds(response.headers["X-RateLimit-Reset"])
        if delay is None:
            delay = min(settings.RATE_WINDOW_SECONDS, max(1.0, waited or 1.0))
        return min(delay, settings.RATE_WINDOW_SECONDS) + 0.05

    def _follow_rate_headers(self, response: requests.Response) -> None:
        """Pause before the budget runs out when the API says how much is left."""
        remaining = response.headers.get("X-RateLimit-Remaining")
        reset = response.headers.get("X-RateLimit-Reset")
        if remaining is None or reset is None:
            return
        try:
            left = int(remaining)
        except ValueError:
            return
        seconds = reset_seconds(reset)
        if left <= 0 and seconds:
            seconds = min(seconds, settings.RATE_WINDOW_SECONDS) + 0.05
            self._pause(seconds, "the API says the rate budget is spent (X-RateLimit-Remaining: 0)")

    def _pause(self, seconds: float, why: str) -> None:
        """Hold the next request back, count the wait, and say so when a person would notice."""
        self.limiter.pause_for(seconds)
        self.stats.rate_limit_wait += seconds
        self._announce(seconds, why)

    def _announce(self, seconds: float, why: str) -> None:
        """Tell the progress output of a wait long enough (2 s or more) to look like a hang."""
        if self.stats.on_wait is not None and seconds >= 2:
            self.stats.on_wait(seconds, why)

    def _interpret(
        self, method: str, path: str, response: requests.Response
    ) -> tuple[str | None, Any]:
        """(problem, payload): problem is set for answers worth retrying; fatal ones raise."""
        status = response.status_code
        if 200 <= status < 300:
            try:
                return None, response.json()
            except ValueError:
                return f"HTTP {status} with a body that is not JSON", None
        if status >= 500:
            html = "html" in response.headers.get("Content-Type", "")
            kind = " (an HTML error page, likely from a proxy)" if html else ""
            return f"HTTP {status} {response.reason or ''}".strip() + kind, None
        message = _api_message(response)
        if status in (401, 403):
            raise AuthError(
                f"the API refused the token (HTTP {status}: {message}); check "
                "SOURCES__CHASTER__API_TOKEN: it must be a developer token of the extension's "
                "application"
            )
        if status == 404 and method == "GET":
            return None, None
        if status == 404:
            raise UnknownExtensionError(f"the API does not know this extension ({message})")
        raise PagingError(
            self._redact(f"the API rejected {method} {path} (HTTP {status}: {message})")
        )

    def search(self, slug: str, status: str, limit: int, after: str | None) -> dict[str, Any]:
        body = {"extensionSlug": slug, "status": status, "limit": limit, "paginationLastId": after}
        try:
            page = self.request("POST", settings.SEARCH_PATH, body)
        except UnknownExtensionError as exc:
            raise UnknownExtensionError(
                f"unknown extension slug {slug!r}: {exc.message}; check "
                "SOURCES__CHASTER__EXTENSION_SLUG or --extension-slug"
            ) from None
        if not isinstance(page, dict) or not isinstance(page.get("results"), list):
            raise PagingError(f"search for {slug!r} answered without a results list")
        return page

    def get_session(self, session_id: str) -> Session | None:
        """One session by id, as `GET /api/extensions/sessions/{sessionId}`; None when deleted."""
        payload = self.request("GET", settings.SESSION_PATH.format(session_id=quote(session_id)))
        if payload is None:
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("session"), dict):
            raise PagingError(f"GET session {session_id} answered without a session")
        return payload["session"]


def _refused(exc: Exception) -> bool:
    text = repr(exc)
    return "Connection refused" in text or "Errno 111" in text


def _api_message(response: requests.Response) -> str:
    """The NestJS `message` (a string or a list of them), or the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:120].strip() or response.reason or "no message"
    message = body.get("message") if isinstance(body, dict) else None
    if isinstance(message, list):
        return "; ".join(str(m) for m in message)
    return str(message or body)[:200]


# -- the paging walk -----------------------------------------------------------------------------


@dataclass
class Cursor:
    """Where the walk of one (extension, status) stands; lives in dlt state between runs.

    `high` is the largest paginationId below which everything has been loaded. A descending walk
    that is cut into chunks keeps `walk_top` (the newest id of the walk) and `walk_after` (the
    last id loaded) so the next chunk continues downwards, and only then moves `high` up.
    """

    high: str | None = None
    order: str | None = None  # "asc" / "desc" once seen (or forced)
    walk_top: str | None = None
    walk_after: str | None = None

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> Cursor:
        state = state or {}
        return cls(
            state.get("high"), state.get("order"), state.get("walk_top"), state.get("walk_after")
        )

    def to_state(self) -> dict[str, Any]:
        return {
            "high": self.high,
            "order": self.order,
            "walk_top": self.walk_top,
            "walk_after": self.walk_after,
        }


@dataclass
class WalkResult:
    done: bool  # False when the walk stopped at a chunk boundary and must continue
    pages: int
    count: int | None  # the API's total for the filter


def walk_new_sessions(
    client: ChasterClient,
    cursor: Cursor,
    slug: str,
    status: str,
    page_size: int,
    sort_order: str,
    max_pages: int | None,
    deadline: float | None,
    result: WalkResult,
) -> Iterator[list[Session]]:
    """Yield pages of sessions not loaded before, moving `cursor` as each page is handed over.

    Works whichever way the API sorts: ascending walks start after `high`; descending walks start
    at the top and stop at the first id at or below `high`. The order is taken from the data
    unless forced, and a page that contradicts it is an error rather than a silent gap.
    """
    if sort_order in ("asc", "desc"):
        cursor.order = sort_order
    after = cursor.walk_after or (cursor.high if cursor.order == "asc" else None)
    used_cursors: set[str | None] = {after}
    pages = 0
    while True:
        page = client.search(slug, status, page_size, after)
        pages += 1
        client.stats.pages += 1
        results = page["results"]
        has_more = page.get("hasMore") is True
        if isinstance(page.get("count"), int):
            result.count = page["count"]
        ids = _pagination_ids(slug, results, has_more, after)
        if ids and ids[-1] in used_cursors:
            raise PagingError(
                f"search for {slug!r} repeated cursor {ids[-1]!r}: the API ignored "
                "paginationLastId; stopping rather than looping"
            )
        detected = _order_of([after, *ids])
        if cursor.order is None:
            cursor.order = detected
        elif detected not in (None, cursor.order):
            if _order_of(ids) in (None, cursor.order):
                raise PagingError(
                    f"search for {slug!r} went back past cursor {after!r}: the API ignored "
                    "paginationLastId; stopping rather than looping"
                )
            how = "configured" if sort_order != "auto" else "seen before"
            raise PagingError(
                f"search for {slug!r} returned results in {detected}ending order, but "
                f"{cursor.order}ending was {how}; set SOURCES__CHASTER__SORT_ORDER=auto or "
                "report it"
            )
        high = cursor.high
        new = [s for s, pid in zip(results, ids, strict=False) if high is None or pid > high]
        client.stats.sessions_fetched += len(new)
        if cursor.order == "asc":
            if ids:
                cursor.high = max(ids[-1], high) if high else ids[-1]
            cursor.walk_top = cursor.walk_after = None
        elif ids:
            if new:
                cursor.walk_top = cursor.walk_top or ids[0]
            cursor.walk_after = ids[-1]
        if new:
            yield new
        reached_known = cursor.order == "desc" and len(new) < len(ids)
        if reached_known or not has_more:
            _finish_walk(cursor)
            result.done = True
            break
        # Ascending walks continue after `high`, which also skips ahead a walk that began at the
        # oldest session while the order was still unknown.
        after = cursor.high if cursor.order == "asc" else ids[-1]
        used_cursors.add(after)
        if (max_pages is not None and pages >= max_pages) or (
            deadline is not None and time.monotonic() >= deadline
        ):
            result.done = False
            break
    result.pages = pages
    client.stats.order_seen[slug] = cursor.order or "unknown"


def _pagination_ids(slug: str, results: list[Any], has_more: bool, after: str | None) -> list[str]:
    """The page's paginationIds, refusing pages that would make the walk loop or skip."""
    if not results and has_more:
        raise PagingError(
            f"search for {slug!r} returned an empty page with hasMore=true after {after!r}; "
            "stopping rather than looping"
        )
    ids = []
    for item in results:
        pid = item.get("paginationId") if isinstance(item, dict) else None
        if not isinstance(pid, str) or not pid:
            session_id = item.get("sessionId") if isinstance(item, dict) else None
            raise PagingError(
                f"search for {slug!r} returned a session without paginationId "
                f"(sessionId {session_id!r}); cannot page past it"
            )
        ids.append(pid)
    return ids


def _finish_walk(cursor: Cursor) -> None:
    """A completed walk makes its newest id the new high-water mark."""
    top = cursor.walk_top
    if top is not None:
        cursor.high = max(top, cursor.high) if cursor.high else top
    cursor.walk_top = cursor.walk_after = None


def _order_of(ids: list[str | None]) -> str | None:
    """The order a run of ids shows: "asc", "desc", or None when it shows none."""
    for a, b in itertools.pairwise(ids):
        if a is None or b is None or a == b:
            continue
        return "asc" if a < b else "desc"
    return None


def _pages(count: int, page_size: int) -> int:
    return max(1, -(-count // page_size))


def refresh_sessions(
    client: ChasterClient,
    entry: dict[str, Any],
    slug: str,
    status: str,
    page_size: int,
    order: str | None,
    count_all: int | None,
    locked_before: dict[str, str],
    new_locked: set[str],
    noticed_at: str,
    sweep_started: float,
) -> Iterator[list[Session]]:
    """Bring back to date every session that was locked at the previous run, at least cost.

    Either (A) sweep `status=locked` and GET each session that left the locked set (ended or
    deleted), or (B) sweep everything again; the first locked page's `count` tells which is
    cheaper. Sessions that a GET answers 404 for are recorded in `entry["removed"]`; after a
    full sweep, `entry["last_sweep"]` lets the pipeline mark every row the sweep did not see.
    """
    stats = client.stats
    removed: dict[str, str] = entry.setdefault("removed", {})
    locked_walk = WalkResult(done=False, pages=0, count=None)
    sweep = walk_new_sessions(
        client,
        Cursor(order=order),
        slug,
        "locked",
        page_size,
        order or "auto",
        None,
        None,
        locked_walk,
    )
    first = next(sweep, [])
    count_locked = locked_walk.count if locked_walk.count is not None else len(first)
    still_locked = max(0, count_locked - len(new_locked))
    leavers_estimate = max(0, len(locked_before) - still_locked)
    cost_a = _pages(count_locked, page_size) - 1 + leavers_estimate
    cost_b = _pages(count_all or 0, page_size) if status == "all" else None
    if cost_b is not None and cost_b < cost_a:
        sweep.close()
        stats.refresh[slug] = (
            f"{cost_a} more requests (locked sweep + {leavers_estimate} GETs) > "
            f"{cost_b}-page full sweep: full sweep"
        )
        locked_now: dict[str, str] = {}
        full = WalkResult(done=False, pages=0, count=None)
        for page in walk_new_sessions(
            client, Cursor(order=order), slug, "all", page_size, order or "auto", None, None, full
        ):
            for session in page:
                removed.pop(session["sessionId"], None)
                if is_locked(session):
                    locked_now[session["sessionId"]] = session["paginationId"]
            stats.updated[slug] = stats.updated.get(slug, 0) + len(page)
            yield page
        entry["locked"] = locked_now
        entry["last_sweep"] = sweep_started
        return
    more = f"{cost_a} more request{'s' if cost_a != 1 else ''}"
    stats.refresh[slug] = f"locked sweep + {leavers_estimate} GETs = {more}" + (
        f" <= {cost_b}-page full sweep" if cost_b is not None else ""
    )
    locked_now = {}
    for page in (first, *sweep) if first else ():
        for session in page:
            removed.pop(session["sessionId"], None)
            locked_now[session["sessionId"]] = session["paginationId"]
        stats.updated[slug] = stats.updated.get(slug, 0) + len(page)
        yield page
    for session_id, pagination_id in locked_before.items():
        if session_id in locked_now:
            continue
        session = client.get_session(session_id)
        if session is None:
            removed.setdefault(session_id, noticed_at)
            continue
        removed.pop(session_id, None)
        session["paginationId"] = pagination_id  # GET answers without it
        stats.updated[slug] = stats.updated.get(slug, 0) + 1
        if is_locked(session):
            locked_now[session_id] = pagination_id
        yield [session]
    stats.removed[slug] = sum(1 for t in removed.values() if t == noticed_at)
    entry["locked"] = locked_now


def is_locked(session: Session) -> bool:
    lock = session.get("lock")
    return isinstance(lock, dict) and lock.get("status") == "locked"
