"""Checking settings before the first request: every bad value ends in one line naming its key.

dlt reads the values (from `.dlt/*.toml`, `SOURCES__CHASTER__*` env vars or arguments) and coerces
them to the source's annotated types; `settings.SETTINGS` says what each may hold. A value dlt
cannot coerce is explained by `coercion_error`; one it can but that is out of range, by `check`.
Secret values are never repeated in a message.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import json
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dlt.common.configuration.container import Container
from dlt.common.configuration.providers import ConfigProvider, EnvironProvider
from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext
from dlt.common.pipeline import PipelineContext

from .errors import ConfigError
from .settings import (
    BY_NAME,
    DEFAULT_BASE_URL,
    EXAMPLE_TOKEN,
    LOOPBACK_HOSTS,
    SEARCH_PATH,
    TOKEN_FROM_ARGUMENT,
    Setting,
)


def where(setting: Setting) -> str:
    return f"{setting.env} or {setting.name} under [sources.chaster]"


def _bad(setting: Setting, value: Any, problem: str) -> ConfigError:
    shown = "(the secret value)" if setting.type == "secret" else repr(value)
    allowed = setting.allowed()
    hint = f" (allowed: {allowed})" if allowed else ""
    return ConfigError(f"{setting.name} {shown} {problem}{hint}; set {where(setting)}")


def coercion_error(field: str, value: Any) -> ConfigError:
    """The line for a value dlt could not turn into the setting's type (`page_size = "abc"`)."""
    setting = BY_NAME.get(field)
    if setting is None:
        return ConfigError(f"setting {field} has an invalid value {value!r}")
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
