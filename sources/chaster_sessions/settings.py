"""The one table of this source's settings, their checks, and the frozen `Settings` of a run.

`SETTINGS` drives four things that must never drift apart: the check of every value before the
first request (`check`, `Settings.build`), the error line that names a bad setting, the
settings table in the README (`python -m chaster_sessions.settings` prints it; a test compares
the two), and the `Settings` object every lower layer reads.

dlt reads the values (from `.dlt/*.toml`, `SOURCES__CHASTER__*` env vars or arguments) and
coerces them to `chaster_source`'s annotated types. A value dlt cannot coerce is explained by
`coercion_error`; one it can but that is out of range, by `check`. Secret values are never
repeated in a message, nor shown in the `Settings` object's repr.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dlt.common.configuration.container import Container
from dlt.common.configuration.providers import ConfigProvider, EnvironProvider
from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext
from dlt.common.pipeline import PipelineContext

from .errors import ConfigError

VERSION = "0.3.0"  # of this package, as the runs table records it (pyproject.toml's too)
DEFAULT_BASE_URL = "https://api.chaster.app"

# The command's pipeline and dataset. The default file is not `chaster.duckdb`: DuckDB names a
# file's database after its stem, which must not equal a schema written into it (the dataset
# `chaster`), or every `chaster.<table>` is ambiguous.
PIPELINE_NAME = "chaster"
DATASET = "chaster"
DEFAULT_DUCKDB = "chaster_sessions.duckdb"
SEARCH_PATH = "/api/extensions/sessions/search"
SESSION_PATH = "/api/extensions/sessions/{session_id}"
LOGS_SUFFIX = "/logs/search"
LOGS_PATH = SESSION_PATH + LOGS_SUFFIX

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
# The first retry waits this long, each next one twice as long, at most 30 s.
DEFAULT_RETRY_BACKOFF = 0.5
DEFAULT_MAX_RATE_LIMIT_WAIT = 900
DEFAULT_READ_TIMEOUT = 60
# A long backfill driven by the runner is committed in chunks, so a kill loses at most one chunk.
# Pages bound a chunk only when dlt is slower than the API (under a budget the runner commits
# every 5 pages while it waits); each commit then costs about 0.55 s of dlt's fixed work, so
# fewer pages cost time and more cost memory: bench/RESULTS.md has the sizes measured.
DEFAULT_CHUNK_PAGES = 100
DEFAULT_CHUNK_SECONDS = 120
# Action logs cost at least a request per session read: a run spends at most this many on them
# (at the documented 100 a minute, six minutes), after the sessions' own requests.
DEFAULT_ACTION_LOG_REQUESTS = 600
# The keyholder sees every entry; a lock can hide its time logs from the wearer (and visitors).
LOG_ROLES = ("keyholder", "wearer", "visitor")
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
        "retry_backoff",
        "number",
        DEFAULT_RETRY_BACKOFF,
        "seconds before the first retry of such a fault; doubled for each next try, at most 30",
        minimum=0,
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
    Setting(
        "action_logs",
        "boolean",
        False,
        "also load each session's action log into `action_logs` (one request per session "
        "read, more for long histories; see `action_log_requests`)",
    ),
    Setting(
        "action_log_role",
        "choice",
        "keyholder",
        "the role the logs are read as; the keyholder sees every entry, a lock can hide its "
        "time logs from the wearer and visitors",
        choices=LOG_ROLES,
    ),
    Setting(
        "action_log_requests",
        "integer",
        DEFAULT_ACTION_LOG_REQUESTS,
        "at most this many log requests a run, spent after the sessions' own; the sessions not "
        "read yet carry over to the next run, running ones first",
        minimum=1,
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


# -- checks: every bad value ends in one line naming its key ---------------------------------


def where(setting: Setting) -> str:
    return f"{setting.env} or {setting.name} under [sources.chaster]"


def _bad(setting: Setting, value: Any, problem: str) -> ConfigError:
    shown = "(the secret value)" if setting.type == "secret" else repr(value)
    allowed = setting.allowed()
    hint = f" (allowed: {allowed})" if allowed else ""
    return ConfigError(f"{setting.name} {shown} {problem}{hint}; set {where(setting)}")


def coercion_error(name: str, value: Any) -> ConfigError:
    """The line for a value dlt could not turn into the setting's type (`page_size = "abc"`)."""
    setting = BY_NAME.get(name)
    if setting is None:
        return ConfigError(f"setting {name} has an invalid value {value!r}")
    kind = {
        "integer": "is not a whole number",
        "number": "is not a number",
        "boolean": "is not true or false",
    }.get(setting.type, "has the wrong type")
    return _bad(setting, value, kind)


def check(name: str, value: Any) -> Any:
    """Return the value if it is allowed for setting `name`, else raise a ConfigError."""
    setting = BY_NAME[name]
    if setting.choices and value not in setting.choices:
        raise _bad(setting, value, "is not allowed")
    if setting.type == "boolean" and not isinstance(value, bool):
        raise _bad(setting, value, "is not true or false")
    if setting.type in ("integer", "number"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise coercion_error(name, value)
        if setting.type == "integer" and value != int(value):
            raise _bad(setting, value, "is not a whole number")
        low, high = setting.minimum, setting.maximum
        too_low = low is not None and (value <= low if setting.minimum_exclusive else value < low)
        if too_low or (high is not None and value > high):
            raise _bad(setting, value, "is out of range")
    return value


_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def check_session_ids(session_ids: Any) -> list[str] | None:
    """The ids to re-read, once each, as the API writes them (letters, digits, `-`, `_`; 21 of
    them in practice). Surrounding whitespace, as a copied id has, is trimmed; anything else is
    refused before a request, not sent to come back as "gone"."""
    if session_ids is None:
        return None
    ids = [str(i).strip() for i in ([session_ids] if isinstance(session_ids, str) else session_ids)]
    for session_id in ids:
        if not _SESSION_ID.fullmatch(session_id):
            raise ConfigError(
                f"session id {session_id!r} is not a Chaster session id (letters, digits, `-` "
                "and `_`, as in the session's URL); check --session-id / session_ids"
            )
    return list(dict.fromkeys(ids))


def parse_slugs(extension_slug: Any) -> list[str]:
    """One slug, a list, a JSON list or a comma-separated string: env vars can only hold text."""
    if isinstance(extension_slug, str):
        text = extension_slug.strip()
        if text.startswith("["):
            try:
                extension_slug = json.loads(text)
            except ValueError:
                raise ConfigError(f"extension_slug {text!r} is not a valid JSON list") from None
        else:
            extension_slug = [part.strip() for part in text.split(",")]
    if not isinstance(extension_slug, list | tuple):
        extension_slug = []
    slugs = [s for s in extension_slug if isinstance(s, str) and s]
    if not slugs:
        raise ConfigError(
            "no extension slug: set SOURCES__CHASTER__EXTENSION_SLUG (or extension_slug under "
            "[sources.chaster] in .dlt/config.toml), or pass --extension-slug"
        )
    return list(dict.fromkeys(slugs))


# Where dlt looks for a source's key, most specific first: `[sources.chaster.chaster]` (the
# source's name under its section), `[sources.chaster]`, `[sources]`, the top level.
_SOURCE_SECTIONS: tuple[tuple[str, ...], ...] = (
    ("sources", "chaster", "chaster"),
    ("sources", "chaster"),
    ("sources",),
    (),
)


def token_origin(api_token: Any) -> str:
    """Where the token came from, in the words a user would look for it: the env var's name,
    `api_token under [sources.chaster] in /path/.dlt/secrets.toml`, or the argument.

    dlt does not say which provider gave a value it injected, so each provider that may hold a
    secret is asked in dlt's order, and the first to hold this very value is the origin; none
    holding it means the caller passed it.
    """
    context = Container()[PipelineContext]
    pipeline_names = [context.pipeline().pipeline_name, None] if context.is_active() else [None]
    for provider in Container()[PluggableRunContext].providers.providers:
        if not provider.supports_secrets:
            continue
        for pipeline_name, sections in itertools.product(pipeline_names, _SOURCE_SECTIONS):
            value, key = provider.get_value("api_token", str, pipeline_name, *sections)
            if value is None or value != api_token:
                continue
            if isinstance(provider, EnvironProvider):
                return key
            table = ".".join(filter(None, (pipeline_name, *sections)))
            under = f" under [{table}]" if table else ""
            return f"api_token{under} in {_file_holding(provider, key, value) or provider.name}"
    return TOKEN_FROM_ARGUMENT


def _file_holding(provider: ConfigProvider, key: str, value: Any) -> str | None:
    """The settings file (absolute path) of `provider` in which `key` (`sources.chaster.api_token`)
    holds `value`: a project's file and dlt's global one may both hold a token."""
    for location in provider.present_locations:
        path = Path(location)
        with contextlib.suppress(OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            found: Any = tomllib.loads(path.read_text())
            for part in key.split("."):
                found = found.get(part) if isinstance(found, dict) else None
            if found == value:
                return str(path.resolve())
    return None


def clean_token(api_token: Any, origin: str = TOKEN_FROM_ARGUMENT) -> str:
    """The token as it goes into the Authorization header; `origin` (from `token_origin`) is
    named in each refusal, so the user fixes the value that was used.

    Surrounding whitespace is what a pasted or `echo`-written token carries, so it is trimmed.
    Anything else a header cannot carry is refused without repeating the token, and so is the
    placeholder of `.dlt/secrets.toml.example`, which would only earn a 401.
    """
    token = api_token.strip() if isinstance(api_token, str) else ""
    if not token:
        raise ConfigError(
            f"api_token is empty (from {origin}); put a developer token of the extension's "
            "application there"
        )
    if token == EXAMPLE_TOKEN:  # not quoted: the last resort strikes the configured token
        raise ConfigError(
            f"api_token (from {origin}) is still the placeholder of .dlt/secrets.toml.example; "
            "replace it there with a developer token of the extension's application"
        )
    if any(not (" " <= ch <= "~") for ch in token):
        raise ConfigError(
            "api_token contains a character an HTTP header cannot carry (a line break, a control "
            f"or a non-ASCII character); copy the token again into {origin}"
        )
    return token


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(base_url: Any, allow_insecure_http: bool = False) -> str:
    """An http(s) URL; plain http only to loopback (the stand-in) unless explicitly allowed,
    because the token travels in a header and `http://api.chaster.app` is one letter off."""
    text = base_url.strip() if isinstance(base_url, str) else ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"base_url {base_url!r} is not an http(s) URL; set SOURCES__CHASTER__BASE_URL "
            f"(default {DEFAULT_BASE_URL})"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname) and not allow_insecure_http:
        raise ConfigError(
            f"base_url {text!r} is plain http, which would send the API token in clear text; "
            f"use https (default {DEFAULT_BASE_URL}), or set "
            "SOURCES__CHASTER__ALLOW_INSECURE_HTTP=true if you really mean it"
        )
    root = text.rstrip("/")
    path = urlsplit(root).path
    if path.endswith("/api") or "/api/" in path:
        # every request path begins with /api: `.../api` would call /api/api/extensions/...
        doubled = path[path.find("/api") :]
        without = root[: len(root) - len(doubled)]
        raise ConfigError(
            f"base_url {text!r} has the path {path}, but every request path already begins with "
            f"/api (requests would go to {path}{SEARCH_PATH}); drop {doubled}: "
            f"base_url {without!r} (the API's root is {DEFAULT_BASE_URL}); set "
            f"{where(BY_NAME['base_url'])}"
        )
    return root


# -- the settings of one source, checked once ------------------------------------------------

# Settings checked against the table as they are; the slugs, the URL and the secrets are parsed.
_CHECKED = tuple(s.name for s in SETTINGS if s.type not in ("secret", "slugs", "text"))


@dataclass(frozen=True)
class Settings:
    """Every setting of one `chaster_source`, checked and parsed, read by every layer below it.

    Built once by `Settings.build` from the values dlt injected; frozen, so no layer can change
    what another one reads. The token and the pseudonym key are left out of its repr.
    """

    token: str = field(repr=False)
    token_origin: str
    slugs: tuple[str, ...]
    base_url: str
    status: str = "all"
    page_size: int | None = None
    sort_order: str = "auto"
    requests_per_minute: float = DEFAULT_REQUESTS_PER_MINUTE
    max_rate_limit_wait: float = DEFAULT_MAX_RATE_LIMIT_WAIT
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    retry_backoff: float = DEFAULT_RETRY_BACKOFF
    request_timeout: float = DEFAULT_READ_TIMEOUT
    refresh: bool = True
    chunk_pages: int = DEFAULT_CHUNK_PAGES
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS
    privacy: str = "full"
    store_credentials: bool = False
    pseudonym_key: bytes | None = field(default=None, repr=False)
    schema_contract: str = "evolve"
    full_sweep_every_days: float = DEFAULT_FULL_SWEEP_EVERY_DAYS
    action_logs: bool = False
    action_log_role: str = "keyholder"
    action_log_requests: int = DEFAULT_ACTION_LOG_REQUESTS
    full_refresh: bool = False
    session_ids: tuple[str, ...] | None = None

    @classmethod
    def build(cls, values: dict[str, Any]) -> Settings:
        """Check every value against `SETTINGS` and parse the slugs, ids, URL and secrets;
        the first bad value raises a ConfigError naming its key."""
        for name in _CHECKED:
            if values.get(name) is not None:
                check(name, values[name])
        slugs = parse_slugs(values.get("extension_slug"))
        ids = check_session_ids(values.get("session_ids"))
        url = check_base_url(
            values.get("base_url", DEFAULT_BASE_URL), bool(values.get("allow_insecure_http"))
        )
        origin = token_origin(values["api_token"])
        token = clean_token(values["api_token"], origin)
        key_text = values.get("pseudonym_key")
        key = key_text.strip().encode() if key_text and key_text.strip() else None
        if values.get("privacy") == "pseudonymous" and not key:
            raise ConfigError(
                "privacy = 'pseudonymous' needs a secret pseudonym_key "
                "(SOURCES__CHASTER__PSEUDONYM_KEY)"
            )
        plain = {
            name: values[name]
            for name in (*_CHECKED, "full_refresh")
            if name in values and name != "allow_insecure_http"
        }
        return cls(
            token=token,
            token_origin=origin,
            slugs=tuple(slugs),
            base_url=url,
            pseudonym_key=key,
            session_ids=tuple(ids) if ids is not None else None,
            **plain,
        )

    @property
    def sweeps(self) -> bool:
        """Whether this source's cursor sees every session (`status = "all"`): only then can a
        walk count as a full sweep, and only then can a sweep tell what is gone."""
        return self.status == "all"


if __name__ == "__main__":
    print(markdown_table())
