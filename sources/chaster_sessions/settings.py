"""Constants of the Chaster Extensions API, and the one table of this source's settings.

`SETTINGS` drives three things that must never drift apart: the check of every value before the
first request (`config.py`), the error line that names a bad setting, and the settings table in
the README (`python -m chaster_sessions.settings` prints it; a test compares the two).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_BASE_URL = "https://api.chaster.app"

# The command's pipeline and dataset. The default file is not `chaster.duckdb`: DuckDB names a
# file's database after its stem, which must not equal a schema written into it (the dataset
# `chaster`), or every `chaster.<table>` is ambiguous.
PIPELINE_NAME = "chaster"
DATASET = "chaster"
DEFAULT_DUCKDB = "chaster_sessions.duckdb"
SEARCH_PATH = "/api/extensions/sessions/search"
SESSION_PATH = "/api/extensions/sessions/{session_id}"

STATUSES = ("locked", "unlocked", "deserted", "all")
SORT_ORDERS = ("auto", "asc", "desc")
PRIVACY_MODES = ("full", "pseudonymous")
CONTRACT_MODES = ("evolve", "freeze", "discard_row", "discard_value")

# The largest `limit` public code uses. The API does not document its cap: a smaller one is
# learned from its 400 answer (see paging.py) and kept in state for later runs.
MAX_PAGE_SIZE = 100

RATE_WINDOW_SECONDS = 60.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_REQUESTS_PER_MINUTE = 100  # the documented budget
# Transient faults (5xx, resets, timeouts, bodies that are not JSON) are retried this often with
# exponential backoff; rate limits are waited out up to a total wait instead.
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_MAX_RATE_LIMIT_WAIT = 900
DEFAULT_READ_TIMEOUT = 60
# A long backfill driven by the runner is committed in chunks, so a kill loses at most one chunk.
# Pages bound a chunk only when dlt is slower than the API (under a budget the runner commits
# every 5 pages while it waits); each commit then costs about 0.55 s of dlt's fixed work, so
# fewer pages cost time and more cost memory: bench/RESULTS.md has the sizes measured.
DEFAULT_CHUNK_PAGES = 100
DEFAULT_CHUNK_SECONDS = 120
# Changes to ended sessions (and their deletion) are seen only by a full sweep: one a week.
DEFAULT_FULL_SWEEP_EVERY_DAYS = 7

# The token `.dlt/secrets.toml.example` holds: copied unchanged, it must not reach the API.
EXAMPLE_TOKEN = "your-developer-token"  # noqa: S105 - a placeholder, not a token
# Where error lines say a token came from when no settings provider holds it: the caller's code.
TOKEN_FROM_ARGUMENT = "the api_token argument"  # noqa: S105 - words, not a token

# Hosts a token may be sent to over plain http: the loopback stand-in, never the internet.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class Setting:
    """One key under `[sources.chaster]`: its type, default, allowed values and meaning."""

    name: str
    type: str  # "text", "integer", "number", "boolean", "choice", "secret", "slugs"
    default: object
    meaning: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    minimum_exclusive: bool = False

    @property
    def env(self) -> str:
        return f"SOURCES__CHASTER__{self.name.upper()}"

    def allowed(self) -> str:
        """The allowed values in words, for the README and for error lines."""
        if self.choices:
            return " | ".join(self.choices)
        if self.minimum is None and self.maximum is None:
            return ""
        low = "" if self.minimum is None else f"{self.minimum:g}"
        high = "" if self.maximum is None else f"{self.maximum:g}"
        if self.minimum_exclusive and not high:
            return f"> {low}"
        if not high:
            return f">= {low}"
        return f"{low}..{high}"


SETTINGS: tuple[Setting, ...] = (
    Setting("api_token", "secret", None, "developer token of the extension's application"),
    Setting(
        "extension_slug",
        "slugs",
        None,
        "one slug, a list, or in an env var a JSON list / comma-separated slugs",
    ),
    Setting("status", "choice", "all", "which sessions to load", choices=STATUSES),
    Setting(
        "page_size",
        "integer",
        None,
        "sessions per search request; unset: 100, or the largest size the API accepts",
        minimum=1,
        maximum=MAX_PAGE_SIZE,
    ),
    Setting(
        "base_url",
        "text",
        DEFAULT_BASE_URL,
        "API root (no path needed; one with `/api` in it is refused, since every request path "
        "begins with `/api`); https, or http to a loopback address only",
    ),
    Setting(
        "allow_insecure_http",
        "boolean",
        False,
        "allow a plain-http `base_url` to a non-loopback host (sends the token in clear text)",
    ),
    Setting(
        "sort_order",
        "choice",
        "auto",
        "`auto` detects the API's order; `asc`/`desc` force it",
        choices=SORT_ORDERS,
    ),
    Setting(
        "requests_per_minute",
        "number",
        DEFAULT_REQUESTS_PER_MINUTE,
        "request budget; requests are spaced evenly under it",
        minimum=0,
        minimum_exclusive=True,
    ),
    Setting(
        "max_rate_limit_wait",
        "number",
        DEFAULT_MAX_RATE_LIMIT_WAIT,
        "seconds of waiting on 429s before a run gives up",
        minimum=0,
    ),
    Setting(
        "max_attempts",
        "integer",
        DEFAULT_MAX_ATTEMPTS,
        "tries per request on 5xx, HTML error pages, resets, timeouts, non-JSON bodies",
        minimum=1,
        maximum=100,
    ),
    Setting(
        "request_timeout",
        "number",
        DEFAULT_READ_TIMEOUT,
        "seconds to wait for an answer before the try counts as failed",
        minimum=0,
        minimum_exclusive=True,
    ),
    Setting(
        "refresh",
        "boolean",
        True,
        "re-read the sessions that were running at the previous run; `false`: cursor only",
    ),
    Setting(
        "chunk_pages",
        "integer",
        DEFAULT_CHUNK_PAGES,
        "the runner commits a long load every N pages (0: no page limit)",
        minimum=0,
    ),
    Setting(
        "chunk_seconds",
        "number",
        DEFAULT_CHUNK_SECONDS,
        "... or every T seconds, whichever first (0: no time limit)",
        minimum=0,
    ),
    Setting("privacy", "choice", "full", "what is kept of people", choices=PRIVACY_MODES),
    Setting(
        "store_credentials",
        "boolean",
        False,
        "keep `lock.offerToken`, `lock.combination`, `lock.sharedLock.password`",
    ),
    Setting(
        "pseudonym_key",
        "secret",
        None,
        'key of the pseudonyms; required with `privacy = "pseudonymous"`',
    ),
    Setting(
        "schema_contract",
        "choice",
        "evolve",
        "dlt's schema contract for new tables, columns and value types: `freeze` fails the run "
        "(exit 11) and writes nothing; `discard_row` / `discard_value` drop what does not fit",
        choices=CONTRACT_MODES,
    ),
    Setting(
        "full_sweep_every_days",
        "number",
        DEFAULT_FULL_SWEEP_EVERY_DAYS,
        "a run re-reads every session (status `all`, chunked) when the last full sweep is this "
        "old; it marks what the API no longer has (0: every run)",
        minimum=0,
    ),
)
BY_NAME = {setting.name: setting for setting in SETTINGS}


def _default_text(setting: Setting) -> str:
    if setting.type == "secret":
        return "(secret)"
    if setting.default is None:
        return "(required)" if setting.name == "extension_slug" else "(unset)"
    if isinstance(setting.default, bool):
        return f"`{str(setting.default).lower()}`"
    return f"`{setting.default}`"


def markdown_table() -> str:
    """The README's settings table, generated from SETTINGS."""
    rows = ["| key | default | allowed | meaning |", "|---|---|---|---|"]
    for s in SETTINGS:
        allowed = s.allowed() or {"boolean": "`true` / `false`", "secret": "text"}.get(s.type, "")
        if s.type == "integer" and not s.allowed():
            allowed = "whole number"
        kind = {"integer": "whole number", "number": "number"}.get(s.type)
        if kind and s.allowed():
            allowed = f"{kind} {s.allowed()}"
        rows.append(f"| `{s.name}` | {_default_text(s)} | {allowed} | {s.meaning} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
