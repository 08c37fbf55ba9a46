"""The data dictionary: one line for every column of the raw tables and of the `analytics` views.

Raw columns are listed by the API's JSON path they come from; their column names are derived
from it with dlt's own naming, so the two cannot drift apart. `schema.add_session_tables` gives
these lines to dlt as column `description` hints (`dlt pipeline <name> schema` shows them), and
`python -m chaster_sessions.dictionary` writes them as `docs/data-dictionary.md`. A test loads
the stand-in's data and fails on any column this module does not describe.
"""

from __future__ import annotations

import sys
from pathlib import Path

from dlt.common.normalizers.naming.snake_case import NamingConvention

from .analytics import SCHEMA as VIEWS_SCHEMA
from .runs import COLUMNS, RUNS_TABLE

_NAMING = NamingConvention()

# dlt's bookkeeping columns, the same in every table that has them
DLT_COLUMNS = {
    "_dlt_id": "dlt's unique id of the row (text); child rows point to it",
    "_dlt_load_id": "dlt's id of the load that last wrote the row (Unix time of the load, text)",
    "_dlt_parent_id": "`_dlt_id` of the row this list item belongs to",
    "_dlt_root_id": "`_dlt_id` of the `sessions` row this list item belongs to",
    "_dlt_list_idx": "position of the item in its JSON list, from 0",
}

# The fields of an extension as the API describes one: the session itself (your extension on
# the lock) and each entry of `lock.extensions[]`.
_EXTENSION = (
    ("slug", "extension's slug (its id in URLs)"),
    ("displayName", "extension's display name"),
    ("summary", "extension's one-line summary, as shown to users"),
    ("subtitle", "extension's subtitle, as shown to users"),
    ("icon", "extension's icon name (Font Awesome)"),
    ("_id", "id of the extension on this lock (24 hex characters)"),
    ("config", "the extension's configuration on this lock, as the keyholder set it (JSON)"),
    ("mode", "when actions come: cumulative, non_cumulative, turn or unlimited"),
    ("regularity", "time between two actions, in seconds"),
    ("userData", "the extension's free-form data for the wearer (JSON)"),
    ("nbActionsRemaining", "actions the wearer can still take now (-1: unlimited)"),
    ("nextActionDate", "when the next action becomes available (UTC)"),
    ("isPartner", "true for a partner (third-party) extension"),
    ("textConfig", "the configuration as text shown to users"),
    ("createdAt", "when the extension was added to the lock (UTC)"),
    ("updatedAt", "when the extension's entry last changed (UTC)"),
)

# The fields of a user profile: `lock.user` (the wearer), `lock.keyholder`,
# `lock.sharedLock.user` (the shared lock's owner).
_USER = (
    ("_id", "user id (24 hex characters; a pseudonym with privacy = pseudonymous)"),
    ("username", "username (a pseudonym with privacy = pseudonymous)"),
    ("isPremium", "has a premium subscription"),
    ("isFindom", "marked as a findom account"),
    ("isAdmin", "is a Chaster administrator"),
    ("isModerator", "is a Chaster moderator"),
    ("isTeamMember", "is a Chaster team member"),
    ("isDisabled", "account disabled"),
    ("isSuspended", "account suspended"),
    ("isSuspendedOrDisabled", "account suspended or disabled"),
    ("joinedAt", "month the account was created, YYYY-MM (text)"),
    ("isNewMember", "joined recently, as Chaster flags it"),
    ("age", "age in years, if the user shows it"),
    ("avatarUrl", "URL of the avatar image (dropped with privacy = pseudonymous)"),
    ("description", "profile text (dropped with privacy = pseudonymous)"),
    ("discordId", "Discord user id (dropped with privacy = pseudonymous)"),
    ("discordUsername", "Discord username (dropped with privacy = pseudonymous)"),
    ("location", "city, as the user wrote it (dropped with privacy = pseudonymous)"),
    ("fullLocation", "city, region and country (dropped with privacy = pseudonymous)"),
    ("gender", "gender, as the user wrote it (may be empty)"),
    ("sexualOrientation", "sexual orientation, as the user chose it"),
    ("lastSeen", "seconds since the user was last seen online, when the API answered"),
    ("online", "online when the API answered"),
    ("role", "role the user chose: keyholder, wearer, switch or unspecified"),
    ("metadata.locktober2020Points", "Locktober 2020 event points"),
    ("metadata.locktober2021Points", "Locktober 2021 event points"),
    ("metadata.locktober2022Points", "Locktober 2022 event points"),
    ("metadata.locktober2023Points", "Locktober 2023 event points"),
    ("metadata.locktober2024Points", "Locktober 2024 event points"),
    ("metadata.chastityMonth2022Points", "Chastity Month 2022 event points"),
)
_PEOPLE = (
    ("lock.user", "wearer"),
    ("lock.keyholder", "keyholder (null for self-locks)"),
    ("lock.sharedLock.user", "shared lock's owner"),
)

_SESSION = (
    ("sessionId", "id of the extension session; the primary key"),
    ("paginationId", "the API's paging cursor of the session (24 digits/hex, text)"),
    ("data", "your extension's free-form session data (JSON)"),
    ("metadata._id", "id of the session's metadata record"),
    ("lock._id", "id of the lock (24 hex characters)"),
    ("lock.status", "lock status: locked (running), unlocked or deserted"),
    ("lock.title", "lock title: the shared lock's name, or `Self-lock`"),
    ("lock.startDate", "when the lock started (UTC)"),
    ("lock.endDate", "when the lock's timer ends as set now (UTC); moves with added time"),
    ("lock.minDate", "earliest end the keyholder allowed (UTC)"),
    ("lock.maxDate", "latest end the keyholder allowed (UTC)"),
    ("lock.maxLimitDate", "hard limit after which the wearer may unlock (UTC)"),
    ("lock.createdAt", "when the lock was created (UTC)"),
    ("lock.updatedAt", "when the lock last changed (UTC)"),
    ("lock.unlockedAt", "when the lock was unlocked (UTC); null unless unlocked"),
    ("lock.archivedAt", "when the lock was archived, i.e. deserted (UTC)"),
    ("lock.frozenAt", "when the lock was frozen (UTC); null unless frozen"),
    ("lock.keyholderArchivedAt", "when the keyholder archived the lock (UTC)"),
    ("lock.totalDuration", "time locked so far, in milliseconds"),
    ("lock.displayRemainingTime", "the wearer can see the remaining time"),
    ("lock.limitLockTime", "the lock has a maximum duration"),
    ("lock.allowSessionOffer", "keyholders may offer to take over the lock"),
    ("lock.isTestLock", "a test lock (left out of every analytics aggregate)"),
    ("lock.hideTimeLogs", "the lock's history is hidden"),
    ("lock.trusted", "the keyholder trusts the wearer (e.g. for hygiene openings)"),
    ("lock.isAllowedToViewTime", "the wearer may view the timer"),
    ("lock.canBeUnlocked", "the lock can be unlocked now"),
    ("lock.canBeUnlockedByMaxLimitDate", "the hard limit date has passed"),
    ("lock.isFrozen", "the timer is frozen"),
    ("lock.extensionsAllowUnlocking", "every extension on the lock allows unlocking now"),
    ("lock.combination", "the lock's combination (stored only with store_credentials = true)"),
    ("lock.offerToken", "token of a session offer (stored only with store_credentials = true)"),
    ("lock.sharedLock._id", "id of the shared lock the lock came from (null for self-locks)"),
    ("lock.sharedLock.name", "shared lock's name"),
    ("lock.sharedLock.description", "shared lock's description"),
    ("lock.sharedLock.minDuration", "shared lock's minimum duration, in seconds"),
    ("lock.sharedLock.maxDuration", "shared lock's maximum duration, in seconds"),
    ("lock.sharedLock.maxLimitDuration", "shared lock's hard limit, in seconds"),
    ("lock.sharedLock.calculatedMaxLimitDuration", "hard limit as the API computed it, in s"),
    ("lock.sharedLock.minDate", "shared lock's earliest end date (UTC)"),
    ("lock.sharedLock.maxDate", "shared lock's latest end date (UTC)"),
    ("lock.sharedLock.maxLimitDate", "shared lock's hard limit date (UTC)"),
    ("lock.sharedLock.displayRemainingTime", "wearers of the shared lock see the remaining time"),
    ("lock.sharedLock.limitLockTime", "the shared lock has a maximum duration"),
    ("lock.sharedLock.maxLockedUsers", "how many wearers may take the shared lock at once"),
    ("lock.sharedLock.isPublic", "the shared lock is listed publicly"),
    ("lock.sharedLock.requireContact", "wearers must contact the keyholder first"),
    ("lock.sharedLock.hideTimeLogs", "the shared lock's history is hidden"),
    ("lock.sharedLock.lastSavedAt", "when the shared lock was last saved (UTC)"),
    ("lock.sharedLock.requirePassword", "the shared lock needs a password"),
    (
        "lock.sharedLock.password",
        "the shared lock's password (stored only with store_credentials = true)",
    ),
    ("lock.sharedLock.durationMode", "how the duration is set: duration or date"),
    ("lock.sharedLock.isFindom", "the shared lock is a findom lock"),
)

# child tables: table -> (JSON path of the list, its fields)
_CHILDREN: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "sessions__lock__extensions": (
        "lock.extensions[]",
        tuple(
            (f, f"{text} (one extension on the lock: yours or another)") for f, text in _EXTENSION
        ),
    ),
    "sessions__lock__shared_lock__extensions": (
        "lock.sharedLock.extensions[]",
        (
            ("slug", "slug of an extension configured on the shared lock"),
            ("name", "its display name"),
            ("mode", "its mode: cumulative, non_cumulative, turn or unlimited"),
            ("regularity", "its time between two actions, in seconds"),
            ("config", "its configuration on the shared lock (JSON)"),
            ("userData", "its free-form data, when the API sends any (JSON)"),
            ("textConfig", "its configuration as text shown to users"),
        ),
    ),
    "sessions__lock__shared_lock__tags": (
        "lock.sharedLock.tags[]",
        (("", "a tag of the shared lock (text)"),),
    ),
    "sessions__lock__reasons_preventing_unlocking": (
        "lock.reasonsPreventingUnlocking[]",
        (
            ("reason", "why the lock cannot be unlocked now, as shown to the wearer"),
            ("icon", "icon shown beside the reason"),
        ),
    ),
    "sessions__metadata__home_actions": (
        "metadata.homeActions[]",
        (
            ("slug", "id of an action your extension shows on the lock's home page"),
            ("title", "the action's title"),
            ("description", "the action's description"),
            ("icon", "the action's icon"),
            ("badge", "the badge shown on the action (text, e.g. a count)"),
        ),
    ),
    "sessions__metadata__reasons_preventing_unlocking": (
        "metadata.reasonsPreventingUnlocking[]",
        (("", "why your extension blocks unlocking now, as shown to the wearer (text)"),),
    ),
}

# what the pipeline adds itself, not from the API
_PIPELINE_COLUMNS = {
    "removed_at": "when a run noticed the API no longer has the session (UTC); null otherwise",
}


# the action logs (`logs.py`, setting `action_logs`): JSON path of an entry's field, or None for
# what the pipeline adds -> (column, description)
_PSEUDONYM = "a pseudonym with privacy = pseudonymous, the same one the person has in `sessions`"
_LOG_ENTRY = (
    ("_id", "log_id", "id of the entry (24 hex characters, in creation order); the primary key"),
    (None, "session_id", "id of the session whose log holds the entry (`sessions.session_id`)"),
    (
        "type",
        "type",
        "what happened: locked, time_changed, lock_frozen, unlocked, ... or a type "
        "of an extension's own",
    ),
    ("createdAt", "created_at", "when it happened (UTC)"),
    (
        "payload",
        "payload",
        "the entry's details (JSON); for time_changed `duration`, the time "
        "added (positive) or removed (negative), in seconds",
    ),
    ("lock", "lock", "id of the lock (`sessions.lock___id`)"),
    ("role", "role", "who acted: user (the wearer), keyholder, extension or admin"),
    ("extension", "extension", "slug of the extension that made the entry (null for a person's)"),
    ("title", "title", "the entry's title as shown, `%USER%` standing for the person"),
    ("description", "description", "the entry's text as shown"),
    ("icon", "icon", "the entry's icon name (Font Awesome)"),
    ("color", "color", "the entry's colour as shown (CSS colour)"),
    ("prefix", "prefix", "whose type `type` is: `default` (Chaster's) or an extension's slug"),
    ("user._id", "user___id", f"user id of the person who acted, if any ({_PSEUDONYM})"),
    ("user.username", "user__username", f"username of the person who acted ({_PSEUDONYM})"),
)
_LOG_CURSOR = {
    "session_id": "id of the session whose log was read (`sessions.session_id`); the primary key",
    "slug": "the session's extension slug",
    "newest_log_id": "`log_id` of the newest entry stored; the next read asks only for newer ones",
    "complete": "the session had ended when its log was read: it is never read again",
    "gone": "the API no longer had the session when its log was read",
    "session_status": "the session's lock status when its log was read",
    "read_at": "when a run last read the session's log (UTC)",
}


# the run history, written by the runner with SQL (runs.py), not by dlt
RUN_COLUMNS = {name: text for name, _, text in COLUMNS}


def column_name(path: str) -> str:
    """The column dlt makes of a JSON path: `lock.sharedLock._id` -> `lock__shared_lock___id`."""
    return _NAMING.make_path(*(_NAMING.normalize_identifier(part) for part in path.split(".")))


def _described(path: str, text: str) -> str:
    return f"{text}; from `{path}`"


def session_fields() -> dict[str, tuple[str, str]]:
    """JSON path -> (column, description) of every `sessions` column that comes from the API."""
    fields = dict(_EXTENSION + _SESSION)
    for prefix, who in _PEOPLE:
        fields.update({f"{prefix}.{field}": f"{who}: {text}" for field, text in _USER})
    return {path: (column_name(path), _described(path, text)) for path, text in fields.items()}


def raw_columns() -> dict[str, dict[str, str]]:
    """table -> column -> description, for every table the source writes (dlt's columns too)."""
    sessions = dict(session_fields().values())
    sessions.update(_PIPELINE_COLUMNS)
    sessions.update({c: DLT_COLUMNS[c] for c in ("_dlt_id", "_dlt_load_id")})
    tables = {"sessions": sessions}
    for table, (list_path, fields) in _CHILDREN.items():
        columns = {}
        for field, text in fields:
            # a list of plain values becomes one column, `value`
            name = column_name(field) if field else "value"
            path = f"{list_path}.{field}" if field else list_path
            columns[name] = _described(path, text)
        columns.update({c: DLT_COLUMNS[c] for c in ("_dlt_id", "_dlt_parent_id", "_dlt_root_id")})
        columns["_dlt_list_idx"] = DLT_COLUMNS["_dlt_list_idx"]
        tables[table] = columns
    return tables


def log_columns() -> dict[str, dict[str, str]]:
    """table -> column -> description, for the two tables of the action logs (written only with
    `action_logs` on, so apart from `raw_columns`, whose tables every run declares)."""
    entries = {name: _described(path, text) if path else text for path, name, text in _LOG_ENTRY}
    dlt_columns = {c: DLT_COLUMNS[c] for c in ("_dlt_load_id", "_dlt_id")}
    return {"action_logs": entries | dlt_columns, "action_log_cursors": _LOG_CURSOR | dlt_columns}


_COUNTED = "real locks the API still has (no test locks, none removed)"
VIEW_COLUMNS: dict[str, dict[str, str]] = {
    "sessions": {
        "session_id": "id of the session (`sessions.session_id`)",
        "extension": "your extension's slug",
        "status": "locked (running), unlocked or deserted",
        "is_running": "status is locked",
        "mode": "your extension's mode on the lock",
        "regularity_hours": "time between two actions, in hours",
        "lock_type": "`keyholder` when the lock has a keyholder, else `self-lock`",
        "is_shared_lock": "the lock came from a shared lock",
        "shared_lock_name": "the shared lock's name",
        "wearer_id": "wearer's user id",
        "wearer": "wearer's username",
        "keyholder_id": "keyholder's user id (null for self-locks)",
        "keyholder": "keyholder's username (null for self-locks)",
        "started_at": "when the lock started (UTC)",
        "ended_at": "when the lock was unlocked or deserted (UTC); null while running",
        "duration_hours": "start to end, or to now while running, in hours",
        "duration_days": "start to end, or to now while running, in days",
        "is_test_lock": "a test lock",
        "is_removed": "the API no longer has the session",
        "removed_at": "when a run noticed the removal (UTC)",
        "created_at": "when your extension's entry was created (UTC)",
        "updated_at": "when your extension's entry last changed (UTC)",
        "config": "your extension's configuration on the lock (JSON)",
        "data": "your extension's session data (JSON)",
        "_dlt_id": "the raw row's `_dlt_id`, to join child tables on `_dlt_root_id`",
    },
    "overview": {
        "extension": "your extension's slug",
        "sessions": f"sessions: {_COUNTED}",
        "running": "of those, still locked",
        "unlocked": "of those, unlocked",
        "deserted": "of those, deserted",
        "wearers": "distinct wearers of those sessions",
        "test_locks": "test locks the API still has (counted apart)",
        "removed": "sessions the API no longer has",
        "first_started_at": "start of the first session, any kind (UTC)",
        "last_started_at": "start of the latest session, any kind (UTC)",
    },
    "daily": {
        "extension": "your extension's slug",
        "day": "UTC day, from the first session's to today",
        "started": f"sessions started that day ({_COUNTED})",
        "unlocked": "sessions unlocked that day",
        "deserted": "sessions deserted that day",
        "running_at_end_of_day": "sessions running at the end of the day",
    },
    "outcomes": {
        "extension": "your extension's slug",
        "dimension": "what `value` is: `mode` or `lock_type`",
        "value": "the mode or lock type (`(none)` when empty)",
        "sessions": f"sessions with it ({_COUNTED})",
        "running": "of those, still locked",
        "unlocked": "of those, unlocked",
        "deserted": "of those, deserted",
        "deserted_share": "deserted / ended (unlocked + deserted), 0..1, 4 places",
        "median_duration_hours": "median duration of the ended ones, in hours",
        "p90_duration_hours": "90th percentile duration of the ended ones, in hours",
    },
    "co_extensions": {
        "extension": "your extension's slug",
        "other_extension": "slug of another extension on the same locks",
        "other_name": "its display name",
        "sessions": f"your sessions whose lock has it ({_COUNTED})",
        "share_of_sessions": "those sessions / all your sessions, 0..1, 4 places",
    },
    "config_values": {
        "extension": "your extension's slug",
        "setting": "a top-level key of your extension's `config`",
        "value": "its value as text (objects and lists as compact JSON)",
        "sessions": f"sessions with that value ({_COUNTED})",
        "share_of_sessions": "those sessions / all your sessions, 0..1, 4 places",
    },
    "wearers": {
        "extension": "your extension's slug",
        "wearer_id": "wearer's user id",
        "wearer": "wearer's username (the smallest, if it changed)",
        "sessions": f"the wearer's sessions ({_COUNTED})",
        "first_started_at": "start of the wearer's first session (UTC)",
        "last_started_at": "start of the wearer's latest session (UTC)",
        "is_returning": "the wearer has more than one session",
    },
    "actions": {
        "log_id": "id of the entry (`action_logs.log_id`)",
        "session_id": "id of the session (`sessions.session_id`)",
        "extension": "your extension's slug (the session's)",
        "day": "UTC day of the entry",
        "week": "UTC week of the entry, by its Monday",
        "created_at": "when it happened (UTC)",
        "type": "what happened: locked, time_changed, ... or a type of an extension's own",
        "role": "who acted: user (the wearer), keyholder, extension or admin",
        "prefix": "whose type it is: `default` (Chaster's) or an extension's slug",
        "is_extension_action": "your extension acted, or it is a type of your extension's own "
        "(role is extension, or prefix is your slug)",
        "seconds_changed": "for time_changed, the time added (positive) or removed (negative), "
        "in seconds; else null",
        "user_id": "user id of the person who acted, if the entry names one",
        "username": "their username",
        "wearer_id": "the session's wearer's user id (`analytics.sessions.wearer_id`)",
        "title": "the entry's title as shown, `%USER%` standing for the person",
        "payload": "the entry's details (JSON)",
        "is_test_lock": "the session is a test lock",
        "is_removed": "the API no longer has the session",
    },
    "action_types": {
        "extension": "your extension's slug",
        "type": "the entries' type",
        "entries": f"entries of that type ({_COUNTED})",
        "sessions": "sessions with at least one",
        "wearers": "distinct wearers of those sessions",
        "extension_entries": "of the entries, those of your extension (`is_extension_action`)",
        "first_at": "when the first happened (UTC)",
        "last_at": "when the latest happened (UTC)",
    },
    "weekly_actions": {
        "extension": "your extension's slug",
        "week": "UTC week, by its Monday (only weeks with entries)",
        "type": "the entries' type",
        "entries": f"entries of that type that week ({_COUNTED})",
        "sessions": "sessions with at least one",
        "seconds_added": "time added by those entries, in seconds (0 but for time_changed)",
        "seconds_removed": "time removed by those entries, in seconds, as a positive number",
    },
    "time_changes": {
        "extension": "your extension's slug",
        "session_id": f"a session with at least one time change ({_COUNTED})",
        "wearer_id": "the session's wearer's user id",
        "changes": "its time_changed entries",
        "extension_changes": "of those, your extension's (`is_extension_action`)",
        "seconds_added": "time added, in seconds",
        "seconds_removed": "time removed, in seconds, as a positive number",
        "seconds_net": "added minus removed, in seconds",
        "extension_seconds_net": "added minus removed by your extension's changes, in seconds",
        "first_changed_at": "when the first change happened (UTC)",
        "last_changed_at": "when the latest change happened (UTC)",
    },
}


def markdown() -> str:
    """docs/data-dictionary.md: every table and view, every column, one line each."""
    lines = [
        "# Data dictionary",
        "",
        "Generated by `python -m chaster_sessions.dictionary` from `sources/chaster_sessions/"
        "dictionary.py`; do not edit by hand. The same text is on every raw column as a dlt "
        "`description` hint (`dlt pipeline --pipelines-dir FOLDER chaster schema`, FOLDER the "
        "summary's `local folder`). Timestamps are `TIMESTAMP WITH TIME "
        "ZONE`. dlt's own tables (`_dlt_loads`, `_dlt_pipeline_state`, `_dlt_version`) are "
        "described in dlt's documentation.",
        "",
    ]
    logs = log_columns()
    for table, columns in (raw_columns() | logs).items():
        only = " (with `action_logs = true`)" if table in logs else ""
        lines += [f"## `chaster.{table}`{only}", "", "| column | description |", "|---|---|"]
        lines += [f"| `{name}` | {text} |" for name, text in columns.items()]
        lines.append("")
    lines += [
        f"## `chaster.{RUNS_TABLE}` (one row per run)",
        "",
        "| column | description |",
        "|---|---|",
    ]
    lines += [f"| `{name}` | {text} |" for name, text in RUN_COLUMNS.items()]
    lines.append("")
    for view, columns in VIEW_COLUMNS.items():
        lines += [f"## `{VIEWS_SCHEMA}.{view}` (view)", "", "| column | description |", "|---|---|"]
        lines += [f"| `{name}` | {text} |" for name, text in columns.items()]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Print the markdown, or write it to the path given."""
    if argv:
        Path(argv[0]).write_text(markdown())
    else:
        sys.stdout.write(markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
