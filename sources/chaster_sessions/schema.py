"""The table hints dlt cannot guess: keys, timestamps, and free-form objects kept as JSON.

Free-form objects (`config`, `data`, `userData`, every extension's `config`) differ per extension
and per session; flattened, one extension's shape would add columns and tables for everyone.
Nested hints for lists under a dict do not work with merge in dlt 1.31, so the tables are
written into the source's schema here, from inside the source function (a schema built at import
would make `import chaster_sessions` read dlt's config files, and fail on a typo in them).
Every column also gets its line of the data dictionary (`dictionary.py`) as a `description`
hint. dlt warns, three paragraphs a load, about every hinted column that gets no data (and the
credential columns never do unless `store_credentials` is on), so a described column without a
type is hinted only once a page brings its field (`ColumnDescriptions`).
"""

from __future__ import annotations

from typing import Any

import dlt
from dlt.common.schema.typing import TColumnSchema
from dlt.common.schema.utils import new_table

from .dictionary import DLT_COLUMNS, raw_columns, session_fields

SESSIONS = "sessions"
ACTION_LOGS = "action_logs"  # one row per entry of a session's action log (`logs.py`)
LOG_CURSORS = "action_log_cursors"  # one row per session whose log was read: where it stands
# typed up front: the first page of a log may hold none of them, and `payload` is free-form
LOG_COLUMNS = {
    "log_id": {"data_type": "text", "nullable": False},
    "session_id": {"data_type": "text", "nullable": False},
    "type": {"data_type": "text"},
    "created_at": {"data_type": "timestamp"},
    "payload": {"data_type": "json"},
}
LOG_CURSOR_COLUMNS = {
    "session_id": {"data_type": "text", "nullable": False},
    "slug": {"data_type": "text"},
    "newest_log_id": {"data_type": "text"},
    "complete": {"data_type": "bool"},
    "gone": {"data_type": "bool"},
    "session_status": {"data_type": "text"},
    "read_at": {"data_type": "timestamp"},
}

_TIMESTAMPS = (
    "created_at",
    "updated_at",
    "next_action_date",
    "lock__start_date",
    "lock__end_date",
    "lock__min_date",
    "lock__max_date",
    "lock__max_limit_date",
    "lock__created_at",
    "lock__updated_at",
    "lock__unlocked_at",
    "lock__archived_at",
    "lock__frozen_at",
    "lock__keyholder_archived_at",
    "lock__shared_lock__min_date",
    "lock__shared_lock__max_date",
    "lock__shared_lock__max_limit_date",
)
# Objects the API sends as null when there is none (a self-lock's keyholder). Present, they
# flatten into `lock__keyholder__*`; a null one would be a column dlt can never type and warns
# about in every load. Absent, every column of it is the same NULL.
NULL_OBJECTS = (
    ("lock", "keyholder"),
    ("lock", "sharedLock"),
    ("lock", "lastVerificationPicture"),
    ("lock", "sharedLock", "unsplashPhoto"),
)


def _columns(*columns: TColumnSchema) -> list[TColumnSchema]:
    return list(columns)


def _timestamp(name: str) -> TColumnSchema:
    return {"name": name, "data_type": "timestamp"}


def _with_descriptions(table: str, columns: list[TColumnSchema]) -> list[TColumnSchema]:
    """`columns` with the dictionary's description added, plus a description-only hint for
    every other column the dictionary lists for `table`; for `sessions` only dlt's own columns,
    which every row has (the others come with their data, `ColumnDescriptions`)."""
    by_name = {column["name"]: column for column in columns}
    for name, description in raw_columns()[table].items():
        if table != SESSIONS or name in by_name or name in DLT_COLUMNS:
            by_name.setdefault(name, {"name": name})["description"] = description
    return list(by_name.values())


def drop_null_objects(session: dict[str, Any]) -> dict[str, Any]:
    """Remove the `NULL_OBJECTS` that are null, in place, and return the session."""
    for path in NULL_OBJECTS:
        parent: Any = session
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and path[-1] in parent and parent[path[-1]] is None:
            del parent[path[-1]]
    return session


class ColumnDescriptions:
    """The description hints of the `sessions` columns without a declared type, each given
    with the first page that has its field: a field the API leaves out, or the source drops
    (credentials, fields `pseudonymous` removes), is never a column without data."""

    def __init__(self) -> None:
        declared = {column["name"] for column in _root_columns() if "data_type" in column}
        # parent object's path -> field -> hint; a page is searched once per parent object
        self._pending: dict[tuple[str, ...], dict[str, TColumnSchema]] = {}
        for path, (name, description) in session_fields().items():
            if name not in declared:
                *parent, field = path.split(".")
                hint: TColumnSchema = {"name": name, "description": description}
                self._pending.setdefault(tuple(parent), {})[field] = hint

    def new_in(self, page: list[dict[str, Any]]) -> list[TColumnSchema]:
        """The hints of the fields first seen in `page` (each is given once)."""
        found: list[TColumnSchema] = []
        for parent_path, fields in list(self._pending.items()):
            for session in page:
                parent: Any = session
                for key in parent_path:
                    parent = parent.get(key) if isinstance(parent, dict) else None
                if isinstance(parent, dict):
                    found.extend(fields.pop(field) for field in list(fields) if field in parent)
                if not fields:
                    del self._pending[parent_path]
                    break
        return found

    def hinted(self, page: list[dict[str, Any]]) -> Any:
        """`page`, carrying the hints of the fields it is the first to bring, if any."""
        found = self.new_in(page)
        return dlt.mark.with_hints(page, dlt.mark.make_hints(columns=found)) if found else page


def forget_empty_descriptions(schema: dlt.Schema) -> None:
    """Drop the `sessions` columns of `schema` that are a description without a type. Versions
    up to 0.2.0 declared every described column up front, and a pipeline that stored those
    would warn about the ones without data (the credentials) in every load; each comes back
    with its data."""
    table = schema.tables.get(SESSIONS)
    if table is None:
        return
    columns = table["columns"]
    fields = {name for name, _ in session_fields().values()}
    for name in [n for n, column in columns.items() if n in fields and "data_type" not in column]:
        del columns[name]


def _root_columns() -> list[TColumnSchema]:
    """The `sessions` columns whose type is declared rather than inferred."""
    return _columns(
        {"name": "session_id", "data_type": "text", "nullable": False, "primary_key": True},
        {"name": "pagination_id", "data_type": "text"},
        {"name": "slug", "data_type": "text"},
        {"name": "lock__status", "data_type": "text"},
        {"name": "lock__total_duration", "data_type": "bigint"},
        {"name": "lock__shared_lock__max_limit_duration", "data_type": "bigint"},
        {"name": "lock__shared_lock__calculated_max_limit_duration", "data_type": "bigint"},
        {"name": "removed_at", "data_type": "timestamp"},
        {"name": "config", "data_type": "json"},
        {"name": "data", "data_type": "json"},
        {"name": "user_data", "data_type": "json"},
        *(_timestamp(name) for name in _TIMESTAMPS),
    )


def add_session_tables(schema: dlt.Schema) -> None:
    """Declare `sessions` and its child tables (free-form fields as JSON, every column
    described), in `schema`."""
    root = _root_columns()
    schema.update_table(
        new_table(SESSIONS, write_disposition="merge", columns=_with_descriptions(SESSIONS, root))
    )
    for child in raw_columns():
        if child == SESSIONS:
            continue
        columns: list[TColumnSchema] = []
        if child in ("sessions__lock__extensions", "sessions__lock__shared_lock__extensions"):
            columns = _columns(
                {"name": "config", "data_type": "json"}, {"name": "user_data", "data_type": "json"}
            )
        if child == "sessions__lock__extensions":
            columns.append(_timestamp("next_action_date"))
        schema.update_table(
            new_table(child, parent_table_name=SESSIONS, columns=_with_descriptions(child, columns))
        )
