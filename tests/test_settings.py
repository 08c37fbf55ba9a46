"""The one settings table and the three places that must agree with it: `chaster_source`'s
parameters (what dlt injects from `[sources.chaster]` and `SOURCES__CHASTER__*`), the frozen
`Settings` every layer reads, and what `Settings.build` checks. Unit tests, no HTTP."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from chaster_sessions import Settings, chaster_source
from chaster_sessions.errors import ConfigError
from chaster_sessions.settings import _CHECKED, SETTINGS

# arguments of a run that are not settings a user keeps in config: the command's flags
RUN_ARGUMENTS = ["full_refresh", "session_ids"]


def _parameters() -> dict[str, inspect.Parameter]:
    function = inspect.unwrap(chaster_source)
    return dict(inspect.signature(function).parameters)


def test_chaster_source_takes_every_setting_of_the_table_in_its_order():
    assert list(_parameters()) == [s.name for s in SETTINGS] + RUN_ARGUMENTS


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.type != "secret"], ids=str)
def test_each_parameter_defaults_to_the_table(setting):
    assert _parameters()[setting.name].default == setting.default


def test_the_frozen_settings_hold_every_setting_but_the_ones_it_parses():
    fields = {f.name for f in dataclasses.fields(Settings)}
    parsed = {"api_token", "extension_slug", "allow_insecure_http"}  # token, slugs, base_url
    assert {s.name for s in SETTINGS} - parsed | set(RUN_ARGUMENTS) <= fields
    assert fields - {s.name for s in SETTINGS} == {"token", "token_origin", "slugs", *RUN_ARGUMENTS}


def test_every_choice_number_and_switch_is_checked():
    assert set(_CHECKED) == {
        s.name for s in SETTINGS if s.type in ("choice", "integer", "number", "boolean")
    }


def _values(**changed: object) -> dict[str, object]:
    values: dict[str, object] = {s.name: s.default for s in SETTINGS}
    values.update(api_token="a-token", extension_slug="one, two", full_refresh=False)
    values.update(changed)
    return values


def test_build_parses_and_freezes():
    settings = Settings.build(_values(session_ids=[" abc_DEF-1 ", "abc_DEF-1"]))
    assert settings.slugs == ("one", "two")
    assert settings.session_ids == ("abc_DEF-1",)
    assert settings.base_url == "https://api.chaster.app"
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.status = "locked"  # type: ignore[misc]


def test_the_token_and_the_key_stay_out_of_the_repr():
    settings = Settings.build(_values(privacy="pseudonymous", pseudonym_key="a-secret-key"))
    assert settings.pseudonym_key == b"a-secret-key"
    assert "a-token" not in repr(settings) and "a-secret-key" not in repr(settings)


def test_the_first_bad_value_in_table_order_is_the_one_named():
    with pytest.raises(ConfigError, match=r"^status 'some' is not allowed"):
        Settings.build(_values(status="some", page_size=0))
