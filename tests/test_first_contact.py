"""A new user's first contact, through the doors the README shows: no test-only flags.

The default run with no `--duckdb` from an empty folder and from the project root, the README's
queries on the file it wrote, every setting of the README's table given a bad value, a token
pasted with a newline, a plain-http base URL, an API that caps pages below 100, a host that
does not resolve, and a descending backfill killed part-way while the API keeps changing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import duckdb
import pytest

from chaster_sessions.settings import DEFAULT_DUCKDB, SETTINGS, markdown_table
from conftest import (
    ROOT,
    SLUG,
    TOKEN,
    configure,
    killed_after_commits,
    process_env,
    query,
    run_cli,
    run_process,
    standin_env,
    stored_sessions,
)

README = (ROOT / "README.md").read_text()


def _user_env(api, tmp: Path) -> dict[str, str]:
    """What a user sets, as the README says: token and slug (and, here, the stand-in's URL);
    nothing points at a test folder for settings."""
    return process_env(
        drop=("DLT_PROJECT",), DLT_DATA_DIR=str(tmp / "dlt-home"), **standin_env(api)
    )


def _run_in(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "pipelines" / "sessions.py"), *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _readme_queries() -> list[str]:
    """Every statement of the README's ```sql blocks."""
    blocks = re.findall(r"```sql\n(.*?)```", README, re.S)
    statements = []
    for block in blocks:
        text = "\n".join(line.split("--")[0] for line in block.splitlines())
        statements += [s.strip() for s in text.split(";") if s.strip()]
    return statements


def test_default_run_from_an_empty_folder_and_the_readme_queries(make_api, tmp_path):
    api = make_api(250)
    empty = tmp_path / "empty"
    empty.mkdir()
    first = _run_in(empty, _user_env(api, tmp_path))
    assert first.returncode == 0, first.stderr
    assert "250 new" in first.stdout
    database = empty / DEFAULT_DUCKDB
    assert f"DuckDB: {database}" in first.stdout
    assert sorted(p.name for p in empty.iterdir()) == [DEFAULT_DUCKDB]
    assert stored_sessions(database) == api.population.truth(SLUG)
    statements = _readme_queries()
    assert len(statements) >= 7
    with duckdb.connect(str(database), read_only=True) as con:
        for sql in statements:
            con.execute(sql).fetchall()  # by plain schema.table names, as written
        assert con.execute("select count(*) from chaster.sessions").fetchone() == (250,)
    api.population.add(SLUG, 3)
    again = _run_in(empty, _user_env(api, tmp_path))
    assert again.returncode == 0, again.stderr
    assert "3 new" in again.stdout


# it writes chaster.duckdb (and its .wal) at the project root, which test_package copies: under
# pytest-xdist the two run in one worker, one after the other
@pytest.mark.xdist_group("project-root")
def test_default_run_from_the_project_root(make_api, tmp_path):
    api = make_api(120)
    database = ROOT / DEFAULT_DUCKDB
    assert not database.exists(), "a stray database at the project root"
    try:
        result = _run_in(ROOT, _user_env(api, tmp_path))
        assert result.returncode == 0, result.stderr
        assert stored_sessions(database) == api.population.truth(SLUG)
    finally:
        database.unlink(missing_ok=True)
        Path(f"{database}.wal").unlink(missing_ok=True)


@pytest.mark.parametrize("name", ["chaster.duckdb", "analytics.duckdb", "chaster_staging.duckdb"])
def test_a_duckdb_file_named_like_a_schema_is_refused(make_api, home, monkeypatch, capsys, name):
    api = make_api(30)
    configure(monkeypatch, api)
    result = run_cli(capsys, "--duckdb", name)
    assert result.code == 2
    assert result.err.startswith(f"error: the DuckDB file {name} has the name of a schema")
    assert len(result.err.strip().splitlines()) == 1
    assert api.count() == 0
    assert not (home / name).exists()


def test_the_readme_settings_table_is_the_one_the_checks_use():
    assert markdown_table() in README


def test_the_committed_config_sets_only_the_defaults():
    """`.dlt/config.toml` is what `python pipelines/sessions.py` reads from the project: a value
    there that differs from the settings table would make the README's defaults untrue."""
    committed = tomllib.loads((ROOT / ".dlt" / "config.toml").read_text())["sources"]["chaster"]
    defaults = {s.name: s.default for s in SETTINGS}
    assert committed  # the file sets some; each one must be the default
    assert {key: committed[key] for key in committed} == {key: defaults[key] for key in committed}


def _bad_values() -> list[tuple[str, str]]:
    """A wrong value for every key of the settings table, by its declared type and range."""
    cases = []
    for s in SETTINGS:
        if s.type in ("integer", "number"):
            cases.append((s.name, "abc"))
            low = s.minimum if s.minimum is not None else 0
            cases.append((s.name, str(int(low) - 1 if not s.minimum_exclusive else int(low))))
            if s.maximum is not None:
                cases.append((s.name, str(int(s.maximum) + 1)))
        elif s.type == "boolean":
            cases.append((s.name, "maybe"))
        elif s.type == "choice":
            cases.append((s.name, "sideways"))
    cases += [("base_url", "ftp://example.org"), ("api_token", "tok\x01en"), ("extension_slug", "")]
    return cases


@pytest.mark.parametrize(("setting", "value"), _bad_values())
def test_every_bad_setting_is_one_line_exit_2_and_nothing_written(
    make_api, home, monkeypatch, capsys, setting, value
):
    api = make_api(30)
    configure(monkeypatch, api, **{setting: value})
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 2, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert setting in lines[0] or setting.upper() in lines[0]
    assert "unexpected" not in lines[0]
    assert api.count() == 0
    assert not (home / "out.duckdb").exists()


@pytest.mark.parametrize(
    ("line", "setting"),
    [
        ("page_size = 0", "page_size"),
        ('requests_per_minute = "lots"', "requests_per_minute"),
        ("request_timeout = -1", "request_timeout"),
        ('refresh = "maybe"', "refresh"),
        ("max_attempts = 0", "max_attempts"),
        ("max_rate_limit_wait = -5", "max_rate_limit_wait"),
        ("chunk_pages = -1", "chunk_pages"),
    ],
)
def test_bad_settings_from_config_toml(make_api, home, monkeypatch, capsys, line, setting):
    api = make_api(30)
    configure(monkeypatch, api)
    monkeypatch.delenv(f"SOURCES__CHASTER__{setting.upper()}", raising=False)  # env would win
    (home / "project" / ".dlt" / "config.toml").write_text(f"[sources.chaster]\n{line}\n")
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 2, result.err
    assert result.err.startswith(f"error: {setting} ")
    assert api.count() == 0


@pytest.mark.parametrize("pasted", [f"{TOKEN}\n", f"  {TOKEN}  ", f"\t{TOKEN}\r\n"])
def test_a_pasted_token_is_trimmed_and_never_printed(make_api, home, monkeypatch, capsys, pasted):
    api = make_api(50)
    configure(monkeypatch, api, token=pasted)
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 0, result.err
    assert {r.authorization for r in api.requests} == {f"Bearer {TOKEN}"}
    assert TOKEN not in result.out + result.err


def test_a_token_a_header_cannot_carry_is_refused_without_showing_it(
    make_api, home, monkeypatch, capsys
):
    api = make_api(50)
    configure(monkeypatch, api, token=f"{TOKEN}\nX-Injected: 1")
    result = run_cli(capsys, "--verbose", "--duckdb", "out.duckdb")
    assert result.code == 2
    assert "api_token contains a character an HTTP header cannot carry" in result.err
    assert TOKEN not in result.out + result.err
    assert api.count() == 0


def test_the_last_resort_handler_strikes_secrets_from_any_message(monkeypatch):
    from chaster_sessions.cli import known_secrets, redact

    monkeypatch.setenv("SOURCES__CHASTER__API_TOKEN", f"{TOKEN}\n")
    monkeypatch.setenv("SOURCES__CHASTER__PSEUDONYM_KEY", "key-9f8e7d")
    message = repr(ValueError(f"Invalid header value b'Bearer {TOKEN}\\n' with key-9f8e7d"))
    cleaned = redact(message, known_secrets())
    assert TOKEN not in cleaned and "key-9f8e7d" not in cleaned
    assert "Invalid header value" in cleaned


def test_plain_http_is_refused_unless_loopback_or_allowed(make_api, home, monkeypatch, capsys):
    api = make_api(30)
    configure(monkeypatch, api)
    monkeypatch.setenv("SOURCES__CHASTER__BASE_URL", "http://api.chaster.app")
    refused = run_cli(capsys, "--duckdb", "out.duckdb")
    assert refused.code == 2
    assert "plain http, which would send the API token in clear text" in refused.err
    assert "SOURCES__CHASTER__ALLOW_INSECURE_HTTP" in refused.err
    monkeypatch.setenv("SOURCES__CHASTER__BASE_URL", api.url.replace("127.0.0.1", "localhost"))
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0  # loopback: the stand-in


def test_a_host_that_does_not_resolve_is_named_and_fails_fast(home, monkeypatch, capsys):
    monkeypatch.setenv("SOURCES__CHASTER__API_TOKEN", TOKEN)
    monkeypatch.setenv("SOURCES__CHASTER__EXTENSION_SLUG", SLUG)
    monkeypatch.setenv("SOURCES__CHASTER__BASE_URL", "https://api.chaster.invalid")
    started = time.monotonic()
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 5
    assert result.err.strip() == (
        "error: cannot resolve host 'api.chaster.invalid' (no such name, or no DNS); check "
        "SOURCES__CHASTER__BASE_URL and your network"
    )
    assert "requests: " not in result.out
    assert time.monotonic() - started < 15  # no backoff over max_attempts
    assert not (home / "out.duckdb").exists()


def test_the_page_cap_is_learned_and_kept(make_api, home, monkeypatch, capsys):
    api = make_api(260, page_cap=50)  # 400 "limit must not be greater than 50" above it
    configure(monkeypatch, api)
    first = run_cli(capsys, "--duckdb", "out.duckdb")
    assert first.code == 0, first.err
    assert stored_sessions("out.duckdb") == api.population.truth(SLUG)
    assert [r.body["limit"] for r in api.requests] == [100, 50, 50, 50, 50, 50, 50]
    assert api.count(status=400) == 1
    assert (
        "page size: 50 (the API refused 100: limit must not be greater than 50); kept for later "
        "runs" in first.out
    )
    api.population.add(SLUG, 2)
    api.clear_log()
    second = run_cli(capsys, "--duckdb", "out.duckdb")
    assert second.code == 0, second.err
    assert {r.body["limit"] for r in api.requests} == {50}  # remembered: no refusal again
    assert api.count(status=400) == 0


def test_a_page_cap_learned_by_a_run_that_then_fails_is_reported(
    make_api, home, monkeypatch, capsys
):
    """The walk learned the cap, then the API failed before the walk ended: the report and the
    runs row still say what the walk learned, as the summary of a finished run would."""
    api = make_api(260, page_cap=50)
    configure(monkeypatch, api, max_attempts=1)
    api.add_fault("500", times=10, after=3)  # the refusal and two pages, then errors
    result = run_cli(capsys, "--duckdb", "out.duckdb", "--report", "run.json")
    assert result.code == 5, result.err
    report = json.loads((home / "run.json").read_text())
    assert report["status"] == "failed"
    assert report["extensions"][SLUG]["page_size"] == (
        "50 (the API refused 100: limit must not be greater than 50)"
    )


def test_an_explicit_page_size_above_the_cap_names_the_setting(make_api, home, monkeypatch, capsys):
    api = make_api(100, page_cap=50)
    configure(monkeypatch, api, page_size=80)
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 2
    assert result.err.startswith("error: page_size 80 is more than the API accepts (at most 50)")
    assert "SOURCES__CHASTER__PAGE_SIZE" in result.err


def test_a_killed_descending_backfill_resumes_whole(make_api, home, tmp_path):
    api = make_api(1000, order="desc", latency=0.03)  # 5 chunks of two pages
    killed_after_commits(home, 2, "--duckdb", "out.duckdb", env=standin_env(api, chunk_pages="2"))
    committed = query("out.duckdb", "select count(*) from chaster.sessions")[0][0]
    assert 0 < committed < 1000
    # while nobody ran: new sessions above the cut walk's top, some of them already ended
    added = api.population.add(SLUG, 10)
    for session_id in added[:6]:
        api.population.end(session_id, "unlocked")
    result = run_process("--duckdb", "out.duckdb", env=standin_env(api, chunk_pages="2"))
    assert result.code == 0, result.err
    assert stored_sessions(tmp_path / "out.duckdb") == api.population.truth(SLUG)


def test_task_run_help_does_not_announce_the_demo(home):
    done = subprocess.run(
        [sys.executable, str(ROOT / "task.py"), "run", "--help"],
        capture_output=True,
        text=True,
        timeout=600,
        env={k: v for k, v in os.environ.items() if not k.startswith("SOURCES__")},
    )
    assert done.returncode == 0, done.stderr
    assert "usage: chaster-sessions" in done.stdout
    assert "running the built-in demo" not in done.stderr


def test_settings_errors_come_before_the_demo_starts(home):
    result = run_process("--demo", env={"SOURCES__CHASTER__PAGE_SIZE": "abc"})
    assert result.code == 2
    assert "demo: serving" not in result.err
    assert result.err.startswith("error: page_size 'abc' is not a whole number")
