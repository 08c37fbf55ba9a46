"""Rate limits and transient faults are absorbed; faults that persist fail cleanly, losing nothing.

The stand-in enforces a rolling-window budget (scaled down to one second so the tests are quick)
and injects the faults a real API behind a proxy produces. Every recoverable case must end with
exactly the stand-in's sessions stored; every fatal one with the database and cursors untouched.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from chaster_sessions import Settings
from chaster_sessions.client import retry_delay
from conftest import (
    SLUG,
    configure,
    db_snapshot,
    duplicate_rows,
    loaded_then_grown,
    query,
    run_cli,
    stored_sessions,
)

# the retries below wait a tenth of the default backoff; the default is pinned by
# `test_retry_delay_doubles_from_the_backoff_up_to_30_s` and used by test_secrets' faulty runs
QUICK_BACKOFF = "0.05"


def test_retry_delay_doubles_from_the_backoff_up_to_30_s():
    assert Settings.__dataclass_fields__["retry_backoff"].default == 0.5
    assert [retry_delay(0.5, n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert retry_delay(0.0, 3) == 0


def _logged(api: Any, requests: int, endpoint: str | None = None) -> int:
    """The stand-in's count of requests once it reaches `requests` (or after 5 s): it logs a
    request when it answers, and it answers a timed-out one only after its delay."""
    deadline = time.monotonic() + 5
    while api.count(endpoint) < requests and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)  # and then no more
    return int(api.count(endpoint))


def _reported(out: str, pattern: str) -> int:
    """A number from the run summary, so tests compare what the user is told with the truth."""
    match = re.search(pattern, out)
    assert match, f"{pattern!r} not in summary:\n{out}"
    return int(match.group(1))


@pytest.mark.parametrize("unit", ["seconds", "epoch", "epoch_ms"])
def test_rate_headers_are_followed_without_a_single_429(make_api, home, monkeypatch, capsys, unit):
    # The budget is spent long before the run ends; no Retry-After is ever sent, only the
    # X-RateLimit-* headers, with the reset in the unit under test.
    api = make_api(300, rate_limit=10, rate_window=1.0, reset_unit=unit, retry_after=False)
    configure(monkeypatch, api, page_size=20)  # 15 pages, paced far above the budget
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 0, result.err
    assert api.count(status=429) == 0
    assert api.count("search") == 15
    assert stored_sessions("out.duckdb") == api.population.truth(SLUG)
    assert "0 x 429" in result.out
    assert float(re.search(r"waited ([\d.]+)s", result.out).group(1)) > 0


@pytest.mark.parametrize(
    "retry_after", [True, False], ids=["with-retry-after", "without-retry-after"]
)
def test_429s_are_waited_out_and_counted(make_api, home, monkeypatch, capsys, retry_after):
    # No rate headers at all: the client learns of the budget only from the 429s.
    api = make_api(300, rate_limit=10, rate_window=1.0, rate_headers=False, retry_after=retry_after)
    configure(monkeypatch, api, page_size=20)
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 0, result.err
    rejected = api.count(status=429)
    assert rejected >= 1
    assert api.count("search", status=201) == 15  # every page fetched once, none skipped
    assert stored_sessions("out.duckdb") == api.population.truth(SLUG)
    assert _reported(result.out, r"(\d+) x 429") == rejected
    assert _reported(result.out, r"requests: (\d+)") == api.count()


def test_pacing_alone_stays_under_the_budget(make_api, home, monkeypatch, capsys):
    # 8 requests a second against a budget of 10 per rolling second, no headers to help.
    api = make_api(300, rate_limit=10, rate_window=1.0, rate_headers=False)
    configure(monkeypatch, api, page_size=20)
    monkeypatch.setenv("SOURCES__CHASTER__REQUESTS_PER_MINUTE", "480")
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 0, result.err
    assert api.count(status=429) == 0
    assert api.count() == 15
    assert stored_sessions("out.duckdb") == api.population.truth(SLUG)


def test_long_waits_are_announced_while_they_happen(make_api, home, monkeypatch, capsys):
    from chaster_sessions.cli import main

    # one request per 3 s: the second page is refused with a Retry-After of about 3 s
    api = make_api(150, rate_limit=1, rate_window=3.0, rate_headers=False)
    configure(monkeypatch, api)
    capsys.readouterr()
    code = main(["--duckdb", "out.duckdb"])  # not --quiet: progress lines on stderr
    err = capsys.readouterr().err
    assert code == 0, err
    assert api.count(status=429) == 1
    assert re.search(r"waiting [23]s: the API answered 429 Too Many Requests", err), err
    assert stored_sessions("out.duckdb") == api.population.truth(SLUG)


def test_a_wait_over_the_allowance_fails_cleanly(make_api, home, monkeypatch, capsys, first_load):
    api = make_api(300)
    before = loaded_then_grown(api, home, monkeypatch, first_load)
    api.config.rate_limit, api.config.rate_window = 1, 60.0
    api.config.rate_headers = False
    monkeypatch.setenv("SOURCES__CHASTER__MAX_RATE_LIMIT_WAIT", "5")
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 5
    assert result.err.strip() == (
        "error: rate limited by the API for over 5s in total (HTTP 429); raise "
        "SOURCES__CHASTER__MAX_RATE_LIMIT_WAIT or lower SOURCES__CHASTER__REQUESTS_PER_MINUTE "
        "if other clients share the budget"
    )
    assert api.count() == 2  # one page, then the 429 whose Retry-After is beyond the allowance
    assert db_snapshot(home / "out.duckdb") == before
    api.config.rate_limit = None
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    assert stored_sessions("out.duckdb") == api.population.truth(SLUG)


# what each fault looks like in the stand-in's log: the status it answered with
FAULT_STATUS = {"500": 500, "502_html": 502, "503": 503, "reset": 0, "bad_json": 201, "429": 429}


@pytest.mark.parametrize("kind", ["500", "502_html", "503", "reset", "timeout", "bad_json", "429"])
@pytest.mark.parametrize("endpoint", ["search", "get"])
def test_transient_faults_are_retried_and_the_data_is_complete(
    make_api, home, monkeypatch, capsys, first_load, kind, endpoint
):
    api = make_api(300)
    loaded_then_grown(api, home, monkeypatch, first_load)
    api.population.end(api.population.session_ids(SLUG, "locked")[0], "unlocked")
    # ending one running lock makes the refresh re-read it with a GET (see test_freshness)
    monkeypatch.setenv("SOURCES__CHASTER__REQUEST_TIMEOUT", "0.5")
    monkeypatch.setenv("SOURCES__CHASTER__RETRY_BACKOFF", QUICK_BACKOFF)
    api.add_fault(
        kind, endpoint=endpoint, times=2, after=1 if endpoint == "search" else 0, seconds=2
    )
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 0, result.err
    assert stored_sessions("out.duckdb") == api.population.truth(SLUG)
    assert duplicate_rows("out.duckdb") == 0
    if kind == "429":
        assert _reported(result.out, r"(\d+) x 429") == 2
    else:
        assert _reported(result.out, r"(\d+) retries") == 2
    if kind in FAULT_STATUS:
        assert api.count(endpoint, status=FAULT_STATUS[kind]) >= 2
    reported = _reported(result.out, r"requests: (\d+)")
    assert reported == (_logged(api, reported) if kind == "timeout" else api.count())


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("500", "HTTP 500 Internal Server Error"),
        ("502_html", "HTTP 502 Bad Gateway (an HTML error page, likely from a proxy)"),
        ("reset", "connection error"),
        ("timeout", "no answer within 0.5s"),
        ("bad_json", "HTTP 201 with a body that is not JSON"),
    ],
)
def test_persistent_faults_fail_cleanly_and_lose_nothing(
    make_api, home, monkeypatch, capsys, first_load, kind, problem
):
    api = make_api(300)
    before = loaded_then_grown(api, home, monkeypatch, first_load)
    monkeypatch.setenv("SOURCES__CHASTER__MAX_ATTEMPTS", "3")
    monkeypatch.setenv("SOURCES__CHASTER__REQUEST_TIMEOUT", "0.5")
    monkeypatch.setenv("SOURCES__CHASTER__RETRY_BACKOFF", QUICK_BACKOFF)
    api.add_fault(kind, times=100, after=1, seconds=1)  # the second page never comes
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 5
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: POST /api/extensions/sessions/search failed 3 times: ")
    assert problem in lines[0]
    assert "Traceback" not in result.err
    searches = _logged(api, 4, "search") if kind == "timeout" else api.count("search")
    assert searches == 4  # one good page, then exactly max_attempts tries
    assert db_snapshot(home / "out.duckdb") == before  # the good page is not half-loaded
    api.config.faults.clear()
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    assert stored_sessions("out.duckdb") == api.population.truth(SLUG)


def test_a_fault_mid_backfill_keeps_the_committed_chunks(make_api, home, monkeypatch, capsys):
    api = make_api(600)
    configure(monkeypatch, api, chunk_pages=2, max_attempts=2, retry_backoff=QUICK_BACKOFF)
    api.add_fault("503", times=100, after=2)  # pages 1-2 commit as a chunk; page 3 never comes
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 5
    assert query("out.duckdb", "select count(*) from chaster.sessions")[0][0] == 200
    api.config.faults.clear()
    api.clear_log()
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 0, result.err
    # pages 3 to 6, nothing fetched twice; then the resumed run (no longer a first load)
    # re-reads the running locks of the first chunk: one `locked` page
    assert api.count("search") == 4 + 1
    assert stored_sessions("out.duckdb") == api.population.truth(SLUG)
    assert "resumed an interrupted run" in result.out
