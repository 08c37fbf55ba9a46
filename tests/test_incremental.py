"""Later runs fetch only what is new, whichever way the API sorts, and never store twice."""

from __future__ import annotations

import pytest

from conftest import SLUG, configure, query, run_cli, stored_sessions


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_second_run_fetches_only_new_sessions(make_api, home, monkeypatch, capsys, order):
    api = make_api(1000, order=order)
    configure(monkeypatch, api, refresh="false")  # the cursor alone; refresh has its own tests
    first = run_cli(capsys, "--duckdb", "out.duckdb")
    assert first.code == 0, first.err
    assert api.count("search") == 10
    assert f"API sort order seen: {order}" in first.out

    added = api.population.add(SLUG, 7)
    api.clear_log()
    second = run_cli(capsys, "--duckdb", "out.duckdb")
    assert second.code == 0, second.err
    assert api.count("search") == 1  # 7 new sessions fit in one page
    assert "7 new" in second.out
    assert stored_sessions("out.duckdb") == api.population.truth(SLUG)
    assert set(added) <= set(stored_sessions("out.duckdb"))

    api.clear_log()
    third = run_cli(capsys, "--duckdb", "out.duckdb")
    assert third.code == 0
    assert api.count("search") == 1  # nothing new: one request
    assert "0 new" in third.out


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_many_new_sessions_page_from_the_cursor(make_api, home, monkeypatch, capsys, order):
    api = make_api(500, order=order)
    configure(monkeypatch, api, page_size=50, refresh="false")
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    api.population.add(SLUG, 120)
    api.clear_log()
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    # asc: 3 pages after the cursor; desc: 3 pages down to the first known id
    assert api.count("search") == 3
    sent = [r.body["paginationLastId"] for r in api.requests]
    assert sent[0] is not None if order == "asc" else sent[0] is None
    assert query("out.duckdb", "select count(*), count(distinct session_id) from chaster.sessions")[
        0
    ] == (620, 620)


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_chunked_backfill_equals_one_shot(make_api, home, monkeypatch, capsys, order):
    api = make_api(1000, order=order)
    configure(monkeypatch, api, chunk_pages=3)
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 0, result.err
    assert "(4 chunks)" in result.out  # 10 pages in chunks of 3
    assert api.count("search") == 10  # chunk boundaries cost no extra request
    assert stored_sessions("out.duckdb") == api.population.truth(SLUG)
    loads = query("out.duckdb", "select count(*) from chaster._dlt_loads where status = 0")
    assert loads[0][0] == 4


def test_forced_order_that_contradicts_the_data_is_an_error(make_api, home, monkeypatch, capsys):
    api = make_api(300, order="desc")
    configure(monkeypatch, api, sort_order="asc")
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 6
    assert "descending order" in result.err
    assert not (home / "out.duckdb").exists()


def test_forced_order_pages_without_detection(make_api, home, monkeypatch, capsys):
    api = make_api(300, order="desc")
    configure(monkeypatch, api, sort_order="desc", refresh="false")
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    api.population.add(SLUG, 2)
    api.clear_log()
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    assert api.count("search") == 1
    assert len(stored_sessions("out.duckdb")) == 302


def test_status_filter_has_its_own_cursor(make_api, home, monkeypatch, capsys):
    api = make_api(1000)
    configure(monkeypatch, api)
    locked = run_cli(capsys, "--duckdb", "out.duckdb", "--status", "locked")
    assert locked.code == 0, locked.err
    assert stored_sessions("out.duckdb") == api.population.truth(SLUG, "locked")
    every = run_cli(capsys, "--duckdb", "out.duckdb", "--status", "all")
    assert every.code == 0
    # the `all` walk starts from scratch: a locked-only cursor proves nothing of the rest
    assert stored_sessions("out.duckdb") == api.population.truth(SLUG)


def test_several_extensions_each_keep_a_cursor(make_api, home, monkeypatch, capsys):
    api = make_api({"ext-a": 250, "ext-b": 120})
    configure(monkeypatch, api, slug=None, refresh="false")
    args = ["--duckdb", "out.duckdb", "--extension-slug", "ext-a", "--extension-slug", "ext-b"]
    first = run_cli(capsys, *args)
    assert first.code == 0, first.err
    assert "ext-a: 250 new" in first.out
    assert "ext-b: 120 new" in first.out
    api.population.add("ext-b", 3)
    api.clear_log()
    second = run_cli(capsys, *args)
    assert second.code == 0
    assert api.count("search") == 2  # one per extension
    assert "ext-a: 0 new" in second.out and "ext-b: 3 new" in second.out
    counts = dict(query("out.duckdb", "select slug, count(*) from chaster.sessions group by 1"))
    assert counts == {"ext-a": 250, "ext-b": 123}


def test_extension_slug_list_from_env_json(make_api, home, monkeypatch, capsys):
    api = make_api({"ext-a": 30, "ext-b": 20})
    configure(monkeypatch, api, slug='["ext-a", "ext-b"]')
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    assert len(stored_sessions("out.duckdb")) == 50


def test_full_refresh_walks_everything_again(make_api, home, monkeypatch, capsys):
    api = make_api(1000)
    configure(monkeypatch, api)
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    api.clear_log()
    again = run_cli(capsys, "--duckdb", "out.duckdb", "--full-refresh")
    assert again.code == 0
    assert api.count("search") == 10  # every page of 100 again
    assert query("out.duckdb", "select count(*), count(distinct session_id) from chaster.sessions")[
        0
    ] == (1000, 1000)


def test_new_duckdb_file_starts_from_scratch(make_api, home, monkeypatch, capsys):
    api = make_api(400)
    configure(monkeypatch, api)
    assert run_cli(capsys, "--duckdb", "a.duckdb").code == 0
    assert run_cli(capsys, "--duckdb", "b.duckdb").code == 0
    assert len(stored_sessions("b.duckdb")) == 400
    api.population.add(SLUG, 4)
    assert run_cli(capsys, "--duckdb", "b.duckdb").code == 0
    api.clear_log()
    # back to a.duckdb: its own cursor (from the file), so the 4 new ones come in too
    assert run_cli(capsys, "--duckdb", "a.duckdb").code == 0
    assert len(stored_sessions("a.duckdb")) == 404


def test_page_cap_clamped_silently_still_pages_correctly(make_api, home, monkeypatch, capsys):
    api = make_api(250, page_cap=40, cap_mode="clamp")
    configure(monkeypatch, api)
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    assert api.count("search") == 7  # 40 per page whatever we asked for
    assert len(stored_sessions("out.duckdb")) == 250


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_single_session_then_more_detects_order_later(make_api, home, monkeypatch, capsys, order):
    api = make_api(1, order=order)
    configure(monkeypatch, api)
    first = run_cli(capsys, "--duckdb", "out.duckdb")
    assert first.code == 0
    assert "API sort order seen: unknown" in first.out
    api.population.add(SLUG, 5)
    second = run_cli(capsys, "--duckdb", "out.duckdb")
    assert second.code == 0, second.err
    assert f"API sort order seen: {order}" in second.out
    assert stored_sessions("out.duckdb") == api.population.truth(SLUG)
