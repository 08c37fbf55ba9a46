"""One readable `ChasterError` for any failure: dlt's wrapped configuration, destination and
schema-contract errors, a database driver's own, or a bug.

The command, the runs table and Dagster all print what `explain` returns, so a failure reads
the same wherever it surfaces. The destination-type helpers name what this install can load
into, for the line about a mistyped destination.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
from typing import Any

import dlt.destinations  # noqa: F401 - registers dlt's own destination types
import duckdb
from dlt.common.configuration.container import Container
from dlt.common.configuration.exceptions import (
    ConfigFieldMissingException,
    ConfigurationValueError,
    ConfigValueCannotBeCoercedException,
    LookupTrace,
    LookupTraces,
)
from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext
from dlt.common.destination.exceptions import DestinationException, UnknownDestinationModule
from dlt.common.destination.reference import DestinationReference
from dlt.common.schema.exceptions import DataValidationError

from .errors import (
    ChasterError,
    ConfigError,
    DestinationError,
    RemoteDestinationError,
    SchemaContractError,
    chain,
)
from .settings import coercion_error

_CREDENTIALS_IN_URL = re.compile(r"://[^/@\s]+@")


def find_cause(exc: BaseException) -> BaseException:
    """The user-facing error inside dlt's wrappers, or the innermost cause."""
    innermost = exc
    for current in chain(exc):
        if isinstance(
            current, ChasterError | ConfigFieldMissingException | ConfigurationValueError
        ):
            return current
        innermost = current
    return innermost


def _is_driver_error(exc: BaseException) -> bool:
    """A database driver's own error (psycopg2, snowflake, ...), which dlt may not wrap."""
    module = type(exc).__module__ or ""
    return module.split(".")[0] in {"psycopg2", "psycopg", "snowflake", "google", "pyodbc"}


def explain(exc: BaseException) -> ChasterError:
    """Turn any failure into one readable ChasterError."""
    cause = find_cause(exc)
    if isinstance(cause, ChasterError):
        return cause
    if isinstance(cause, ConfigValueCannotBeCoercedException):
        return coercion_error(cause.field_name, cause.field_value)
    if isinstance(cause, ConfigFieldMissingException):
        missing = missing_destination_setting(cause)
        if missing is not None:
            return missing
        if "api_token" in cause.fields:
            return ConfigError(
                "no API token: set SOURCES__CHASTER__API_TOKEN, or api_token under "
                "[sources.chaster] in .dlt/secrets.toml (see .dlt/secrets.toml.example); "
                "or try the built-in demo with --demo"
            )
        return ConfigError(f"missing setting(s): {', '.join(cause.fields)} under [sources.chaster]")
    if isinstance(cause, ConfigurationValueError):
        return ConfigError(f"invalid setting: {str(cause).splitlines()[0]}")
    refused = next((e for e in chain(exc) if isinstance(e, DataValidationError)), None)
    if refused is not None:
        return contract_refused(refused)
    if isinstance(cause, duckdb.Error):
        return DestinationError(f"DuckDB failed: {str(cause).splitlines()[0]}")
    unknown = next((e for e in chain(exc) if isinstance(e, UnknownDestinationModule)), None)
    if unknown is not None:
        return unknown_destination(unknown)
    destination_failure = next(
        (e for e in chain(exc) if isinstance(e, DestinationException) or _is_driver_error(e)),
        None,
    )
    if destination_failure is not None:
        first = str(find_cause(destination_failure)).strip().splitlines() or ["no message"]
        return RemoteDestinationError(
            f"the destination failed: {_CREDENTIALS_IN_URL.sub('://***@', first[0])}; check its "
            "credentials under [destination.<name>] in .dlt/secrets.toml and that it is reachable"
        )
    return ChasterError(
        f"unexpected {type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"
    )


def missing_destination_setting(missing: ConfigFieldMissingException) -> ConfigError | None:
    """The line for a destination's missing setting, named where it lives: a PostgreSQL URL
    without a password reports the password of `[destination.warehouse.credentials]`, not the
    source's section. None when the missing setting is not a destination's."""
    for field, traces in missing.traces.items():
        fields: list[tuple[str, list[LookupTrace]]] = []
        for trace in traces:
            if isinstance(trace, LookupTraces):  # a field that is itself a configuration
                for name, nested in trace.traces.items():
                    fields.append((name, [t for t in nested if isinstance(t, LookupTrace)]))
            elif isinstance(trace, LookupTrace):
                fields.append((field, [trace]))
        for name, lookups in fields:
            sections = max((list(t.sections) for t in lookups), key=len, default=[])
            if len(sections) < 2 or sections[0] != "destination":
                continue
            env = "__".join([*sections, name]).upper()
            return ConfigError(
                f"missing setting: {name} of destination {sections[1]!r}; set {env}, or "
                f"{name} under [{'.'.join(sections)}] in .dlt/secrets.toml"
            )
    return None


# Types dlt registers that a user does not pick by name: `dummy` loads nowhere (dlt's tests),
# `destination` needs a Python function (a custom sink).
_NOT_BY_NAME = ("dummy", "destination")


def usable_destination_types() -> list[str]:
    """dlt's registered destination types whose client this install can import (`postgres`
    only with its driver): dlt's own registry, `DestinationReference.DESTINATIONS`, knows every
    type whether or not its packages are installed."""
    usable = []
    for ref, factory in sorted(DestinationReference.DESTINATIONS.items()):
        name = ref.removeprefix("dlt.destinations.")
        if name in _NOT_BY_NAME:
            continue
        try:
            factory().client_class  # noqa: B018 - importing the client imports its driver
        except Exception:  # noqa: S112 - a missing driver (or a broken one): not usable here
            continue
        usable.append(name)
    return usable


def configured_destination_names() -> set[str]:
    """The names that have a `[destination.NAME]` section in a config or secrets file, or a
    `DESTINATION__NAME__...` env var: what a mistyped `--destination` most likely meant."""
    names = {
        key.split("__")[1].lower()
        for key in os.environ
        if key.startswith("DESTINATION__") and key.count("__") >= 2
    }
    for provider in Container()[PluggableRunContext].providers.providers:
        with contextlib.suppress(Exception):  # a provider that cannot list a section
            section: Any = provider.get_value("destination", Any, None)[0]
            if isinstance(section, dict):
                names.update(k for k, v in section.items() if isinstance(v, dict))
    return names


def unknown_destination(unknown: UnknownDestinationModule) -> ConfigError:
    """The line for a destination dlt cannot resolve: the name, whether its type is missing or
    unknown, the types this install can use, and where the type is set. dlt's own message is a
    paragraph that the one-line rule would cut mid-sentence."""
    name, configured_type = unknown.ref, unknown.destination_type
    usable = usable_destination_types()
    types = ", ".join(usable)
    if "." in name and not configured_type:  # a module path, not a name
        return ConfigError(
            f"destination {name!r} is not a destination module dlt can import; name one of the "
            f"types this install can use ({types}) or a configured destination"
        )
    if configured_type:
        problem = f"destination {name!r} has an unknown destination_type {configured_type!r}"
        guesses = difflib.get_close_matches(configured_type, usable, n=1)
    else:
        problem = f"destination {name!r} has no destination_type and is not a dlt destination type"
        known = sorted(configured_destination_names() - {name}) + usable
        guesses = difflib.get_close_matches(name, known, n=1)
    guess = f" (did you mean {guesses[0]!r}?)" if guesses else ""
    return ConfigError(
        f"{problem}{guess}; set destination_type under [destination.{name}] in .dlt/config.toml, "
        f"or DESTINATION__{name.upper()}__DESTINATION_TYPE, to one of the types this install can "
        f"use: {types}"
    )


def contract_refused(refused: DataValidationError) -> SchemaContractError:
    """The line for a change `schema_contract` refused: what changed, and how to accept it."""
    table, column = refused.table_name, refused.column_name
    if refused.schema_entity == "tables":
        what = f"a new table {table}"
    elif refused.schema_entity == "data_type" and column and "__v_" in column:
        what = f"a value of a new type for {table}.{column.split('__v_', 1)[0]} ({column})"
    elif refused.schema_entity == "data_type":
        what = f"a new type for {table}.{column}"
    else:
        what = f"a new column {table}.{column}"
    return SchemaContractError(
        f"the data has {what}, and schema_contract = {refused.contract_mode!r} refuses it; "
        "nothing was written and the cursors did not move; to accept it set "
        "SOURCES__CHASTER__SCHEMA_CONTRACT=evolve (or schema_contract under [sources.chaster])"
    )
