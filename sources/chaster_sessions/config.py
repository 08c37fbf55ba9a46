"""Checking settings before the first request: every bad value ends in one line naming its key.

dlt reads the values (from `.dlt/*.toml`, `SOURCES__CHASTER__*` env vars or arguments) and coerces
them to the source's annotated types; `settings.SETTINGS` says what each may hold. A value dlt
cannot coerce is explained by `coercion_error`; one it can but that is out of range, by `check`.
Secret values are never repeated in a message.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError
from .settings import BY_NAME, DEFAULT_BASE_URL, LOOPBACK_HOSTS, Setting


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


def clean_token(api_token: Any) -> str:
    """The token as it goes into the Authorization header.

    Surrounding whitespace is what a pasted or `echo`-written token carries, so it is trimmed.
    Anything else a header cannot carry is refused without repeating the token.
    """
    token = api_token.strip() if isinstance(api_token, str) else ""
    if not token:
        raise ConfigError(
            "api_token is empty; set SOURCES__CHASTER__API_TOKEN or api_token under "
            "[sources.chaster] in .dlt/secrets.toml"
        )
    if any(not (" " <= ch <= "~") for ch in token):
        raise ConfigError(
            "api_token contains a character an HTTP header cannot carry (a line break, a control "
            "or a non-ASCII character); copy the token again into SOURCES__CHASTER__API_TOKEN or "
            "api_token under [sources.chaster] in .dlt/secrets.toml"
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
    return text.rstrip("/")
