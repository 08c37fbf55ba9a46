"""Action logs: opt-in, incremental per session, within their budget, after the sessions.

Every check compares the entries stored with what the stand-in serves (`log_truth`) and counts
the log requests the stand-in received against the fewest the reading needs: one per session
read, plus a page for each further `limit` of new entries.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest

from conftest import SLUG, configure, query, run_cli, values_found

DB = "out.duckdb"


def stored_logs(path: Path | str = DB) -> dict[str, list[str]]:
    """session -> stored entry ids, oldest first."""
    found: dict[str, list[str]] = {}
    for session_id, log_id in query(
        path, "select session_id, log_id from chaster.action_logs order by log_id"
    ):
        found.setdefault(session_id, []).append(log_id)
    return found


def cursors(path: Path | str = DB) -> dict[str, tuple[Any, ...]]:
    """session -> (newest_log_id, complete, gone) of `action_log_cursors`."""
    rows = query(
        path, "select session_id, newest_log_id, complete, gone from chaster.action_log_cursors"
    )
    return {row[0]: row[1:] for row in rows}


def duplicate_entries(path: Path | str = DB) -> int:
    return int(
        query(path, "select count(*) - count(distinct log_id) from chaster.action_logs")[0][0]
    )


def pages_needed(entries: int, limit: int = 100) -> int:
    """Requests to read `entries` new entries of one session: one at least."""
    return max(1, math.ceil(entries / limit))


def summary_figures(out: str) -> tuple[int, int, int]:
    """(sessions read, log requests, new entries) from the summary's action logs line."""
    match = re.search(
        r"action logs: ([\d,]+) sessions read \(([\d,]+) requests\), ([\d,]+) new", out
    )
    assert match, out
    return tuple(int(g.replace(",", "")) for g in match.groups())  # type: ignore[return-value]


def test_off_by_default_makes_no_log_request(make_api, home, monkeypatch, capsys):
    api = make_api(300)
    configure(monkeypatch, api)
    result = run_cli(capsys, "--duckdb", DB)
    assert result.code == 0, result.err
    assert api.count("logs") == 0
    assert api.count() == api.count("search") == 3
    assert "action logs" not in result.out and "logs)" not in result.out
    tables = {row[0] for row in query(DB, "select table_name from information_schema.tables")}
    assert "action_logs" not in tables and "action_log_cursors" not in tables


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_backlog_carries_over_then_each_run_reads_only_whats_new(
    make_api, home, monkeypatch, capsys, order
):
    api = make_api(150, log_order=order)
    configure(monkeypatch, api, action_logs="true", action_log_requests="100")
    truth = api.population.log_truth(SLUG)
    running = set(api.population.session_ids(SLUG, "locked"))

    # first run: the sessions, then 100 log requests, running sessions first
    first = run_cli(capsys, "--duckdb", DB)
    assert first.code == 0, first.err
    assert api.count("logs") == 100
    read = set(cursors())
    assert running <= read  # the running ones come first
    stored = stored_logs()
    whole = {s for s in stored if stored[s] == truth[s]}
    # what the whole reads did not spend went to one long history the budget cut short: its
    # entries so far are stored; oldest first, its cursor stands at the last one (the next
    # read goes on from there); newest first, it has none (the next read starts again)
    cut = 100 - sum(pages_needed(len(truth[s])) for s in whole)
    cut_short = set(stored) - whole
    assert len(cut_short) == (1 if cut else 0)
    for session_id in cut_short:
        assert 0 < cut < pages_needed(len(truth[session_id]))
        assert stored[session_id] == truth[session_id][: len(stored[session_id])] or order == "desc"
        if order == "asc":
            assert cursors()[session_id][:2] == (stored[session_id][-1], False)
        else:
            assert session_id not in read
    assert read == whole | (cut_short if order == "asc" else set())
    entries = sum(map(len, stored.values()))
    assert summary_figures(first.out) == (len(whole) + len(cut_short), 100, entries)
    left = 150 - len(read)
    runs = math.ceil(left / (100 - len(running)))  # the running ones are read every run first
    plural = "s" if runs != 1 else ""
    assert f"{left:,} sessions not yet read (about {runs} run{plural} at 100 a run)" in first.out

    # runs until the backlog is read: each goes on with the rest, the running ones again
    for _ in range(5):
        result = run_cli(capsys, "--duckdb", DB)
        assert result.code == 0, result.err
        if "no stored session is left unread" in result.out:
            break
    assert set(cursors()) == set(truth)
    assert stored_logs() == truth
    assert duplicate_entries() == 0
    # ended sessions read after their end are complete; running ones are read again
    assert {s for s, (_, complete, _) in cursors().items() if not complete} == running

    # steady state: new entries on 3 running sessions, one of them past a page; one more ends
    busy = sorted(running)[:3]
    for session_id, n in zip(busy, (2, 5, 130), strict=True):
        api.population.add_log_entries(session_id, n)
    ended = sorted(running)[3]
    api.population.end(ended, "unlocked")
    api.clear_log()
    steady = run_cli(capsys, "--duckdb", DB)
    assert steady.code == 0, steady.err
    # one request per session that was running, one more page for the 130 new entries
    assert api.count("logs") == len(running) + 1
    assert stored_logs() == api.population.log_truth(SLUG)
    assert duplicate_entries() == 0
    assert cursors()[ended][1] is True  # read after its end: complete

    # nothing new: the running ones only, once each; the ended one is never read again
    api.clear_log()
    again = run_cli(capsys, "--duckdb", DB)
    assert again.code == 0, again.err
    assert api.count("logs") == len(running) - 1
    assert not any(ended in r.path for r in api.requests)
    assert summary_figures(again.out) == (len(running) - 1, len(running) - 1, 0)


def test_a_plain_pipeline_run_reads_the_logs_of_stored_sessions(make_api, home):
    import dlt

    from chaster_sessions import chaster_source

    api = make_api(100)
    pipeline = dlt.pipeline("plain_logs", destination=dlt.destinations.duckdb(str(home / DB)))
    source_args = {
        "api_token": "test-token-7f3a9c2e51",
        "extension_slug": SLUG,
        "base_url": api.url,
        "requests_per_minute": 100000,
        "action_logs": True,
    }
    pipeline.run(chaster_source(**source_args))
    # the first run stored the sessions; their logs come with the next run
    assert api.count("logs") == 0
    pipeline.run(chaster_source(**source_args))
    truth = api.population.log_truth(SLUG)
    dataset = pipeline.dataset_name
    sql = f"select session_id, log_id from {dataset}.action_logs order by log_id"  # noqa: S608
    rows = query(home / DB, sql)
    stored: dict[str, list[str]] = {}
    for session_id, log_id in rows:
        stored.setdefault(session_id, []).append(log_id)
    assert stored == {s: ids for s, ids in truth.items()}
    assert api.count("logs") == sum(pages_needed(len(ids)) for ids in truth.values())


def test_pseudonymous_logs_name_people_as_their_sessions_do(make_api, home, monkeypatch, capsys):
    api = make_api(50)
    configure(
        monkeypatch,
        api,
        action_logs="true",
        privacy="pseudonymous",
        pseudonym_key="pseudonym-key-5d21e0",
    )
    assert run_cli(capsys, "--duckdb", DB).code == 0
    people: set[str] = set()
    for session_id in api.population.session_ids(SLUG):
        for entry in api.population.log_entries(session_id):
            user = entry.get("user")
            if user:
                people.update((user["_id"], user["username"]))
    assert len(people) > 20
    assert values_found(DB, people) == set()  # no id or name of a person is stored
    # the same person gets the same pseudonym in both tables
    matched = query(
        DB,
        "select count(*) from chaster.action_logs l join chaster.sessions s "
        "on s.session_id = l.session_id where l.role = 'user' "
        "and l.user___id = s.lock__user___id and l.user__username = s.lock__user__username",
    )[0][0]
    wearer_rows = query(DB, "select count(*) from chaster.action_logs where role = 'user'")[0][0]
    assert wearer_rows > 100 and matched == wearer_rows

    # negative control: without pseudonyms, the same search finds the people
    configure(monkeypatch, api, action_logs="true", privacy="full")
    assert run_cli(capsys, "--duckdb", "full.duckdb").code == 0
    assert run_cli(capsys, "--duckdb", "full.duckdb").code == 0
    assert len(values_found("full.duckdb", people)) > 20


def test_the_wearer_sees_less_and_a_small_cap_is_learned(make_api, home, monkeypatch, capsys):
    api = make_api(200, log_page_cap=30)
    configure(monkeypatch, api, action_logs="true", action_log_role="wearer")
    result = run_cli(capsys, "--duckdb", DB)
    assert result.code == 0, result.err
    wearer, keyholder = api.population.log_truth(SLUG, "wearer"), api.population.log_truth(SLUG)
    assert stored_logs() == wearer
    assert sum(map(len, wearer.values())) < sum(map(len, keyholder.values()))
    roles = {(r.body or {}).get("role") for r in api.requests if r.path.endswith("/logs/search")}
    assert roles == {"wearer"}
    # the refused limit of 100 once, then 30 for every page after
    refused = api.count("logs", status=400)
    assert refused == 1
    assert api.count("logs") == refused + sum(pages_needed(len(ids), 30) for ids in wearer.values())


def test_session_id_rereads_its_log_and_a_deleted_session_is_gone(
    make_api, home, monkeypatch, capsys
):
    api = make_api(200)
    configure(monkeypatch, api, action_logs="true")
    assert run_cli(capsys, "--duckdb", DB).code == 0
    session_id = api.population.session_ids(SLUG, "locked")[0]
    api.population.add_log_entries(session_id, 4)
    api.clear_log()
    result = run_cli(capsys, "--duckdb", DB, "--session-id", session_id)
    assert result.code == 0, result.err
    assert api.count("get") == 1  # the session once, not again in the logs' chunk
    log_requests = [r for r in api.requests if r.path.endswith("/logs/search")]
    whole = api.population.log_truth(SLUG)[session_id]
    assert [r.path.split("/")[4] for r in log_requests] == [session_id] * pages_needed(len(whole))
    assert stored_logs()[session_id] == whole

    gone = api.population.session_ids(SLUG, "locked")[1]
    api.population.delete(gone)
    result = run_cli(capsys, "--duckdb", DB)
    assert result.code == 0, result.err
    assert cursors()[gone][1:] == (True, True)  # complete and gone: never asked for again
    assert "1 session gone (HTTP 404)" in result.out


def test_transient_faults_on_logs_are_retried(make_api, home, monkeypatch, capsys):
    api = make_api(100)
    configure(monkeypatch, api, action_logs="true", retry_backoff="0.05")
    api.add_fault("500", endpoint="logs", times=2, after=3)
    result = run_cli(capsys, "--duckdb", DB)
    assert result.code == 0, result.err
    assert stored_logs() == api.population.log_truth(SLUG)
    assert "2 retries" in result.out
