"""The table hints dlt cannot guess: keys, timestamps, and free-form objects kept as JSON.

Free-form objects (`config`, `data`, `userData`, every extension's `config`) differ per extension
and per session; flattened, one extension's shape would add columns and tables for everyone.
Nested hints for lists under a dict do not work with merge in dlt 1.31, so the tables are
written into the source's schema here, from inside the source function (a schema built at import
would make `import chaster_sessions` read dlt's config files, and fail on a typo in them).
Every column also gets its line of the data dictionary (`dictionary.py`) as a `description`
hint; a column dlt has not seen yet stays a hint until data arrives.
"""

from __future__ import annotations

import dlt
from dlt.common.schema.typing import TColumnSchema
from dlt.common.schema.utils import new_table

from .dictionary import raw_columns

SESSIONS = "sessions"

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
)


def _columns(*columns: TColumnSchema) -> list[TColumnSchema]:
    return list(columns)


def _timestamp(name: str) -> TColumnSchema:
    return {"name": name, "data_type": "timestamp"}


def _with_descriptions(table: str, columns: list[TColumnSchema]) -> list[TColumnSchema]:
    """`columns` with the dictionary's description added, plus a description-only hint for
    every other column the dictionary lists for `table`."""
    by_name = {column["name"]: column for column in columns}
    for name, description in raw_columns()[table].items():
        by_name.setdefault(name, {"name": name})["description"] = description
    return list(by_name.values())


def add_session_tables(schema: dlt.Schema) -> None:
    """Declare `sessions` and its child tables (free-form fields as JSON, every column
    described), in `schema`."""
    root = _columns(
        {"name": "session_id", "data_type": "text", "nullable": False, "primary_key": True},
        {"name": "pagination_id", "data_type": "text"},
        {"name": "slug", "data_type": "text"},
        {"name": "lock__status", "data_type": "text"},
        {"name": "lock__total_duration", "data_type": "bigint"},
        {"name": "removed_at", "data_type": "timestamp"},
        {"name": "config", "data_type": "json"},
        {"name": "data", "data_type": "json"},
        {"name": "user_data", "data_type": "json"},
        *(_timestamp(name) for name in _TIMESTAMPS),
    )
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
        schema.update_table(
            new_table(child, parent_table_name=SESSIONS, columns=_with_descriptions(child, columns))
        )
