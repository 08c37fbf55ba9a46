"""A seeded, mutable population of extension sessions for the API stand-in.

Sessions are generated on demand from their index, so 100,000 of them cost a few small strings
each, not 100,000 nested dicts. Tests change the population between runs (add, end, change,
delete) and read the truth back from here to compare with what the pipeline stored. Each
session also has an action log (`logs.py`), derived from the same seed when it is first asked for.
"""

from __future__ import annotations

import bisect
import json
import random
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from . import logs
from .logs import Action

LOCKED, UNLOCKED, DESERTED = "locked", "unlocked", "deserted"
STATUSES = (LOCKED, UNLOCKED, DESERTED)
_STATUS_CODE = {LOCKED: 0, UNLOCKED: 1, DESERTED: 2}

DEFAULT_NOW = datetime(2026, 11, 1, tzinfo=UTC)
SPAN = timedelta(days=3 * 365)

_NANOID_ALPHABET = "useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict"
_HEX = "0123456789abcdef"
# seeded histories kept for paging; any other is derived again (cheaply) when asked for
_HISTORY_CACHE = 4096

# Usernames that break naive code: unicode, spaces, digits only, emoji, long.
_ODD_USERNAMES = (
    "Zoë_ø",
    "用户七",
    "émile.durand",
    "name with space",
    "🔒lockfan",
    "1234567",
    "O'Brien",
    "x" * 40,
    "Ъ-keyholder",
    "ＦｕｌｌＷｉｄｔｈ",
)
_PLAIN_NAMES = ("kh", "wearer", "lockee", "tamer", "sub", "keymaster", "pet", "switchy")
_GENDERS = ("Male", "Female", "Non-binary", "", "Trans woman", "Trans man")
_ORIENTATIONS = ("Unspecified", "Straight", "Gay", "Lesbian", "Bisexual", "Pansexual", "Queer")
_ROLES = ("keyholder", "wearer", "switch", "unspecified")
_LOCATIONS = (
    ("", ""),
    ("Lyon", "Lyon, Auvergne-Rhône-Alpes, France"),
    ("Berlin", "Berlin, Germany"),
    ("東京", "東京, Japan"),
    ("Austin", "Austin, Texas, United States"),
)
_MODES = ("cumulative", "non_cumulative", "turn", "unlimited")
_OTHER_EXTENSIONS = (
    ("wheel-of-fortune", "Wheel of Fortune"),
    ("dice", "Dice"),
    ("temporary-opening", "Hygiene opening"),
    ("tasks", "Tasks"),
    ("verification-picture", "Verification picture"),
    ("penalty", "Penalties"),
    ("pillory", "Pillory"),
    ("random-events", "Random events"),
    ("guess-timer", "Guess the timer"),
    ("link", "Share links"),
)


def _nanoid(rng: random.Random) -> str:
    return "".join(rng.choice(_NANOID_ALPHABET) for _ in range(21))


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_HEX) for _ in range(n))


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def _largest_digit_only_at_most(value: int) -> int:
    """The largest number <= value whose 8-digit hex form has only decimal digits.

    Real paginationIds such as ``655405640000000000000057`` are made of digits only; the stand-in
    places a few of them so that any code that turns such an id into a number is caught.
    """
    digits = list(f"{value:08x}")
    for pos, ch in enumerate(digits):
        if ch not in "0123456789":
            digits[pos:] = ["9"] * (len(digits) - pos)
            break
    return int("".join(digits), 16)


@dataclass
class Entry:
    """What the population keeps per session: enough to order, filter and regenerate it."""

    index: int
    pagination_id: str
    session_id: str
    status: str
    start: datetime
    overrides: dict[str, Any] = field(default_factory=dict)
    deleted: bool = False
    # how its seeded action log ends ("unlocked"/"deserted"), None if it was running when made:
    # fixed at creation, so a history never changes; `end` appends the end of a running one
    log_end: str | None = None


@dataclass(frozen=True)
class Cast:
    """The people on a session's lock, as indexes into the slug's user pool."""

    wearer: int
    keyholder: int
    shared: bool  # a shared lock has a keyholder; a self-lock has none


class Population:
    """Every session of one or more extensions, keyed by slug, in ``paginationId`` order."""

    def __init__(
        self,
        sessions: int | dict[str, int] = 3000,
        *,
        seed: int = 7,
        slugs: tuple[str, ...] = ("example-extension",),
        now: datetime = DEFAULT_NOW,
    ) -> None:
        counts = sessions if isinstance(sessions, dict) else {slug: sessions for slug in slugs}
        self.seed = seed
        self.now = now
        self._lock = threading.RLock()
        self._ids: dict[str, list[str]] = {}
        self._entries: dict[str, dict[str, Entry]] = {}
        self._by_session_id: dict[str, tuple[str, Entry]] = {}
        self._counts: dict[str, dict[str, int]] = {}
        # people per slug, fixed at creation: a session's wearer must not change as others arrive
        self._user_pool: dict[str, int] = {}
        # fields the API starts sending one day: added to every session served (and its lock)
        self.extra_fields: dict[str, Any] = {}
        self.extra_lock_fields: dict[str, Any] = {}
        # encoded bodies by paginationId, for benchmarks that must measure the client, not the
        # generator (about 5 KB a session); off by default, dropped whenever a session changes
        self.cache_bodies = False
        self._bodies: dict[str, bytes] = {}
        self._added = 0
        # action logs: the seeded histories asked for lately, and what tests appended since
        self._histories: OrderedDict[str, list[Action]] = OrderedDict()
        self._appended: dict[str, list[Action]] = {}
        self._log_clock = 0
        self._slug_number = {slug: i for i, slug in enumerate(counts)}
        for slug, n in counts.items():
            self._ids[slug] = []
            self._entries[slug] = {}
            self._counts[slug] = dict.fromkeys(STATUSES, 0)
            self._user_pool[slug] = max(50, n // 4)
            self._generate_slug(slug, n)

    # -- generation ---------------------------------------------------------------------------

    def _slug_salt(self, slug: str) -> int:
        return zlib.crc32(slug.encode()) ^ (self.seed * 2_654_435_761)

    def _rng(self, slug: str, index: int, purpose: int = 0) -> random.Random:
        return random.Random((self._slug_salt(slug) << 24) ^ (index * 4 + purpose))

    def _generate_slug(self, slug: str, n: int) -> None:
        """Lay out n sessions over three years, denser towards now, as a growing extension's are."""
        t0 = (self.now - SPAN).timestamp()
        span = SPAN.total_seconds()
        salt = self._slug_salt(slug) & 0xFFFFFFFFFF

        def boundary(i: int) -> int:
            return int(t0 + span * (i / max(n, 1)) ** (1 / 3))

        previous = 0
        for i in range(n):
            rng = self._rng(slug, i)
            lo, hi = max(boundary(i), previous + 1), max(boundary(i + 1), previous + 2)
            ts = lo + rng.randrange(hi - lo)
            tail = f"{salt:010x}{i:06x}"
            if i % 37 == 5:
                digit_ts = _largest_digit_only_at_most(hi - 1)
                if digit_ts >= lo:
                    ts, tail = digit_ts, f"{i:016d}"
            previous = ts
            pagination_id = f"{ts:08x}{tail}"
            self._insert(slug, i, pagination_id, _nanoid(rng), datetime.fromtimestamp(ts, UTC))

    def _duration(self, slug: str, index: int) -> timedelta:
        """How long a lock is meant to run: days typically, months in the long tail."""
        return timedelta(hours=self._rng(slug, index, purpose=4).lognormvariate(5.0, 1.5))

    def _insert(
        self, slug: str, index: int, pagination_id: str, session_id: str, start: datetime
    ) -> Entry:
        rng = self._rng(slug, index, purpose=1)
        duration = self._duration(slug, index)
        if start + duration > self.now:
            status = LOCKED
        else:
            status = DESERTED if rng.random() < 0.15 else UNLOCKED
        entry = Entry(index, pagination_id, session_id, status, start)
        entry.log_end = None if status == LOCKED else status
        ids = self._ids[slug]
        pos = bisect.bisect_left(ids, pagination_id)
        if pos < len(ids) and ids[pos] == pagination_id:
            raise ValueError(f"duplicate paginationId {pagination_id}")
        ids.insert(pos, pagination_id)
        self._entries[slug][pagination_id] = entry
        self._by_session_id[session_id] = (slug, entry)
        self._counts[slug][status] += 1
        return entry

    def _set(
        self, session_id: str, *, status: str | None = None, deleted: bool | None = None
    ) -> Entry:
        """Change an entry's status or deletion and keep the per-status counts true."""
        slug, entry = self._by_session_id[session_id]
        self._bodies.pop(entry.pagination_id, None)
        counts = self._counts[slug]
        if not entry.deleted:
            counts[entry.status] -= 1
        entry.status = status or entry.status
        entry.deleted = entry.deleted if deleted is None else deleted
        if not entry.deleted:
            counts[entry.status] += 1
        return entry

    # -- reading ------------------------------------------------------------------------------

    @property
    def slugs(self) -> list[str]:
        return list(self._ids)

    def has_slug(self, slug: str) -> bool:
        return slug in self._ids

    def search_entries(
        self, slug: str, status: str, after: str | None, limit: int, descending: bool
    ) -> tuple[int, bool, list[Entry]]:
        """(count of all matches, hasMore, the page's entries) of a search."""
        with self._lock:
            ids = self._ids[slug]
            entries = self._entries[slug]

            def matches(entry: Entry) -> bool:
                return not entry.deleted and (status == "all" or entry.status == status)

            counts = self._counts[slug]
            count = sum(counts.values()) if status == "all" else counts[status]
            if descending:
                start = bisect.bisect_left(ids, after) - 1 if after else len(ids) - 1
                positions = range(start, -1, -1)
            else:
                start = bisect.bisect_right(ids, after) if after else 0
                positions = range(start, len(ids))
            page: list[Entry] = []
            has_more = False
            for pos in positions:
                entry = entries[ids[pos]]
                if not matches(entry):
                    continue
                if len(page) == limit:
                    has_more = True
                    break
                page.append(entry)
            return count, has_more, page

    def search(
        self, slug: str, status: str, after: str | None, limit: int, descending: bool
    ) -> tuple[int, bool, list[dict[str, Any]]]:
        """Answer a search: (count of all matches, hasMore, one page of sessions)."""
        with self._lock:
            count, has_more, page = self.search_entries(slug, status, after, limit, descending)
            results = [{**self._session(slug, e), "paginationId": e.pagination_id} for e in page]
            return count, has_more, results

    def search_encoded(
        self, slug: str, status: str, after: str | None, limit: int, descending: bool
    ) -> bytes:
        """The search answer's JSON body, from cached session bodies when `cache_bodies`."""
        with self._lock:
            count, has_more, page = self.search_entries(slug, status, after, limit, descending)
            results = b",".join(self._encoded(slug, e) for e in page)
        more = b"true" if has_more else b"false"
        return b'{"count":%d,"hasMore":%s,"results":[%s]}' % (count, more, results)

    def _encoded(self, slug: str, entry: Entry) -> bytes:
        body = self._bodies.get(entry.pagination_id)
        if body is None:
            session = {**self._session(slug, entry), "paginationId": entry.pagination_id}
            body = json.dumps(session, ensure_ascii=False, separators=(",", ":")).encode()
            if self.cache_bodies:
                self._bodies[entry.pagination_id] = body
        return body

    def get(self, session_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._by_session_id.get(session_id)
            if found is None or found[1].deleted:
                return None
            return self._session(*found)

    def truth(self, slug: str, status: str = "all") -> dict[str, str]:
        """sessionId -> lock status of every session the API has now (what DuckDB must equal)."""
        with self._lock:
            return {
                e.session_id: e.status
                for e in self._entries[slug].values()
                if not e.deleted and (status == "all" or e.status == status)
            }

    def session_ids(self, slug: str, status: str = "all") -> list[str]:
        """Session ids in paginationId order, for tests that pick sessions to change."""
        with self._lock:
            entries = self._entries[slug]
            return [
                entries[pid].session_id
                for pid in self._ids[slug]
                if not entries[pid].deleted and (status == "all" or entries[pid].status == status)
            ]

    def session(self, session_id: str) -> dict[str, Any]:
        """The full session as the API would return it, with its paginationId."""
        with self._lock:
            slug, entry = self._by_session_id[session_id]
            return {**self._session(slug, entry), "paginationId": entry.pagination_id}

    # -- changing -----------------------------------------------------------------------------

    def add(self, slug: str, n: int = 1, *, on_old_lock: bool = False) -> list[str]:
        """Add n new sessions: newest locks by default, or on older, still-running locks.

        A session added to an old lock keeps that lock's old paginationId, so a cursor that only
        moves forward never sees it (the API notes describe this case).
        """
        with self._lock:
            ids = self._ids[slug]
            added = []
            for _ in range(n):
                self._added += 1
                index = 10_000_000 + self._added
                rng = self._rng(slug, index)
                if on_old_lock:
                    base = ids[len(ids) // 2] if ids else f"{int(self.now.timestamp()):08x}"
                    pagination_id = base[:8] + f"f{self._added:015x}"
                    start = datetime.fromtimestamp(int(base[:8], 16), UTC)
                else:
                    newest = int(ids[-1][:8], 16) if ids else int(self.now.timestamp())
                    ts = max(newest + 1, int(self.now.timestamp()) + self._added)
                    pagination_id = f"{ts:08x}e{self._added:015x}"
                    start = datetime.fromtimestamp(ts, UTC)
                entry = self._insert(slug, index, pagination_id, _nanoid(rng), start)
                self._set(entry.session_id, status=LOCKED)
                entry.log_end = None
                entry.overrides["lockStart"] = start
                added.append(entry.session_id)
            return added

    def end(self, session_id: str, status: str = UNLOCKED) -> None:
        """End a running lock: it becomes unlocked or deserted, with its end date set.

        A running lock's action log gains its end entry (`unlocked`/`deserted`), newer than all
        its others. Ending a lock that had already ended adds none: a history has one end.
        """
        if status not in (UNLOCKED, DESERTED):
            raise ValueError(status)
        with self._lock:
            slug, entry = self._by_session_id[session_id]
            if entry.status == LOCKED:
                self._append(slug, entry, status)
            entry = self._set(session_id, status=status)
            entry.overrides["endedAt"] = self.now
            entry.overrides["updatedAt"] = self.now

    def change(self, session_id: str, **data: Any) -> None:
        """Change a session's free-form ``data`` and counters, as a running extension does."""
        with self._lock:
            entry = self._by_session_id[session_id][1]
            self._bodies.pop(entry.pagination_id, None)
            entry.overrides["data"] = {**entry.overrides.get("data", {}), **data}
            entry.overrides["nbActionsRemaining"] = entry.overrides.get("nbActionsRemaining", 5) - 1
            entry.overrides["updatedAt"] = self.now

    def delete(self, session_id: str) -> None:
        with self._lock:
            self._set(session_id, deleted=True)

    def restore(self, session_id: str) -> None:
        with self._lock:
            self._set(session_id, deleted=False)

    # -- action logs ----------------------------------------------------------------------------

    def hides_time_logs(self, slug: str, index: int) -> bool:
        """Whether a lock hides its time logs from its wearer: a fixed fifth of the sessions."""
        return zlib.crc32(f"hide/{self._slug_salt(slug)}/{index}".encode()) % 5 == 0

    def _history(self, slug: str, entry: Entry) -> list[Action]:
        """A session's whole log, oldest first: the seeded history, then what was appended."""
        history = self._histories.get(entry.session_id)
        if history is None:
            start: datetime = entry.overrides.get("lockStart", entry.start)
            until = self.now
            if entry.log_end is not None:
                until = min(start + self._duration(slug, entry.index), self.now)
            rng = random.Random(f"logs/{self._slug_salt(slug)}/{entry.index}")
            shared = self._cast(slug, entry)[2].shared
            history = logs.history(rng, _ms(start), _ms(until), entry.log_end, shared=shared)
            self._histories[entry.session_id] = history
            if len(self._histories) > _HISTORY_CACHE:
                self._histories.popitem(last=False)
        else:
            self._histories.move_to_end(entry.session_id)
        return history + self._appended.get(entry.session_id, [])

    def _append(self, slug: str, entry: Entry, kind: str | None = None) -> Action:
        """Append one entry (an action, or the end `kind`) newer than all of the session's."""
        history = self._history(slug, entry)
        last, seq = history[-1], len(history)
        now_ms = _ms(self.now)
        if kind is None:
            self._log_clock += 1
            rng = random.Random(f"more/{self._slug_salt(slug)}/{entry.index}/{seq}")
            created_ms = max(last.created_ms + 1, now_ms + 1000 * self._log_clock)
            shared = self._cast(slug, entry)[2].shared
            action = logs.action(rng, created_ms, seq, shared, logs.is_frozen(history))
        else:
            action = Action(max(last.created_ms + 1, now_ms), seq, kind, "user")
        self._appended.setdefault(entry.session_id, []).append(action)
        return action

    def _log_id(self, slug: str, entry: Entry, action: Action) -> str:
        """A 24-hex ObjectId: its creation second, then slug, session and place, so ids are
        creation-ordered within a session and unique across the population."""
        number = self._slug_number[slug]
        return f"{action.created_ms // 1000:08x}{number:02x}{entry.index:08x}{action.seq:06x}"

    def _visible(
        self, slug: str, entry: Entry, role: str, only_extension: bool
    ) -> tuple[list[Action], list[str]]:
        hides = self.hides_time_logs(slug, entry.index)
        seen = [
            a
            for a in self._history(slug, entry)
            if logs.visible(a, role, hides, only_extension, slug)
        ]
        return seen, [self._log_id(slug, entry, a) for a in seen]

    def _public(
        self, slug: str, entry: Entry, actions: list[Action], ids: list[str]
    ) -> list[dict[str, Any]]:
        cast = self._cast(slug, entry)[2]
        wearer = self._user(slug, cast.wearer, "wearer")
        keyholder = self._user(slug, cast.keyholder, "keyholder") if cast.shared else None
        lock_id = entry.pagination_id
        return [
            logs.public(a, log_id=i, lock_id=lock_id, slug=slug, wearer=wearer, keyholder=keyholder)
            for a, i in zip(actions, ids, strict=True)
        ]

    def log_search(
        self,
        session_id: str,
        role: str,
        after: str | None,
        limit: int,
        descending: bool,
        only_extension: bool = False,
    ) -> tuple[int, bool, list[dict[str, Any]]] | None:
        """Answer a log search: (count, hasMore, one page of entries), None for no such session.

        The page holds the entries after `after` in the serving order. `after` is a position, not
        a key: an id the session never had still pages from where it would sort, as an ObjectId
        comparison in the database would. `count` is every entry this `role` sees with this
        filter; what the real API counts is not documented.
        """
        with self._lock:
            found = self._by_session_id.get(session_id)
            if found is None or found[1].deleted:
                return None
            slug, entry = found
            seen, ids = self._visible(slug, entry, role, only_extension)
            if descending:
                start = bisect.bisect_left(ids, after) - 1 if after else len(ids) - 1
                positions = range(start, -1, -1)
            else:
                positions = range(bisect.bisect_right(ids, after) if after else 0, len(ids))
            page = positions[:limit]
            results = self._public(slug, entry, [seen[p] for p in page], [ids[p] for p in page])
            return len(ids), len(positions) > limit, results

    def log_entries(
        self, session_id: str, role: str = "keyholder", *, only_extension: bool = False
    ) -> list[dict[str, Any]]:
        """A session's log as `role` sees it, oldest first (the truth; deleted sessions too)."""
        with self._lock:
            slug, entry = self._by_session_id[session_id]
            seen, ids = self._visible(slug, entry, role, only_extension)
            return self._public(slug, entry, seen, ids)

    def log_truth(self, slug: str, role: str = "keyholder") -> dict[str, list[str]]:
        """sessionId -> entry ids oldest first, for every session the API has now."""
        with self._lock:
            return {
                e.session_id: self._visible(slug, e, role, False)[1]
                for e in self._entries[slug].values()
                if not e.deleted
            }

    def total_log_entries(self, slug: str, role: str = "keyholder") -> int:
        """How many entries `role` sees over every session the API has now."""
        return sum(len(ids) for ids in self.log_truth(slug, role).values())

    def add_log_entries(self, session_id: str, n: int = 1) -> list[str]:
        """Append n actions to a running session's log, newer than all its entries; their ids.

        They are dated after the population's `now` (a second apart across the population), as
        sessions `add` makes are. Only a running lock gains entries; `end` writes the last one.
        The session's `updatedAt` stays: whether the real API moves it is not known.
        """
        with self._lock:
            slug, entry = self._by_session_id[session_id]
            if entry.deleted or entry.status != LOCKED:
                raise ValueError(f"session {session_id} is not running; only running locks log")
            return [self._log_id(slug, entry, self._append(slug, entry)) for _ in range(n)]

    # -- the session body ---------------------------------------------------------------------

    def _user(self, slug: str, user_index: int, role: str) -> dict[str, Any]:
        rng = self._rng(slug, 50_000_000 + user_index, purpose=2)
        if user_index % 11 == 3:
            username = _ODD_USERNAMES[user_index % len(_ODD_USERNAMES)]
        else:
            username = f"{rng.choice(_PLAIN_NAMES)}_{user_index}"
        location, full_location = rng.choice(_LOCATIONS)
        has_discord = rng.random() < 0.3
        return {
            "_id": f"64{user_index:06x}{_hex(rng, 16)}",
            "username": username,
            "isPremium": rng.random() < 0.3,
            "isFindom": False,
            "isAdmin": False,
            "isModerator": False,
            "isTeamMember": False,
            "metadata": {
                "locktober2020Points": 0,
                "locktober2021Points": 0,
                "chastityMonth2022Points": 0,
                "locktober2022Points": rng.randrange(0, 200),
                "locktober2023Points": rng.randrange(0, 400),
                "locktober2024Points": rng.randrange(0, 400),
            },
            "isDisabled": False,
            "isSuspended": False,
            "joinedAt": f"20{rng.randrange(20, 26)}-{rng.randrange(1, 13):02d}",
            "isNewMember": rng.random() < 0.1,
            "age": rng.choice((None, rng.randrange(18, 70))),
            "avatarUrl": f"https://cdn01.chaster.app/app/uploads/avatars/{_hex(rng, 12)}.jpg",
            "description": rng.choice(("", "Synthetic profile. ✨", "Line one\nline two")),
            "discordId": str(10**17 + user_index) if has_discord else None,
            "discordUsername": f"{username}#0" if has_discord else None,
            "fullLocation": full_location,
            "gender": rng.choice(_GENDERS),
            "sexualOrientation": rng.choice(_ORIENTATIONS),
            "lastSeen": rng.choice((None, rng.randrange(0, 100_000))),
            "location": location,
            "online": rng.random() < 0.2,
            "role": role,
            "features": [],
            "isSuspendedOrDisabled": False,
        }

    @staticmethod
    def _own_config(rng: random.Random) -> dict[str, Any]:
        """Free-form config whose shape differs between sessions, as real extensions' do."""
        shape = rng.randrange(4)
        if shape == 0:
            return {}
        if shape == 1:
            return {
                "difficulty": [
                    {"type": "add", "weight": rng.randrange(1, 5)},
                    {"type": "remove", "weight": rng.randrange(1, 5)},
                ],
                "dailyQuota": rng.choice((3, 5, 10)),
                "penaltySeconds": rng.choice((600, 3600, 86400)),
            }
        if shape == 2:
            return {"level": rng.choice(("easy", "normal", "hard")), "bonus": {"enabled": True}}
        return {"dailyQuota": rng.choice((3, 5, 10)), "allowSkips": rng.random() < 0.5}

    @staticmethod
    def _other_config(slug: str, rng: random.Random) -> dict[str, Any]:
        if slug == "wheel-of-fortune":
            return {
                "segments": [
                    {"type": "add-time", "text": "", "duration": 3600},
                    {"type": "remove-time", "text": "", "duration": 1800},
                ]
            }
        if slug == "dice":
            return {"multiplier": rng.choice((600, 3600))}
        if slug == "temporary-opening":
            return {"openingTime": 900, "penaltyTime": 43200, "allowOnlyKeyholderToOpen": False}
        if slug == "tasks":
            return {"tasks": [{"task": "Write a line", "points": 1}], "voteEnabled": False}
        return {}

    def _party(
        self, slug: str, name: str, party_id: str, config: dict[str, Any], rng: random.Random
    ) -> dict[str, Any]:
        return {
            "slug": slug,
            "displayName": name,
            "summary": f"{name}: synthetic summary.",
            "subtitle": f"The {name} extension",
            "icon": "puzzle-piece",
            "_id": party_id,
            "config": config,
            "mode": rng.choice(_MODES),
            "regularity": rng.choice((3600, 86400)),
            "userData": None if slug != "temporary-opening" else {"openedAt": None},
            "nbActionsRemaining": rng.choice((-1, 0, 1, 5)),
            "nextActionDate": None,
            "isPartner": slug not in dict(_OTHER_EXTENSIONS),
            "textConfig": "",
            "createdAt": "",
            "updatedAt": "",
        }

    def _cast(self, slug: str, entry: Entry) -> tuple[random.Random, str, Cast]:
        """The first draws of a session's body: its party id's tail and the people on its lock.

        The action log names the same people without building the whole body; the body goes on
        drawing from the returned generator, so both see one sequence.
        """
        rng = self._rng(slug, entry.index, purpose=3)
        party_hex = _hex(rng, 16)
        user_pool = self._user_pool[slug]
        wearer = rng.randrange(user_pool)
        shared = rng.random() < 0.6
        keyholder = user_pool + rng.randrange(user_pool // 5 + 1)
        return rng, party_hex, Cast(wearer, keyholder, shared)

    def _session(self, slug: str, entry: Entry) -> dict[str, Any]:
        rng, party_hex, cast = self._cast(slug, entry)
        o = entry.overrides
        start: datetime = o.get("lockStart", entry.start)
        duration = self._duration(slug, entry.index)
        ended_at: datetime | None = None
        if entry.status != LOCKED:
            ended_at = o.get("endedAt") or min(start + duration, self.now)
        lock_id = entry.pagination_id
        party_id = f"{lock_id[:8]}{party_hex}"
        created = _iso(start)
        updated = _iso(o.get("updatedAt") or min(start + timedelta(hours=1), self.now))
        wearer = self._user(slug, cast.wearer, "wearer")
        shared = cast.shared
        keyholder = self._user(slug, cast.keyholder, "keyholder")
        own_config = self._own_config(rng)
        mode = rng.choice(_MODES)
        own_party = self._party(slug, "Example Extension", party_id, own_config, rng)
        own_party.update(mode=mode, createdAt=created, updatedAt=updated)
        others = rng.sample(_OTHER_EXTENSIONS, rng.randrange(0, 4))
        parties = [own_party]
        for other_slug, other_name in others:
            other = self._party(
                other_slug,
                other_name,
                f"{lock_id[:8]}{_hex(rng, 16)}",
                self._other_config(other_slug, rng),
                rng,
            )
            other.update(createdAt=created, updatedAt=created)
            parties.append(other)
        shared_lock = None
        if shared:
            requires_password = rng.random() < 0.2
            shared_lock = {
                "_id": f"{lock_id[:6]}aa{_hex(rng, 16)}",
                "minDuration": 3600,
                "maxDuration": 604800,
                "maxLimitDuration": None,
                "minDate": None,
                "maxDate": None,
                "maxLimitDate": None,
                "displayRemainingTime": rng.random() < 0.5,
                "limitLockTime": True,
                "maxLockedUsers": rng.choice((None, 10)),
                "isPublic": rng.random() < 0.5,
                "requireContact": False,
                "name": rng.choice(("Weekend lock", "Long haul 🔐", "Ünïcödé lock")),
                "description": "Synthetic shared lock.",
                "tags": rng.sample(["beginner", "extensions", "long", "hardcore"], 2),
                "unsplashPhoto": None,
                "hideTimeLogs": False,
                "lastSavedAt": created,
                "requirePassword": requires_password,
                "password": f"pw-{_hex(rng, 10)}" if requires_password else None,
                "user": keyholder,
                "durationMode": "duration",
                "isFindom": False,
                "calculatedMaxLimitDuration": None,
                "extensions": [
                    {
                        "slug": p["slug"],
                        "config": p["config"],
                        "mode": p["mode"],
                        "regularity": p["regularity"],
                        "name": p["displayName"],
                        "textConfig": p["textConfig"],
                    }
                    for p in parties
                ],
            }
        total_ms = int(((ended_at or self.now) - start).total_seconds() * 1000)
        data = (
            {}
            if rng.random() < 0.3
            else {
                "actions": {"total": rng.randrange(50), "today": rng.randrange(5)},
                "history": [{"at": created, "result": rng.choice(("add", "remove"))}],
            }
        )
        data.update(o.get("data", {}))
        offer = rng.random() < 0.5
        return {
            "slug": slug,
            "displayName": "Example Extension",
            "summary": "Synthetic partner extension.",
            "subtitle": "A sample partner extension",
            "icon": "puzzle-piece",
            "_id": party_id,
            "config": own_config,
            "mode": mode,
            "regularity": own_party["regularity"],
            "userData": None,
            "nbActionsRemaining": o.get("nbActionsRemaining", own_party["nbActionsRemaining"]),
            "nextActionDate": None
            if entry.status != LOCKED
            else _iso(self.now + timedelta(hours=2)),
            "isPartner": True,
            "textConfig": "",
            "createdAt": created,
            "updatedAt": updated,
            "sessionId": entry.session_id,
            "data": data,
            "metadata": {
                "reasonsPreventingUnlocking": (
                    ["Daily quota not reached yet"] if entry.status == LOCKED else []
                ),
                "homeActions": (
                    [
                        {
                            "slug": "do-action",
                            "title": "Do today's action",
                            "description": "Synthetic",
                            "icon": "fa-dice",
                            "badge": str(rng.randrange(1, 9)),
                        }
                    ]
                    if rng.random() < 0.5
                    else []
                ),
                "_id": f"{lock_id[:8]}{_hex(rng, 16)}",
                "penalties": [],
            },
            "lock": {
                "_id": lock_id,
                "startDate": created,
                "endDate": _iso(start + duration),
                "minDate": _iso(start + duration / 2),
                "maxDate": _iso(start + duration * 2),
                "maxLimitDate": None,
                "displayRemainingTime": rng.random() < 0.5,
                "limitLockTime": rng.random() < 0.5,
                "status": entry.status,
                "combination": _hex(rng, 24),
                "sharedLock": shared_lock,
                "createdAt": created,
                "updatedAt": updated,
                "unlockedAt": _iso(ended_at) if entry.status == UNLOCKED and ended_at else None,
                "archivedAt": _iso(ended_at) if entry.status == DESERTED and ended_at else None,
                "frozenAt": None,
                "keyholderArchivedAt": None,
                "totalDuration": total_ms,
                "allowSessionOffer": offer,
                "isTestLock": rng.random() < 0.05,
                "offerToken": f"{_hex(rng, 8)}-{_hex(rng, 4)}-4{_hex(rng, 3)}-a{_hex(rng, 3)}-"
                f"{_hex(rng, 12)}"
                if offer
                else None,
                "hideTimeLogs": self.hides_time_logs(slug, entry.index),
                "trusted": rng.random() < 0.5,
                "user": wearer,
                "keyholder": keyholder if shared else None,
                "isAllowedToViewTime": True,
                "canBeUnlocked": entry.status != LOCKED,
                "canBeUnlockedByMaxLimitDate": False,
                "isFrozen": rng.random() < 0.1,
                "extensions": parties,
                "title": shared_lock["name"] if shared_lock else "Self-lock",
                "lastVerificationPicture": None,
                "reasonsPreventingUnlocking": (
                    [{"reason": "Daily quota not reached yet", "icon": "puzzle-piece"}]
                    if entry.status == LOCKED
                    else []
                ),
                "extensionsAllowUnlocking": entry.status != LOCKED,
                **self.extra_lock_fields,
            },
            **self.extra_fields,
        }
