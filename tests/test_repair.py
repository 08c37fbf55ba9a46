"""`--session-id ID` re-reads exactly those sessions: one GET each, nothing else moves."""

from __future__ import annotations

import json

from conftest import SLUG, configure, cursors, query, run_cli, stored_sessions


def _row(session_id: str) -> tuple:
    rows = query(
        "out.duckdb",
        "select data, removed_at, pagination_id from chaster.sessions where session_id = ?",
        [session_id],
    )
    assert len(rows) == 1
    return rows[0]


def test_session_id_rereads_a_changed_session_and_marks_a_deleted_one(
    make_api, home, monkeypatch, capsys
):
    api = make_api(300)
    pop = api.population
    configure(monkeypatch, api)
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    # ended sessions: a normal run never reads them again
    changed, deleted = pop.session_ids(SLUG, "unlocked")[:2]
    pop.change(changed, score=42)
    pop.delete(deleted)
    pagination_id = _row(changed)[2]
    before = cursors(home)
    api.clear_log()

    result = run_cli(
        capsys,
        "--duckdb",
        "out.duckdb",
        "--session-id",
        changed,
        "--session-id",
        deleted,
        "--session-id",
        "no-such-session",
        "--report",
        "run.json",
    )
    assert result.code == 0, result.err
    assert [(r.method, r.path) for r in api.requests] == [
        ("GET", f"/api/extensions/sessions/{changed}"),
        ("GET", f"/api/extensions/sessions/{deleted}"),
        ("GET", "/api/extensions/sessions/no-such-session"),
    ]
    assert "requests: 3 (0 search, 3 get)" in result.out
    assert (
        f"  sessions asked for: {changed} re-read; {deleted} gone (HTTP 404), marked removed; "
        "no-such-session gone (HTTP 404), and not stored either\n"
    ) in result.out
    assert f"  {SLUG}: 0 new, 1 re-read, 1 newly removed; 300 in total (1 removed)" in result.out
    data, removed_at, kept_pagination_id = _row(changed)
    assert json.loads(data)["score"] == 42
    assert removed_at is None
    assert kept_pagination_id == pagination_id  # GET answers without it; the stored one stays
    assert _row(deleted)[1] is not None
    removed = query(
        "out.duckdb", "select session_id from chaster.sessions where removed_at is not null"
    )
    assert removed == [(deleted,)]
    assert len(stored_sessions("out.duckdb")) == 300
    assert cursors(home) == before  # no cursor moved
    report = json.loads((home / "run.json").read_text())
    assert report["requests"]["total"] == 3
    assert report["sessions_asked_for"][changed] == "re-read"

    # the next normal run goes on from the same cursor
    pop.add(SLUG, 2)
    after = run_cli(capsys, "--duckdb", "out.duckdb")
    assert after.code == 0, after.err
    assert f"  {SLUG}: 2 new" in after.out


def test_session_id_with_full_refresh_is_refused(make_api, home, monkeypatch, capsys):
    api = make_api(30)
    configure(monkeypatch, api)
    result = run_cli(capsys, "--duckdb", "out.duckdb", "--session-id", "x", "--full-refresh")
    assert result.code == 2
    assert result.err == "error: --session-id re-reads only those sessions; drop --full-refresh\n"
    assert api.count() == 0
