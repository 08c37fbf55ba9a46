"""Each session's action log for the stand-in: a seeded history, derived on demand.

A history is a pure function of the session's seed, its start and how it ended, so it is never
stored whole: `Population` keeps a small cache of recent ones and, per session, only the entries
tests appended since (`add_log_entries`, `end`). Entries are kept compact (`Action`) and become
`ActionLogForPublic` dicts only for the page being served.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any, NamedTuple

ROLES = ("keyholder", "wearer", "visitor")

# Chaster's own entries carry the prefix "default"; an extension's own types carry its slug.
DEFAULT_PREFIX = "default"
EXTENSION_TYPES = ("custom", "dice_rolled")

_DURATIONS = (600, 1800, 3600, 7200, 21600, 86400)
_FREEZES = {"lock_frozen": True, "lock_unfrozen": False}


class Action(NamedTuple):
    """One entry, compact: enough to rebuild its `ActionLogForPublic` form."""

    created_ms: int  # epoch milliseconds; the `_id` begins with its seconds
    seq: int  # its place in the session's history, from 0: ends the `_id`
    type: str
    role: str  # "user" (the wearer), "keyholder", "extension" or "admin"
    value: int = 0  # the signed seconds of a time_changed, the number rolled, a code


def history(
    rng: random.Random, start_ms: int, until_ms: int, ended: str | None, shared: bool
) -> list[Action]:
    """A session's history: `locked` at its start, actions until `until_ms`, then its end if any.

    `ended` is "unlocked" or "deserted" for a lock that ended at `until_ms`, None for one still
    running (its actions reach `until_ms`, the population's now). Most histories have 1 to 40
    entries; about 3 in 100 have over 100, so that paging is exercised. A self-lock (`shared`
    false) has no keyholder, so the extension does what a keyholder would.
    """
    actions = [Action(start_ms + _below(rng, 1000), 0, "locked", "user")]
    n = 100 + _below(rng, 140) if rng.random() < 0.03 else _below(rng, 39)
    # strictly inside the lock's span, so `locked` stays first and the end stays last
    first, last = (start_ms // 1000 + 1) * 1000, (until_ms // 1000) * 1000 - 1
    times = sorted(first + _below(rng, last - first) for _ in range(n)) if last > first else []
    frozen = False
    for created_ms in times:
        actions.append(action(rng, created_ms, len(actions), shared, frozen))
        frozen = _FREEZES.get(actions[-1].type, frozen)
    if ended is not None:
        actions.append(Action(until_ms + _below(rng, 1000), len(actions), ended, "user"))
    return actions


def is_frozen(actions: list[Action]) -> bool:
    """Whether the lock is frozen after these entries (the last freeze or unfreeze says)."""
    return next((_FREEZES[a.type] for a in reversed(actions) if a.type in _FREEZES), False)


def action(rng: random.Random, created_ms: int, seq: int, shared: bool, frozen: bool) -> Action:
    """One action while the lock runs, by the extension, the keyholder, the wearer or an admin."""
    r = rng.random()
    keyholder = "keyholder" if shared else "extension"
    if r < 0.35:
        return Action(created_ms, seq, "custom", "extension", 1 + _below(rng, 6))
    if r < 0.45:
        return Action(created_ms, seq, "dice_rolled", "extension", 1 + _below(rng, 12))
    if r < 0.75:
        sign = -1 if rng.random() < 0.4 else 1
        role = keyholder if r < 0.58 else "extension"
        return Action(
            created_ms, seq, "time_changed", role, sign * _DURATIONS[_below(rng, len(_DURATIONS))]
        )
    if r < 0.87:
        kind = "lock_unfrozen" if frozen else "lock_frozen"
        return Action(created_ms, seq, kind, "admin" if rng.random() < 0.05 else keyholder)
    return Action(created_ms, seq, "verification_picture_submitted", "user", _below(rng, 10_000))


def _below(rng: random.Random, n: int) -> int:
    """A number in [0, n): `random()` scaled, a third of `randrange`'s cost, which matters here."""
    return int(rng.random() * n)


def prefix(action: Action, slug: str) -> str:
    return slug if action.type in EXTENSION_TYPES else DEFAULT_PREFIX


def visible(
    action: Action, role: str, hides_time_logs: bool, only_extension: bool, slug: str
) -> bool:
    """Whether a reader of `role` sees the entry.

    The keyholder sees every entry. The wearer and a visitor do not see `time_changed` entries of
    a lock that hides its time logs (`lock.hideTimeLogs`). `only_extension`
    (`showOnlyExtensionActions`) keeps the entries made by an extension or carrying the
    extension's prefix.
    """
    if hides_time_logs and role != "keyholder" and action.type == "time_changed":
        return False
    return not only_extension or action.role == "extension" or prefix(action, slug) == slug


_TEXT: dict[str, tuple[str, str, str | None, str | None]] = {
    # type: (title, description, color, icon)
    "locked": ("%USER% started a lock", "New lock started", None, "fa-lock"),
    "time_changed": ("%USER% changed the time", "", None, "fa-clock"),
    "custom": ("%USER% rolled", "Action of the day", "#3b82f6", "fa-dice"),
    "unlocked": ("%USER% unlocked the lock", "The lock is over", "#22c55e", "fa-unlock"),
    "deserted": ("%USER% deserted the lock", "", None, "fa-door-open"),
    "lock_frozen": ("%USER% froze the lock", "", "#60a5fa", "fa-snowflake"),
    "lock_unfrozen": ("%USER% unfroze the lock", "", "#60a5fa", "fa-sun"),
    "verification_picture_submitted": (
        "%USER% submitted a verification picture",
        "",
        None,
        "fa-camera",
    ),
    "dice_rolled": ("%USER% rolled the dice", "", "#8b5cf6", "fa-dice-five"),
}


def public(
    action: Action,
    *,
    log_id: str,
    lock_id: str,
    slug: str,
    wearer: dict[str, Any],
    keyholder: dict[str, Any] | None,
) -> dict[str, Any]:
    """The entry as the API serves it (`ActionLogForPublic`), keys in the sample's order.

    Entries of the wearer and of the keyholder carry `user`: the same profile the session carries
    for that person, so the extractor can give them the same pseudonym.
    """
    title, description, color, icon = _TEXT[action.type]
    payload: dict[str, Any] = {}
    if action.type == "time_changed":
        title = "%USER% added time" if action.value > 0 else "%USER% removed time"
        payload = {"duration": action.value}
    elif action.type == "custom":
        title = f"%USER% rolled a {action.value}"
    elif action.type == "dice_rolled":
        payload = {"result": action.value}
    elif action.type == "verification_picture_submitted":
        payload = {"verificationCode": f"{action.value:04d}"}
    seconds, ms = divmod(action.created_ms, 1000)
    created = f"{datetime.fromtimestamp(seconds, UTC).isoformat()[:19]}.{ms:03d}Z"
    entry: dict[str, Any] = {
        "_id": log_id,
        "type": action.type,
        "lock": lock_id,
        "role": action.role,
        "extension": slug if action.role == "extension" else None,
        "createdAt": created,
        "title": title,
        "description": description,
        "color": color,
        "icon": icon,
        "payload": payload,
        "prefix": prefix(action, slug),
    }
    user = {"user": wearer, "keyholder": keyholder}.get(action.role)
    if user is not None:
        entry["user"] = user
    return entry
