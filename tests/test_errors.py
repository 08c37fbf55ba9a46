"""Errors name the real cause: a mistyped destination, a base URL that doubles `/api`, where a
refused token came from, the example's placeholder token, and session ids that start with `-`.

Each bad input is given the way a user gives it (an option, an env var, a `.dlt/` file), and
each test checks the exit code, the line, the requests the stand-in saw and the files left.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dlt
import pytest

from chaster_sessions import chaster_source
from chaster_sessions.explain import explain, usable_destination_types
from conftest import (
    ROOT,
    SLUG,
    TOKEN,
    configure,
    db_snapshot,
    query,
    run_cli,
    run_process,
    standin_env,
)

WRONG_TOKEN = "not-the-token-5e2b"


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def _duckdb_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.duckdb"))


# -- a destination whose type is missing or unknown --------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "name", "meant"),
    [
        (["--destination", "warehous"], {}, "warehous", "warehouse"),
        (["--destination", "postgress"], {}, "postgress", "postgres"),
        ([], {"CHASTER__DESTINATION": "duckdbb"}, "duckdbb", "duckdb"),
    ],
)
def test_a_mistyped_destination_is_named_with_the_types_before_any_request(
    make_api, home, monkeypatch, capsys, args, env, name, meant
):
    api = make_api(30)
    configure(monkeypatch, api)
    # the user's real destination, which `warehous` misspells
    monkeypatch.setenv("DESTINATION__WAREHOUSE__DESTINATION_TYPE", "postgres")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = run_cli(capsys, *args)
    assert result.code == 2, result.err
    types = ", ".join(usable_destination_types())
    assert _one_line(result.err) == (
        f"error: destination {name!r} has no destination_type and is not a dlt destination type "
        f"(did you mean {meant!r}?); set destination_type under [destination.{name}] in "
        f".dlt/config.toml, or DESTINATION__{name.upper()}__DESTINATION_TYPE, to one of the "
        f"types this install can use: {types}"
    )
    assert api.count() == 0
    assert _duckdb_files(home) == []


def test_an_unknown_destination_type_is_named_as_configured(make_api, home, monkeypatch, capsys):
    api = make_api(30)
    configure(monkeypatch, api)
    (home / "project" / ".dlt" / "config.toml").write_text(
        '[chaster]\ndestination = "warehouse"\n\n'
        '[destination.warehouse]\ndestination_type = "postgress"\n'
    )
    result = run_cli(capsys)
    assert result.code == 2, result.err
    assert _one_line(result.err).startswith(
        "error: destination 'warehouse' has an unknown destination_type 'postgress' (did you "
        "mean 'postgres'?); set destination_type under [destination.warehouse] in "
        ".dlt/config.toml, or DESTINATION__WAREHOUSE__DESTINATION_TYPE, to one of the types "
        "this install can use: "
    )
    assert api.count() == 0
    assert _duckdb_files(home) == []


def test_the_types_listed_are_those_this_install_can_load_into():
    types = usable_destination_types()
    assert "duckdb" in types
    assert "dummy" not in types and "destination" not in types  # not chosen by a name
    for name in types:
        getattr(dlt.destinations, name)().client_class  # noqa: B018 - its driver imports


def test_a_mistyped_destination_from_the_environment_in_its_own_process(make_api, home):
    api = make_api(30)
    result = run_process(env={**standin_env(api), "CHASTER__DESTINATION": "duckdbb"})
    assert result.code == 2, result.err
    assert _one_line(result.err).startswith(
        "error: destination 'duckdbb' has no destination_type and is not a dlt destination "
        "type (did you mean 'duckdb'?)"
    )
    assert api.count() == 0
    assert _duckdb_files(home) == []


# -- a base URL with a path --------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["/api", "/api/"])
def test_a_base_url_ending_in_api_is_refused_before_any_request(
    make_api, home, monkeypatch, capsys, suffix
):
    api = make_api(30)
    configure(monkeypatch, api)
    monkeypatch.setenv("SOURCES__CHASTER__BASE_URL", api.url + suffix)
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 2, result.err
    assert _one_line(result.err) == (
        f"error: base_url {api.url + suffix!r} has the path /api, but every request path already "
        "begins with /api (requests would go to /api/api/extensions/sessions/search); drop /api: "
        f"base_url {api.url!r} (the API's root is https://api.chaster.app); set "
        "SOURCES__CHASTER__BASE_URL or base_url under [sources.chaster]"
    )
    assert api.count() == 0
    assert _duckdb_files(home) == []


def test_a_404_of_a_path_the_base_url_added_is_not_blamed_on_the_slug(
    make_api, home, monkeypatch, capsys
):
    api = make_api(30)
    configure(monkeypatch, api)
    monkeypatch.setenv("SOURCES__CHASTER__BASE_URL", api.url + "/chaster")
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 2, result.err
    line = _one_line(result.err)
    assert line == (
        f"error: the server at base_url '{api.url}/chaster' has no POST "
        "/chaster/api/extensions/sessions/search (HTTP 404: Cannot POST "
        "/chaster/api/extensions/sessions/search): the path /chaster of base_url goes before "
        "every request path, and the API's root has none (https://api.chaster.app); check "
        "SOURCES__CHASTER__BASE_URL"
    )
    assert "slug" not in line
    assert api.count() == 1
    assert _duckdb_files(home) == []


def test_a_session_id_under_a_wrong_base_url_is_not_marked_removed(
    make_api, home, monkeypatch, capsys
):
    """A 404 of the server's router says nothing of the session: marking it removed would
    write a falsehood into the user's copy."""
    api = make_api(30)
    configure(monkeypatch, api)
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    before = db_snapshot(home / "out.duckdb")
    session_id = api.population.session_ids(SLUG)[0]
    monkeypatch.setenv("SOURCES__CHASTER__BASE_URL", api.url + "/chaster")
    result = run_cli(capsys, "--duckdb", "out.duckdb", "--session-id", session_id)
    assert result.code == 2, result.err
    assert _one_line(result.err).startswith(
        f"error: the server at base_url '{api.url}/chaster' has no GET /chaster/api/extensions/"
        f"sessions/{session_id} (HTTP 404: Cannot GET "
    )
    assert db_snapshot(home / "out.duckdb") == before
    removed = "select count(*) from chaster.sessions where removed_at is not null"
    assert query(home / "out.duckdb", removed) == [(0,)]


# -- where the token came from -----------------------------------------------------------------


def _point_at(monkeypatch, api, slug: str = SLUG) -> None:
    """Everything but the token, which each test sets where a user would."""
    configure(monkeypatch, api, slug=slug)
    monkeypatch.delenv("SOURCES__CHASTER__API_TOKEN")


def test_a_refused_token_from_secrets_toml_names_the_file(make_api, home, monkeypatch, capsys):
    api = make_api(30)
    _point_at(monkeypatch, api)
    secrets = home / "project" / ".dlt" / "secrets.toml"
    secrets.write_text(f'[sources.chaster]\napi_token = "{WRONG_TOKEN}"\n')
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 3, result.err
    assert _one_line(result.err) == (
        "error: the API refused the token (HTTP 401: Unauthorized); check api_token under "
        f"[sources.chaster] in {secrets.resolve()}: it must be a developer token of the "
        "extension's application"
    )
    assert WRONG_TOKEN not in result.err + result.out
    assert api.count() == 1
    assert _duckdb_files(home) == []


def test_a_refused_token_under_another_table_names_that_table(make_api, home, monkeypatch, capsys):
    """dlt also finds a source's key under [sources] (for every source): the line names the
    table where this one was found."""
    api = make_api(30)
    _point_at(monkeypatch, api)
    secrets = home / "project" / ".dlt" / "secrets.toml"
    secrets.write_text(f'[sources]\napi_token = "{WRONG_TOKEN}"\n')
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 3, result.err
    assert f"; check api_token under [sources] in {secrets.resolve()}: " in result.err


def test_a_refused_token_from_the_environment_names_the_variable(
    make_api, home, monkeypatch, capsys
):
    api = make_api(30)
    _point_at(monkeypatch, api)
    # a file holds another token: the env var wins, and the line says so
    (home / "project" / ".dlt" / "secrets.toml").write_text(
        f'[sources.chaster]\napi_token = "{TOKEN}"\n'
    )
    monkeypatch.setenv("SOURCES__CHASTER__API_TOKEN", WRONG_TOKEN)
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 3, result.err
    assert "; check SOURCES__CHASTER__API_TOKEN: it must be a developer token" in result.err
    assert "secrets.toml" not in result.err


def test_a_refused_token_passed_in_python_names_the_argument(make_api, home):
    api = make_api(30)
    destination = dlt.destinations.duckdb(str(home / "lib.duckdb"))
    pipeline = dlt.pipeline("chaster_lib", destination=destination, dataset_name="chaster")
    source = chaster_source(api_token=WRONG_TOKEN, extension_slug=SLUG, base_url=api.url)
    with pytest.raises(Exception) as failure:
        pipeline.run(source)
    assert explain(failure.value).message == (
        "the API refused the token (HTTP 401: Unauthorized); check the api_token argument: it "
        "must be a developer token of the extension's application"
    )


def test_a_token_a_header_cannot_carry_names_the_file_it_came_from(
    make_api, home, monkeypatch, capsys
):
    api = make_api(30)
    _point_at(monkeypatch, api)
    secrets = home / "project" / ".dlt" / "secrets.toml"
    secrets.write_text('[sources.chaster]\napi_token = "tok\\u0001en"\n')
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 2, result.err
    assert _one_line(result.err).endswith(
        f"; copy the token again into api_token under [sources.chaster] in {secrets.resolve()}"
    )
    assert api.count() == 0
    assert _duckdb_files(home) == []


# -- the example's placeholder token -----------------------------------------------------------


def test_the_example_secrets_copied_unchanged_are_refused_before_any_request(
    make_api, home, monkeypatch, capsys
):
    api = make_api(30)
    _point_at(monkeypatch, api)
    secrets = home / "project" / ".dlt" / "secrets.toml"
    shutil.copy(ROOT / ".dlt" / "secrets.toml.example", secrets)
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 2, result.err
    assert _one_line(result.err) == (
        f"error: api_token (from api_token under [sources.chaster] in {secrets.resolve()}) is "
        "still the placeholder of .dlt/secrets.toml.example; replace it there with a developer "
        "token of the extension's application"
    )
    assert api.count() == 0
    assert _duckdb_files(home) == []


def test_the_placeholder_in_the_environment_is_refused_too(make_api, home, monkeypatch, capsys):
    api = make_api(30)
    configure(monkeypatch, api, token="your-developer-token")
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 2, result.err
    assert _one_line(result.err).startswith(
        "error: api_token (from SOURCES__CHASTER__API_TOKEN) is still the placeholder"
    )
    assert api.count() == 0


# -- session ids that start with '-' -----------------------------------------------------------


def test_a_session_id_starting_with_a_dash_works_in_both_forms(make_api, home, monkeypatch):
    api = make_api(300)
    dashed = [s for s in api.population.session_ids(SLUG) if s.startswith("-")]
    assert len(dashed) >= 2  # the stand-in's ids are nanoids: about one in 32 starts with '-'
    env = standin_env(api)
    assert run_process("--quiet", "--duckdb", "out.duckdb", env=env).code == 0
    for session_id in dashed[:2]:
        api.population.change(session_id, score=7)
    api.clear_log()
    result = run_process(
        "--quiet",
        "--duckdb",
        "out.duckdb",
        "--session-id",
        dashed[0],
        f"--session-id={dashed[1]}",
        env=env,
    )
    assert result.code == 0, result.err
    assert [(r.method, r.path) for r in api.requests] == [
        ("GET", f"/api/extensions/sessions/{session_id}") for session_id in dashed[:2]
    ]
    stored = query(
        home / "out.duckdb",
        "select session_id, data->>'$.score' from chaster.sessions where session_id in (?, ?)",
        dashed[:2],
    )
    assert sorted(stored) == sorted((session_id, "7") for session_id in dashed[:2])


def test_an_option_after_session_id_is_still_a_missing_value(home, capsys):
    with pytest.raises(SystemExit) as stopped:
        run_cli(capsys, "--session-id", "--full-refresh")
    assert stopped.value.code == 2
    assert "argument --session-id: expected one argument" in capsys.readouterr().err


def test_help_says_both_forms_of_a_dashed_session_id_work(home):
    result = run_process("--help", env={"COLUMNS": "80"})
    assert result.code == 0
    assert "--session-id=-xBPLPd_TTiZ7QvQalwRd" in result.out  # whole, not cut at a hyphen
    text = " ".join(result.out.split())
    assert "--session-id -xBPLPd_TTiZ7QvQalwRd or --session-id=-xBPLPd_TTiZ7QvQalwRd" in text


@pytest.mark.parametrize("bad", ["", " ", "a/b", "x?y=1"])
def test_a_session_id_that_cannot_be_one_is_refused_before_any_request(
    make_api, home, monkeypatch, capsys, bad
):
    api = make_api(50)
    configure(monkeypatch, api)
    result = run_cli(capsys, "--duckdb", "out.duckdb", "--session-id", bad)
    assert result.code == 2
    assert result.err.startswith(f"error: session id {bad.strip()!r} is not a Chaster session id")
    assert api.requests == []
    assert not (home / "out.duckdb").exists()


def test_a_copied_session_id_with_spaces_around_it_is_read(make_api, home, monkeypatch, capsys):
    api = make_api(50)
    configure(monkeypatch, api)
    session_id = api.population.session_ids(SLUG)[0]
    result = run_cli(capsys, "--duckdb", "out.duckdb", "--session-id", f" {session_id} ")
    assert result.code == 0, result.err
    assert [(r.method, r.path) for r in api.requests] == [
        ("GET", f"/api/extensions/sessions/{session_id}")
    ]
    assert query("out.duckdb", "select session_id from chaster.sessions") == [(session_id,)]
