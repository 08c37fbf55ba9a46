"""The one HTTP home: auth, pacing under the rate budget, retries, and API errors.

The client is the only place that talks to the API and the only place that turns an HTTP answer
(or a network failure) into a user-facing error. What to retry is decided in `_interpret` and
`_send`; how long to wait, in `RateLimiter` and `_rate_limit_delay`.
"""

from __future__ import annotations

import email.utils
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import urllib3.exceptions

from . import settings
from .errors import (
    APIUnavailableError,
    AuthError,
    ConfigError,
    PageSizeRejectedError,
    PagingError,
    UnknownExtensionError,
)

Session = dict[str, Any]
_LIMIT_CAP = re.compile(r"limit must not be greater than (\d+)", re.IGNORECASE)


class RateLimiter:
    """Spaces requests evenly under a budget, so no window of any length sees a burst.

    NestJS's throttler counts requests over a rolling window; even spacing at just under the
    budget can never exceed it, whatever the window's phase. Server headers tighten it further.
    """

    def __init__(self, requests_per_minute: float, margin: float = 0.01) -> None:
        self.interval = settings.RATE_WINDOW_SECONDS / requests_per_minute * (1 + margin)
        self._next_at = 0.0
        self._paused_until = 0.0
        # the sessions' fetch-ahead thread and the logs' reads may share one client
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Sleep until the next request may go (its slot is taken first, so two threads never
        take the same one); return the seconds slept."""
        with self._lock:
            now = time.monotonic()
            until = max(self._next_at, self._paused_until, now)
            self._next_at = until + self.interval
        slept = until - now
        if slept > 0:
            time.sleep(slept)
        return slept

    def holding(self) -> bool:
        """Whether the next request must wait for the budget (pacing or a pause) right now."""
        return time.monotonic() < max(self._next_at, self._paused_until)

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


@dataclass
class RequestCounts:
    """What a client sent and waited for: the run's request figures, counted where they happen.

    `slug` is the extension the caller is fetching for, so requests are also counted per slug.
    """

    requests: int = 0
    search_requests: int = 0
    get_requests: int = 0
    log_requests: int = 0  # of the POSTs, those for a session's action log
    pages: int = 0  # searches answered with a page
    retries: int = 0
    rate_limited: int = 0  # 429 answers
    rate_limit_wait: float = 0.0  # seconds waited because of 429s or an exhausted budget
    pacing_wait: float = 0.0  # seconds spent spacing requests under the budget
    by_slug: dict[str, int] = field(default_factory=dict)
    slug: str = ""

    def count(self, method: str, path: str = "") -> None:
        self.requests += 1
        self.by_slug[self.slug] = self.by_slug.get(self.slug, 0) + 1
        if path.endswith(settings.LOGS_SUFFIX):
            self.log_requests += 1
        elif method == "POST":
            self.search_requests += 1
        else:
            self.get_requests += 1


# Told of a wait long enough (2 s or more) to look like a hang: (seconds, why).
OnWait = Callable[[float, str], None]
LONG_WAIT = 2.0


def retry_delay(backoff: float, failures: int) -> float:
    """Seconds to wait after the `failures`-th transient fault of one request: `backoff`,
    doubled for each further fault, at most 30 s (so a long outage is retried every 30 s)."""
    return min(30.0, backoff * 2 ** (failures - 1))


class ChasterClient:
    """Talks to the Extensions API: paced under the budget, retried where retrying is safe."""

    def __init__(
        self,
        base_url: str,
        api_token: str,
        *,
        counts: RequestCounts | None = None,
        on_wait: OnWait | None = None,
        requests_per_minute: float = settings.DEFAULT_REQUESTS_PER_MINUTE,
        max_attempts: int = settings.DEFAULT_MAX_ATTEMPTS,
        max_rate_limit_wait: float = settings.DEFAULT_MAX_RATE_LIMIT_WAIT,
        timeout: tuple[float, float] = (
            settings.DEFAULT_CONNECT_TIMEOUT,
            settings.DEFAULT_READ_TIMEOUT,
        ),
        backoff: float = settings.DEFAULT_RETRY_BACKOFF,
        token_origin: str = settings.TOKEN_FROM_ARGUMENT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.host = urlsplit(self.base_url).hostname or self.base_url
        self._token = api_token
        self.token_origin = token_origin  # where a refused token is to be fixed
        self.counts = counts or RequestCounts()
        self.on_wait = on_wait
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
            self.counts.pacing_wait += self.limiter.wait()
            self.counts.count(method, path)
            problem, response = self._send(method, url, body)
            if response is not None and response.status_code == 429:
                self.counts.rate_limited += 1
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
            self.counts.retries += 1
            delay = retry_delay(self.backoff, transient_failures)
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
            fatal = self._unreachable(exc)
            if fatal is not None:
                # A name that does not resolve, a refused port or a failed TLS handshake does
                # not heal in seconds: retrying only delays the message.
                raise APIUnavailableError(fatal) from None
            return f"connection error ({type(exc).__name__})", None
        except requests.exceptions.Timeout:
            return f"no answer within {self.timeout[1]:g}s", None

    def _unreachable(self, exc: requests.exceptions.ConnectionError) -> str | None:
        """The message for network failures that are not worth a retry, else None."""
        causes: list[BaseException] = []
        current: BaseException | None = exc
        while current is not None and len(causes) < 10:
            causes.append(current)
            current = getattr(current, "reason", None) or current.__cause__ or current.__context__
        where = "check SOURCES__CHASTER__BASE_URL and your network"
        if any(isinstance(c, urllib3.exceptions.NameResolutionError) for c in causes):
            return f"cannot resolve host {self.host!r} (no such name, or no DNS); {where}"
        if isinstance(exc, requests.exceptions.SSLError):
            reason = str(causes[-1]).splitlines()[0][:160] if causes else "unknown"
            return f"TLS handshake with {self.host!r} failed ({reason}); {where}"
        if any(isinstance(c, ConnectionRefusedError) for c in causes):
            return f"cannot connect to {self.base_url} (connection refused); {where}"
        return None

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
        self.counts.rate_limit_wait += seconds
        self._announce(seconds, why)

    def _announce(self, seconds: float, why: str) -> None:
        if self.on_wait is not None and seconds >= LONG_WAIT:
            self.on_wait(seconds, why)

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
                f"{self.token_origin}: it must be a developer token of the extension's "
                "application"
            )
        if status == 404 and _no_such_route(method, response, message):
            raise ConfigError(self._redact(self._wrong_base_url(method, path, message)))
        if status == 404 and method == "GET":
            return None, None
        if status == 404:
            raise UnknownExtensionError(f"the API does not know this extension ({message})")
        if status == 400 and method == "POST" and "limit" in message.lower():
            cap = _LIMIT_CAP.search(message)
            raise PageSizeRejectedError(message, int(cap.group(1)) if cap else None)
        raise PagingError(
            self._redact(f"the API rejected {method} {path} (HTTP {status}: {message})")
        )

    def _wrong_base_url(self, method: str, path: str, message: str) -> str:
        """The line for a 404 of the server's router: the URL is wrong, not the slug or the
        session; a path in `base_url` is the likely cause, since the API's root has none."""
        base_path = urlsplit(self.base_url).path
        said = f"has no {method} {base_path}{path} (HTTP 404: {message})"
        if base_path:
            return (
                f"the server at base_url {self.base_url!r} {said}: the path {base_path} of "
                f"base_url goes before every request path, and the API's root has none "
                f"({settings.DEFAULT_BASE_URL}); check SOURCES__CHASTER__BASE_URL"
            )
        return (
            f"the server at base_url {self.base_url!r} {said}, so it is not the Chaster API; "
            f"check SOURCES__CHASTER__BASE_URL (the API's root is {settings.DEFAULT_BASE_URL})"
        )

    def logs(
        self, session_id: str, role: str, limit: int, last_id: str | None
    ) -> dict[str, Any] | None:
        """One page of a session's action log; None when the API has no such session (404)."""
        body = {"role": role, "limit": limit, "lastId": last_id, "showOnlyExtensionActions": False}
        try:
            page = self.request("POST", settings.LOGS_PATH.format(session_id=session_id), body)
        except UnknownExtensionError:  # a POST's 404 that is not the router's: no such session
            return None
        if not isinstance(page, dict) or not isinstance(page.get("results"), list):
            raise PagingError(f"the action log of session {session_id} came without a results list")
        return page

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
        self.counts.pages += 1
        return page

    def get_session(self, session_id: str) -> Session | None:
        """One session by id, as `GET /api/extensions/sessions/{sessionId}`; None when deleted."""
        payload = self.request("GET", settings.SESSION_PATH.format(session_id=quote(session_id)))
        if payload is None:
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("session"), dict):
            raise PagingError(f"GET session {session_id} answered without a session")
        return payload["session"]


def _no_such_route(method: str, response: requests.Response, message: str) -> bool:
    """A 404 from the server's router rather than from the API: NestJS answers `Cannot POST
    /path` for a path it has no route for, while the API's own 404s (an unknown extension or
    session) carry their own message; a 404 that is not JSON is a proxy's or another server's."""
    if message.startswith(f"Cannot {method} "):
        return True
    try:
        response.json()
    except ValueError:
        return True
    return False


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
