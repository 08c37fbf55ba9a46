"""Errors a user can act on, each with one readable message and the exit code of its class.

Everything that can stop a run on purpose raises one of these; the pipeline prints
`error: <message>` and exits with `exit_code`. No message ever carries the API token.
"""

from __future__ import annotations


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


class DestinationError(ChasterError):
    """The DuckDB file (or other destination) cannot be opened or written."""

    exit_code = 7


class ConcurrentRunError(ChasterError):
    """Another run of the same pipeline is still going."""

    exit_code = 8


class ViewsError(ChasterError):
    """The sessions were loaded, but the `analytics` views could not be re-created."""

    exit_code = 9


EXIT_CODES = {
    0: "success",
    1: "unexpected error (a bug: run with --verbose and report it)",
    ConfigError.exit_code: "configuration error (token, status, page size, base URL, config file)",
    AuthError.exit_code: "the API refused the token (401/403)",
    UnknownExtensionError.exit_code: "unknown extension slug (404)",
    APIUnavailableError.exit_code: "API unreachable or still failing after retries",
    PagingError.exit_code: "the API's paging answered inconsistently (would loop or lose data)",
    DestinationError.exit_code: "the DuckDB file is locked by another process or is not DuckDB",
    ConcurrentRunError.exit_code: "another run of this pipeline is still going",
    ViewsError.exit_code: "sessions loaded, but the analytics views could not be updated",
    130: "interrupted (Ctrl-C)",
}
