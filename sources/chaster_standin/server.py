"""A loopback HTTP stand-in for the Chaster Extensions API, faithful where the extractor cares.

It answers `POST /api/extensions/sessions/search`, `GET /api/extensions/sessions/{id}` and
`POST /api/extensions/sessions/{id}/logs/search` the way `shared/chaster-api.md` describes (NestJS
bodies, 201 on POST, Bearer auth), and it can be told to do what the real API might: sort either
way (sessions and logs each), cap pages, rate-limit with any of the plausible `X-RateLimit-Reset`
units, answer 429 with or without `Retry-After`, and fail in chosen ways. Tests, the demo and the
benchmarks all use it; `python -m chaster_standin` runs it on its own.

The action log search (endpoint name "logs" for `add_fault` and `count`) takes
`{"role", "limit", "lastId", "showOnlyExtensionActions"}` and answers `{"count", "hasMore",
"results"}`. `role` is required (400 without it). The keyholder sees every entry; the wearer and
a visitor miss the `time_changed` entries of locks with `hideTimeLogs` (a fifth of them), so a
reader that wants everything asks as "keyholder". A deleted or unknown session answers 404, as
its GET does; a `limit` over `log_page_cap` is treated as the sessions search treats one over
`page_cap` (`cap_mode`).
"""

from __future__ import annotations

import json
import math
import re
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .logs import ROLES
from .population import DESERTED, UNLOCKED, Population

SEARCH_PATH = "/api/extensions/sessions/search"
GET_PREFIX = "/api/extensions/sessions/"
LOGS_PATH = re.compile(r"^/api/extensions/sessions/([^/]+)/logs/search$")
_OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
STATUSES = ("locked", "unlocked", "deserted", "all")

FAULT_KINDS = (
    "500",  # JSON 500 from the API itself
    "502_html",  # an HTML error page from a proxy in front of the API
    "503",
    "reset",  # the connection is closed without an answer
    "timeout",  # the answer comes after `seconds`
    "bad_json",  # a 2xx whose body is cut short
    "429",  # a throttler answer, whatever the budget says
    "repeat_cursor",  # the cursor is ignored: the first page again
    "empty_has_more",  # no results, yet hasMore is true
    "missing_pagination_id",  # the last result has no paginationId (on "logs": no `_id`)
)


@dataclass
class Fault:
    kind: str
    endpoint: str = "search"  # "search", "get", "logs" or "any"
    times: int = 1
    after: int = 0  # let this many matching requests through first
    seconds: float = 0.0


@dataclass
class StandInConfig:
    token: str = "standin-token"  # noqa: S105 - a loopback test server's token
    order: str = "asc"  # "asc" or "desc": which way search results are sorted
    page_cap: int = 100  # the largest `limit` the API accepts
    cap_mode: str = "reject"  # "reject" (400) or "clamp" (silently return page_cap results)
    log_order: str = "desc"  # action logs: "desc" (newest first, as the public history) or "asc"
    log_page_cap: int = 100  # the largest `limit` of a log search (cap_mode applies too)
    rate_limit: int | None = None  # requests per `rate_window` seconds; None = no throttling
    rate_window: float = 60.0
    reset_unit: str = "seconds"  # X-RateLimit-Reset as "seconds" until reset, "epoch", "epoch_ms"
    rate_headers: bool = True
    retry_after: bool = True  # whether a 429 carries Retry-After
    latency: float = 0.0  # seconds added to every answer
    faults: list[Fault] = field(default_factory=list)


@dataclass
class LoggedRequest:
    method: str
    path: str
    body: dict[str, Any] | None
    status: int
    authorization: str | None
    at: float = 0.0  # time.monotonic() when it arrived


class StandIn:
    """The server, its population and its request log; start it in-process or as a process."""

    def __init__(
        self, population: Population | None = None, config: StandInConfig | None = None
    ) -> None:
        self.population = population or Population()
        self.config = config or StandInConfig()
        self.requests: list[LoggedRequest] = []
        self._hits: deque[float] = deque()
        self._guard = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> StandIn:
        standin = self

        class Handler(_Handler):
            owner = standin

        self._server = _QuietServer((host, port), Handler)
        self._server.daemon_threads = True
        # shutdown() waits for the loop's next poll: 0.5 s by default, paid by every test
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> StandIn:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the stand-in first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- what tests read and set ----------------------------------------------------------------

    def add_fault(self, kind: str, **kwargs: Any) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULT_KINDS}")
        with self._guard:
            self.config.faults.append(Fault(kind, **kwargs))

    def clear_log(self) -> None:
        with self._guard:
            self.requests.clear()

    def count(self, endpoint: str | None = None, status: int | None = None) -> int:
        """Requests received, optionally only to "search", "get" or "logs", or with one status."""
        with self._guard:
            return sum(
                1
                for r in self.requests
                if (endpoint is None or _endpoint(r.path) == endpoint)
                and (status is None or r.status == status)
            )

    def stats(self) -> dict[str, Any]:
        with self._guard:
            times = [r.at for r in self.requests]
            return {
                "requests": len(self.requests),
                "first_at": min(times, default=None),
                "last_at": max(times, default=None),
                "by_endpoint": dict(Counter(_endpoint(r.path) for r in self.requests)),
                "by_status": {
                    str(k): v for k, v in Counter(r.status for r in self.requests).items()
                },
            }

    # -- the API ------------------------------------------------------------------------------

    def _take_fault(self, endpoint: str) -> Fault | None:
        with self._guard:
            for fault in self.config.faults:
                if fault.endpoint not in (endpoint, "any"):
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    return None
                fault.times -= 1
                if fault.times <= 0:
                    self.config.faults.remove(fault)
                return fault
        return None

    def _throttle(self) -> tuple[bool, dict[str, str]]:
        """Count this request against a rolling window, as NestJS's throttler does."""
        cfg = self.config
        if cfg.rate_limit is None:
            return False, {}
        now = time.monotonic()
        with self._guard:
            while self._hits and self._hits[0] <= now - cfg.rate_window:
                self._hits.popleft()
            self._hits.append(now)
            used = len(self._hits)
            until_reset = self._hits[0] + cfg.rate_window - now
        limited = used > cfg.rate_limit
        headers: dict[str, str] = {}
        if cfg.rate_headers:
            if cfg.reset_unit == "epoch":
                reset = str(math.ceil(time.time() + until_reset))
            elif cfg.reset_unit == "epoch_ms":
                reset = str(int((time.time() + until_reset) * 1000))
            else:
                reset = str(math.ceil(until_reset))
            headers = {
                "X-RateLimit-Limit": str(cfg.rate_limit),
                "X-RateLimit-Remaining": str(max(0, cfg.rate_limit - used)),
                "X-RateLimit-Reset": reset,
            }
        if limited and cfg.retry_after:
            headers["Retry-After"] = str(max(1, math.ceil(until_reset)))
        return limited, headers

    def _search(self, body: Any, fault: Fault | None) -> tuple[int, dict[str, Any] | bytes]:
        cfg = self.config
        if not isinstance(body, dict):
            return _error(400, ["body must be a JSON object"])
        problems = []
        slug = body.get("extensionSlug")
        status = body.get("status", "locked")
        limit = body.get("limit", 15)
        last_id = body.get("paginationLastId")
        if not isinstance(slug, str) or not slug:
            problems.append("extensionSlug must be a string")
        if status not in STATUSES:
            problems.append(f"status must be one of the following values: {', '.join(STATUSES)}")
        limit = self._paging(limit, cfg.page_cap, last_id, "paginationLastId", problems)
        if problems or not isinstance(slug, str):
            return _error(400, problems)
        if not self.population.has_slug(slug):
            return _error(404, "Extension not found")
        if fault is not None and fault.kind == "repeat_cursor":
            last_id = None
        if fault is None or fault.kind not in ("empty_has_more", "missing_pagination_id"):
            return 201, self.population.search_encoded(
                slug, status, last_id, limit, descending=cfg.order == "desc"
            )
        count, has_more, results = self.population.search(
            slug, status, last_id, limit, descending=cfg.order == "desc"
        )
        if fault is not None and fault.kind == "empty_has_more":
            results, has_more = [], True
        if fault is not None and fault.kind == "missing_pagination_id" and results:
            results[-1].pop("paginationId", None)
        return 201, {"count": count, "hasMore": has_more, "results": results}

    def _paging(
        self, limit: Any, cap: int, last_id: Any, last_name: str, problems: list[str]
    ) -> Any:
        """Check a search's `limit` and cursor as NestJS would (appending to `problems`); the
        limit to serve: over `cap`, refused or clamped as `cap_mode` says."""
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            problems.append("limit must not be less than 1")
        elif limit > cap:
            if self.config.cap_mode == "reject":
                problems.append(f"limit must not be greater than {cap}")
            limit = cap
        if last_id is not None and (not isinstance(last_id, str) or not _OBJECT_ID.match(last_id)):
            problems.append(f"{last_name} must be a mongodb id")
        return limit

    def _logs(self, session_id: str, body: Any, fault: Fault | None) -> tuple[int, dict[str, Any]]:
        """One page of a session's action log, validated as NestJS would validate the body."""
        cfg = self.config
        if not isinstance(body, dict):
            body = {}
        problems = []
        role = body.get("role")
        limit = body.get("limit", 15)
        last_id = body.get("lastId")
        only_extension = body.get("showOnlyExtensionActions", False)
        if role not in ROLES:
            problems.append(f"role must be one of the following values: {', '.join(ROLES)}")
        limit = self._paging(limit, cfg.log_page_cap, last_id, "lastId", problems)
        if not isinstance(only_extension, bool):
            problems.append("showOnlyExtensionActions must be a boolean value")
        if problems:
            return _error(400, problems)
        if fault is not None and fault.kind == "repeat_cursor":
            last_id = None
        found = self.population.log_search(
            session_id, role, last_id, limit, cfg.log_order == "desc", only_extension
        )
        if found is None:
            return _error(404, "Extension session not found")
        count, has_more, results = found
        if fault is not None and fault.kind == "empty_has_more":
            results, has_more = [], True
        if fault is not None and fault.kind == "missing_pagination_id" and results:
            results[-1].pop("_id")
        return 201, {"count": count, "hasMore": has_more, "results": results}

    def _get(self, session_id: str) -> tuple[int, dict[str, Any]]:
        session = self.population.get(session_id)
        if session is None:
            return _error(404, "Extension session not found")
        return 200, {"session": session}

    def _admin(self, path: str, body: Any) -> tuple[int, Any]:
        """Test hooks for a stand-in in another process: change the population, read counts."""
        pop = self.population
        if path == "/_standin/stats":
            return 200, self.stats()
        if path == "/_standin/truth":
            return 200, {slug: pop.truth(slug) for slug in pop.slugs}
        if path == "/_standin/log-truth":
            role = body.get("role", "keyholder") if isinstance(body, dict) else "keyholder"
            return 200, {slug: pop.log_truth(slug, role) for slug in pop.slugs}
        if path == "/_standin/mutate" and isinstance(body, dict):
            slug = body.get("slug") or pop.slugs[0]
            changed: dict[str, list[str]] = {"added": pop.add(slug, int(body.get("add", 0)))}
            locked = pop.session_ids(slug, "locked")
            n_end, n_change = int(body.get("end", 0)), int(body.get("change", 0))
            changed["ended"] = locked[:n_end]
            for i, session_id in enumerate(changed["ended"]):
                pop.end(session_id, DESERTED if i % 4 == 3 else UNLOCKED)
            changed["changed"] = locked[n_end : n_end + n_change]
            for session_id in changed["changed"]:
                pop.change(session_id, touched=True)
            changed["deleted"] = pop.session_ids(slug)[: int(body.get("delete", 0))]
            for session_id in changed["deleted"]:
                pop.delete(session_id)
            # `log_entries` new entries, one to each running session in turn
            running = pop.session_ids(slug, "locked")
            n_logged = int(body.get("log_entries", 0)) if running else 0
            changed["logged"] = [
                pop.add_log_entries(running[i % len(running)])[0] for i in range(n_logged)
            ]
            return 200, changed
        if path == "/_standin/reset-log":
            self.clear_log()
            return 200, {}
        return 404, {"statusCode": 404, "message": "no such stand-in hook"}

    def handle(self, method: str, path: str, raw: bytes, authorization: str | None) -> _Answer:
        path = path.split("?", 1)[0]
        if path.startswith("/_standin/"):
            status, answer = self._admin(path, _parse(raw))
            return _Answer(status, _json(answer))
        endpoint = _endpoint(path)
        fault = self._take_fault(endpoint)
        if self.config.latency:
            time.sleep(self.config.latency)
        limited, headers = self._throttle()
        if fault is not None:
            answer = _fault_answer(fault)
            if answer is not None:
                return answer.with_headers(headers)
        if limited:
            msg = {"statusCode": 429, "message": "ThrottlerException: Too Many Requests"}
            return _Answer(429, _json(msg), headers)
        if authorization != f"Bearer {self.config.token}":
            return _Answer(401, _json({"statusCode": 401, "message": "Unauthorized"}), headers)
        payload: Any
        logs_path = LOGS_PATH.match(path)
        if method == "POST" and path == SEARCH_PATH:
            status, payload = self._search(_parse(raw), fault)
        elif method == "POST" and logs_path:
            status, payload = self._logs(logs_path.group(1), _parse(raw), fault)
        elif method == "GET" and path.startswith(GET_PREFIX) and path.count("/") == 4:
            status, payload = self._get(path[len(GET_PREFIX) :])
        else:
            status, payload = _error(404, f"Cannot {method} {path}")
        body = payload if isinstance(payload, bytes) else _json(payload)
        return _Answer(status, body, headers)


@dataclass
class _Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"
    drop: bool = False

    def with_headers(self, headers: dict[str, str]) -> _Answer:
        self.headers = {**headers, **self.headers}
        return self


def _endpoint(path: str) -> str:
    if path.startswith(SEARCH_PATH):
        return "search"
    if LOGS_PATH.match(path.split("?", 1)[0]):
        return "logs"
    if path.startswith(GET_PREFIX):
        return "get"
    return "other"


def _json(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _error(status: int, message: str | list[str]) -> tuple[int, dict[str, Any]]:
    names = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}
    return status, {"statusCode": status, "message": message, "error": names.get(status, "Error")}


def _fault_answer(fault: Fault) -> _Answer | None:
    """The answer a fault replaces the real one with; None for faults that bend the real one."""
    if fault.kind == "500":
        return _Answer(500, _json({"statusCode": 500, "message": "Internal server error"}))
    if fault.kind == "503":
        return _Answer(503, _json({"statusCode": 503, "message": "Service Unavailable"}))
    if fault.kind == "502_html":
        page = (
            b"<html><head><title>502 Bad Gateway</title></head><body><center>"
            b"<h1>502 Bad Gateway</h1></center><hr><center>cloudflare</center></body></html>"
        )
        return _Answer(502, page, content_type="text/html")
    if fault.kind == "reset":
        return _Answer(0, b"", drop=True)
    if fault.kind == "timeout":
        time.sleep(fault.seconds)
        return None
    if fault.kind == "bad_json":
        return _Answer(201, b'{"count": 3, "hasMore": tr')
    if fault.kind == "429":
        return _Answer(429, _json({"statusCode": 429, "message": "ThrottlerException"}))
    return None


class _QuietServer(ThreadingHTTPServer):
    """Clients that vanish mid-answer (killed pipelines, in the crash tests) are not errors."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    owner: StandIn
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes; with Nagle's algorithm the body then waits for
    # the client's delayed ACK of the headers: 40 ms on every answer of a kept-alive connection
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Keep the test output quiet; the request log is the record."""

    def _serve(self, method: str) -> None:
        arrived = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        authorization = self.headers.get("Authorization")
        answer = self.owner.handle(method, self.path, raw, authorization)
        if not self.path.startswith("/_standin/"):
            body = _parse(raw) if method == "POST" else None
            with self.owner._guard:
                self.owner.requests.append(
                    LoggedRequest(method, self.path, body, answer.status, authorization, arrived)
                )
        if answer.drop:
            self.close_connection = True
            return
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer.body)

    def do_POST(self) -> None:
        self._serve("POST")

    def do_GET(self) -> None:
        self._serve("GET")
