"""Errors a user can act on, each with one readable message and the exit code of its class.

Everything that can stop a run on purpose raises one of these; the pipeline prints
`error: <message>` and exits with `exit_code`. No message ever carries the API token.
Turning any other failure into one of these is `explain.py`'s job; this module imports
nothing of the package, so every module can import it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import dlt


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


SECRET_SETTINGS = ("api_token", "pseudonym_key")


def chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps, once each."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = getattr(current, "exception", None) or current.__cause__ or current.__context__


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
