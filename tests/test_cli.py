"""The command as a user runs it: its own process, --help, the demo, and overlapping runs."""

from __future__ import annotations

import math
import time

from chaster_sessions.cli import DEMO_SESSIONS, demo_population
from conftest import (
    SLUG,
    TOKEN,
    query,
    run_process,
    standin_env,
    start_process,
    stored_sessions,
)


def test_help_lists_options_and_exit_codes(home):
    result = run_process("--help")
    assert result.code == 0
    for option in ("--duckdb", "--demo", "--status", "--extension-slug", "--full-refresh"):
        assert option in result.out
    assert "exit codes" in result.out and "another run of this pipeline" in result.out


def test_demo_end_to_end_without_a_token(home):
    first = run_process("--demo")
    assert first.code == 0, first.err
    assert f"{DEMO_SESSIONS:,} new" in first.out
    assert f"{DEMO_SESSIONS:,} in total" in first.out
    assert str(home / "chaster_demo.duckdb") in first.out
    assert "sessions__lock__extensions" in first.out
    assert len(stored_sessions(home / "chaster_demo.duckdb")) == DEMO_SESSIONS
    assert not (home / "chaster.duckdb").exists()  # demo data never mixes with real data
    again = run_process("--demo")
    assert again.code == 0
    # nothing new: the cursor page plus the sweep of the locks that were running, then the
    # demo's action logs: a demo run's 200 log requests (its backlog is far longer)
    running = len(demo_population().truth(SLUG, "locked"))
    searches = 1 + math.ceil(running / 100)
    assert "0 new" in again.out
    assert f"requests: {searches + 200} ({searches} search, 0 get, 200 logs)" in again.out


def test_settings_from_toml_files(home, make_api):
    api = make_api(120)
    project = home / "project" / ".dlt"
    (project / "config.toml").write_text(
        f'[sources.chaster]\nextension_slug = "{SLUG}"\nbase_url = "{api.url}"\n'
        "requests_per_minute = 100000\npage_size = 50\n"
    )
    (project / "secrets.toml").write_text(f'[sources.chaster]\napi_token = "{TOKEN}"\n')
    result = run_process("--duckdb", "out.duckdb")
    assert result.code == 0, result.err
    assert api.count("search") == 3
    assert [r.body["limit"] for r in api.requests] == [50, 50, 50]


def test_malformed_config_toml_is_one_line(home):
    (home / "project" / ".dlt" / "config.toml").write_text("[sources.chaster\nstatus = 'all'\n")
    result = run_process("--duckdb", "out.duckdb")
    assert result.code == 2, result.err
    assert "config.toml" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not (home / "out.duckdb").exists()


def test_second_run_while_one_is_going_exits_with_its_own_code(home, make_api):
    api = make_api(400, latency=0.15)  # 4 pages, slow enough to overlap
    env = standin_env(api)
    first = start_process("--duckdb", "out.duckdb", env=env)
    deadline = time.monotonic() + 30
    while api.count("search") == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    second = run_process("--duckdb", "out.duckdb", env=env)
    assert second.code == 8
    assert "another run of pipeline 'chaster' is still going" in second.err
    _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert query("out.duckdb", "select count(*) from chaster.sessions")[0][0] == 400
