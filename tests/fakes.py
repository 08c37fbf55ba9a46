"""A small in-memory stand-in for `ChasterClient`, for the unit tests of the core.

The end-to-end tests talk HTTP to `chaster_standin`; the unit tests of the walk, the cursor, the
sweep, the refresh and `--session-id` only need what the client answers. `FakeClient` serves a
list of sessions in either order of `paginationId`, honours `limit` (and refuses one above its
cap as the API does), answers GETs (None for a session it does not have, as a 404), and records
every call so a test can assert the exact requests a decision cost. `ScriptedClient` answers
canned pages, for the guards against an API that misbehaves.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, cast

from chaster_sessions.client import ChasterClient, RequestCounts, Session
from chaster_sessions.errors import PageSizeRejectedError


def pid(n: int) -> str:
    """A paginationId: 24 digits, so string order is the order of `n` (as ObjectIds sort)."""
    return f"{n:024d}"


def session(n: int, status: str = "unlocked") -> Session:
    """Session number `n`; `paginationId` grows with `n`, as ObjectIds grow with time."""
    return {"sessionId": f"s{n:02d}", "paginationId": pid(n), "lock": {"status": status}}


def numbers(page: list[Session]) -> list[int]:
    """The session numbers of a page, to compare pages at a glance."""
    return [int(s["sessionId"][1:]) for s in page]


@dataclass
class FakeClient:
    """Serves `sessions` in `order` of paginationId, `limit` at a time after `after`."""

    sessions: list[Session]
    order: str = "asc"
    cap: int | None = None  # a larger `limit` is refused
    cap_named: bool = True  # the refusal names the cap (else the client halves)
    counts: RequestCounts = field(default_factory=RequestCounts)
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def search(self, slug: str, status: str, limit: int, after: str | None) -> dict[str, Any]:
        self.calls.append(("search", status, limit, after))
        self.counts.count("POST")
        if self.cap is not None and limit > self.cap:
            if self.cap_named:
                raise PageSizeRejectedError(f"limit must not be greater than {self.cap}", self.cap)
            raise PageSizeRejectedError("limit is too large", None)
        matching = [s for s in self.sessions if status == "all" or s["lock"]["status"] == status]
        desc = self.order == "desc"
        matching.sort(key=lambda s: s["paginationId"], reverse=desc)
        count = len(matching)
        if after is not None:
            matching = [
                s
                for s in matching
                if (s["paginationId"] < after if desc else s["paginationId"] > after)
            ]
        self.counts.pages += 1
        return {
            "count": count,
            "hasMore": len(matching) > limit,
            "results": copy.deepcopy(matching[:limit]),
        }

    def get_session(self, session_id: str) -> Session | None:
        self.calls.append(("get", session_id))
        self.counts.count("GET")
        for stored in self.sessions:
            if stored["sessionId"] == session_id:
                fresh = copy.deepcopy(stored)
                del fresh["paginationId"]  # a GET answers without it
                return fresh
        return None

    def searches(self) -> list[tuple[Any, ...]]:
        """(status, limit, after) of each search, in order."""
        return [call[1:] for call in self.calls if call[0] == "search"]

    def gets(self) -> list[str]:
        return [call[1] for call in self.calls if call[0] == "get"]

    def as_client(self) -> ChasterClient:
        """For the type checker: the core takes a `ChasterClient`, and this one quacks like it."""
        return cast(ChasterClient, self)


@dataclass
class ScriptedClient:
    """Answers each search with the next canned page, whatever was asked."""

    pages: list[dict[str, Any]]
    counts: RequestCounts = field(default_factory=RequestCounts)
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def search(self, slug: str, status: str, limit: int, after: str | None) -> dict[str, Any]:
        self.calls.append(("search", status, limit, after))
        self.counts.count("POST")
        return copy.deepcopy(self.pages[len(self.calls) - 1])

    def as_client(self) -> ChasterClient:
        return cast(ChasterClient, self)
