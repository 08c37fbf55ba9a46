"""Schema changes a run makes, named for people, and the `schema_contract` that can refuse them.

dlt adds a table for a new list, a column for a new field and a variant column (`col__v_text`)
for a value of a new type, silently. After each load the runner asks dlt's load info what the
load added (`schema_changes`); with `schema_contract = "freeze"` dlt refuses such a change
instead, the runner aborts the pending package (nothing written, state as before) and the run
ends with `SchemaContractError` (`errors.py`).
"""

from __future__ import annotations

from typing import Any

import dlt
from dlt.common.schema.exceptions import DataValidationError

from .errors import chain

VARIANT = "__v_"  # dlt's infix of a column that holds values of another type


def schema_changes(pipeline: dlt.Pipeline, tables_before: set[str]) -> list[str]:
    """What the last `pipeline.run` added to the dataset's schema, one phrase per change:
    `new table t (n columns)`, `new column t.c (type)`, `new type for t.c: t.c__v_text`."""
    trace = pipeline.last_trace
    info: Any = trace.last_load_info if trace is not None else None
    changes: list[str] = []
    for package in getattr(info, "load_packages", None) or []:
        for table, schema in sorted((package.schema_update or {}).items()):
            if table.startswith("_dlt"):
                continue
            columns = {
                name: column
                for name, column in (schema.get("columns") or {}).items()
                if not name.startswith("_dlt")
            }
            if table not in tables_before:
                changes.append(
                    f"new table {table} ({len(columns)} column{'s' if len(columns) != 1 else ''})"
                )
                tables_before.add(table)
                continue
            for name, column in columns.items():
                kind = column.get("data_type", "unknown type")
                if VARIANT in name:
                    original = name.split(VARIANT, 1)[0]
                    changes.append(f"new type for {table}.{original}: {name} ({kind})")
                else:
                    changes.append(f"new column {table}.{name} ({kind})")
    return changes


def summary_line(changes: list[str], first_load: bool) -> str | None:
    """The summary's line about the schema; none when nothing changed."""
    if not changes:
        return None
    if first_load:
        created = sum(change.startswith("new table ") for change in changes)
        return f"schema: created {created} tables (first load)"
    return "schema changes: " + "; ".join(changes)


def refused(exc: BaseException) -> bool:
    """The failure is `schema_contract` refusing a change (dlt's DataValidationError)."""
    return any(isinstance(e, DataValidationError) for e in chain(exc))


def abort_refused_load(pipeline: dlt.Pipeline) -> None:
    """Drop the package the contract refused and rewind the local state and schema to where
    they were before it: nothing of the refused chunk is written, no cursor moves. Earlier
    chunks of the run stay committed."""
    pipeline.abort_packages()
