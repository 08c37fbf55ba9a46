"""Every failure ends with one readable line and its exit code, and loses nothing.

A failed run leaves the DuckDB file and the stored cursors exactly as they were, so the next
run completes the work.
"""

from __future__ import annotations

import pytest

from conftest import (
    SLUG,
    TOKEN,
    configure,
    db_snapshot,
    loaded_then_grown,
    run_cli,
    stored_sessions,
)


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("repeat_cursor", "ignored paginationLastId"),
        ("empty_has_more", "empty page with hasMore=true"),
        ("missing_pagination_id", "without paginationId"),
    ],
)
def test_paging_guards_stop_the_run_and_keep_the_data(
    make_api, home, monkeypatch, capsys, first_load, fault, message
):
    api = make_api(300)
    before = loaded_then_grown(api, home, monkeypatch, first_load)
    api.add_fault(fault, after=1)  # the second page of the next run misbehaves
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 6
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert "Traceback" not in result.err
    assert api.count("search") == 2  # stopped at once, no loop
    assert db_snapshot(home / "out.duckdb") == before
    # the next run completes the work from where the data stands
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    assert stored_sessions("out.duckdb") == api.population.truth(SLUG)


def test_guard_fires_on_a_first_load_too(make_api, home, monkeypatch, capsys):
    api = make_api(300)
    configure(monkeypatch, api)
    api.add_fault("repeat_cursor", after=1)
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 6
    assert api.count("search") == 2


def test_no_token_says_how_to_set_it_and_mentions_demo(home, capsys):
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 2
    assert "SOURCES__CHASTER__API_TOKEN" in result.err
    assert "--demo" in result.err
    assert not (home / "out.duckdb").exists()


def test_wrong_token_is_refused_cleanly(make_api, home, monkeypatch, capsys, first_load):
    api = make_api(300)
    before = loaded_then_grown(api, home, monkeypatch, first_load)
    configure(monkeypatch, api, token="not-the-token-4c1d")
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 3
    assert "refused the token" in result.err
    assert "not-the-token-4c1d" not in result.err + result.out
    assert api.count("search") == 1  # 401 is not retried
    assert db_snapshot(home / "out.duckdb") == before


def test_unknown_extension_is_named(make_api, home, monkeypatch, capsys):
    api = make_api(30)
    configure(monkeypatch, api, slug="no-such-extension")
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 4
    assert "'no-such-extension'" in result.err
    assert not (home / "out.duckdb").exists()


@pytest.mark.parametrize(
    ("setting", "value", "needle"),
    [
        ("status", "paused", "status 'paused'"),
        ("page_size", "0", "out of range (allowed: 1..100)"),
        ("page_size", "101", "out of range (allowed: 1..100)"),
        ("base_url", "ftp://example.org", "not an http(s) URL"),
        ("sort_order", "sideways", "sort_order"),
    ],
)
def test_invalid_settings_fail_before_any_request(
    make_api, home, monkeypatch, capsys, setting, value, needle
):
    api = make_api(30)
    configure(monkeypatch, api, **{setting: value})
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 2, result.err
    assert needle in result.err
    assert api.count() == 0
    assert not (home / "out.duckdb").exists()


def test_unreachable_api_fails_fast(home, monkeypatch, capsys):
    monkeypatch.setenv("SOURCES__CHASTER__API_TOKEN", TOKEN)
    monkeypatch.setenv("SOURCES__CHASTER__EXTENSION_SLUG", SLUG)
    monkeypatch.setenv("SOURCES__CHASTER__BASE_URL", "http://127.0.0.1:9")  # discard port
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 5
    assert "cannot connect to http://127.0.0.1:9" in result.err


def test_not_a_duckdb_file(api, home, monkeypatch, capsys):
    configure(monkeypatch, api)
    (home / "notes.duckdb").write_text("these are my notes, not a database\n")
    result = run_cli(capsys, "--duckdb", "notes.duckdb")
    assert result.code == 7
    assert "cannot be opened as DuckDB" in result.err
    assert api.count() == 0
    assert (home / "notes.duckdb").read_text() == "these are my notes, not a database\n"
