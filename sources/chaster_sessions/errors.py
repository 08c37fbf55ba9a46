"""Errors a user can act on, each with one readable message and the exit code of its class.

Everything that can stop a run on purpose raises one of these; the pipeline prints
`error: <message>` and exits with `exit_code`. No message ever carries the API token.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
from collections.abc import Iterator
from typing import Any

import dlt
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


class ChasterError(Exception):
    """Base class: a problem with a message meant for the user, not a bug."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(ChasterError):
    """A setting is missing or invalid (token, status, page size, base URL, config file)."""

    exit_code = 2


class AuthError(ChasterError):
    """The API refused the token (401/403)."""

    exit_code = 3


class UnknownExtensionError(ChasterError):
    """The API does not know the extension slug, or the token's application does not own it."""

    exit_code = 4


class APIUnavailableError(ChasterError):
    """The API could not be reached, or kept failing after the retries."""

    exit_code = 5


class PagingError(ChasterError):
    """The API answered something that cannot be paged safely (would loop or lose data)."""

    exit_code = 6


class PageSizeRejectedError(PagingError):
    """The API refused the page size (`limit`); `cap` is the largest it named, if it did."""

    def __init__(self, message: str, cap: int | None) -> None:
        super().__init__(f"the API refused the page size: {message}")
        self.cap = cap


class DestinationError(ChasterError):
    """The DuckDB file cannot be opened or written (locked, not DuckDB, no such folder)."""

    exit_code = 7


class RemoteDestinationError(ChasterError):
    """A database destination (PostgreSQL, ...) refused the credentials or a permission, or
    could not be reached."""

    exit_code = 10


class SchemaContractError(ChasterError):
    """The data would change the stored schema and `schema_contract` refuses it."""

    exit_code = 11


class ConcurrentRunError(ChasterError):
    """Another run of the same pipeline is still going."""

    exit_code = 8


class ViewsError(ChasterError):
    """The sessions were loaded, but the `analytics` views could not be re-created."""

    exit_code = 9


EXIT_CODES = {
    0: "success",
    1: "unexpected error (a bug: run with --verbose and report it)",
    ConfigError.exit_code: (
        "configuration error (a setting, the token, the base URL, a destination, the file name, "
        "a .dlt file)"
    ),
    AuthError.exit_code: "the API refused the token (401/403)",
    UnknownExtensionError.exit_code: "unknown extension slug (404)",
    APIUnavailableError.exit_code: "API unreachable or still failing after retries",
    PagingError.exit_code: "the API's paging answered inconsistently (would loop or lose data)",
    DestinationError.exit_code: "the DuckDB file is locked by another process or is not DuckDB",
    ConcurrentRunError.exit_code: "another run of this pipeline into the same destination is going",
    ViewsError.exit_code: "sessions loaded, but the analytics views could not be updated",
    RemoteDestinationError.exit_code: (
        "the destination (PostgreSQL, ...) refused the login or a permission, or is unreachable"
    ),
    SchemaContractError.exit_code: "schema_contract refused a schema change; nothing was written",
    130: "interrupted by SIGINT (Ctrl-C); what was committed stands, the next run resumes",
    143: "interrupted by SIGTERM; what was committed stands, the next run resumes",
}


_CREDENTIALS_IN_URL = re.compile(r"://[^/@\s]+@")
SECRET_SETTINGS = ("api_token", "pseudonym_key")


def chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps, once each."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = getattr(current, "exception", None) or current.__cause__ or current.__context__


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
        from .settings import coercion_error

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
    import dlt.destinations  # noqa: F401 - registers dlt's own destination types

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


def known_secrets() -> set[str]:
    """Every form of the configured secrets, to strike from anything printed as a last resort,
    whatever raised it: a message or a traceback can quote a header or a setting."""
    found: set[str] = set()
    for name in SECRET_SETTINGS:
        values = [os.environ.get(f"SOURCES__CHASTER__{name.upper()}")]
        with contextlib.suppress(Exception):  # a broken secrets file is reported elsewhere
            values.append(dlt.secrets.get(f"sources.chaster.{name}"))
        for value in values:
            if isinstance(value, str) and value.strip():
                found.update({value, value.strip()})
    return {s for s in found if len(s) >= 4}


def redact(text: str, secrets: set[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
        text = text.replace(repr(secret)[1:-1], "***")  # as a repr shows it: '\n' escaped
    return text


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
