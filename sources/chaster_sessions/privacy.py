"""What of a session is stored: credentials never (unless asked), people pseudonymised on request.

`full` keeps everything but the credential-like fields. `pseudonymous` also replaces user ids and
usernames by keyed hashes (stable across runs for one key) and drops free-text and identifying
profile fields. The README lists exactly what each mode keeps.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

# Secrets that unlock or take over a lock: not data anyone analyses.
CREDENTIAL_FIELDS = (
    ("lock", "offerToken"),
    ("lock", "combination"),
    ("lock", "sharedLock", "password"),
)
# Profile fields that identify or describe a person in their own words.
IDENTIFYING_USER_FIELDS = (
    "description",
    "location",
    "fullLocation",
    "avatarUrl",
    "discordId",
    "discordUsername",
)
USER_PATHS = (("lock", "user"), ("lock", "keyholder"), ("lock", "sharedLock", "user"))


def _parent(session: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    node: Any = session
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def pseudonym(value: str, key: bytes) -> str:
    """A keyed hash: the same person gets the same pseudonym in every run with the same key."""
    return "p_" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:20]


def scrub(
    session: dict[str, Any], *, privacy: str, store_credentials: bool, key: bytes | None
) -> dict[str, Any]:
    """Remove what must not be stored, in place, and return the session."""
    if not store_credentials:
        for path in CREDENTIAL_FIELDS:
            parent = _parent(session, path)
            if parent is not None:
                parent.pop(path[-1], None)
    if privacy == "pseudonymous":
        for path in USER_PATHS:
            parent = _parent(session, path)
            user = parent.get(path[-1]) if parent else None
            if isinstance(user, dict):
                scrub_user(user, privacy=privacy, key=key)
    return session


def scrub_user(user: dict[str, Any], *, privacy: str, key: bytes | None) -> dict[str, Any]:
    """A person's profile as `privacy` keeps it, in place: in `pseudonymous` mode without the
    fields that identify them, and with the same pseudonyms their sessions' rows carry."""
    if privacy == "pseudonymous":
        assert key is not None
        for field in IDENTIFYING_USER_FIELDS:
            user.pop(field, None)
        for field in ("_id", "username"):
            if isinstance(user.get(field), str):
                user[field] = pseudonym(user[field], key)
    return user
