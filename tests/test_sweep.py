"""The periodic full sweep catches what the cursor and the locked sweep cannot see, and a sweep
cut by a failure goes on from its last committed chunk."""

from __future__ import annotations

import json
import math

from chaster_sessions.plan import DAY, sweep_due
from conftest import (
    SLUG,
    configure,
    present_sessions,
    query,
    removed_sessions,
    run_cli,
    stored_sessions,
)


def _score(path: str, session_id: str) -> object:
    rows = query(path, "select data from chaster.sessions where session_id = ?", [session_id])
    return json.loads(rows[0][0]).get("score")


def test_sweep_is_due_after_its_period():
    now = 1_800_000_000.0
    assert sweep_due({"last_sweep": now - 6.9 * DAY}, 7, now) is None
    assert (
        sweep_due({"last_sweep": now - 7.1 * DAY}, 7, now)
        == "the last one began 7.1 days ago; every 7 days"
    )
    assert sweep_due({"last_sweep": now - 60}, 0, now) == "every run (full_sweep_every_days = 0)"
    # loaded before sweeps were recorded: the period counts from the first run that saw it so
    assert sweep_due({}, 7, now) is None
    assert sweep_due({"sweep_clock_from": now - 6 * DAY}, 7, now) is None
    assert (
        sweep_due({"sweep_clock_from": now - 8 * DAY}, 7, now)
        == "none recorded in 8.0 days; every 7 days"
    )
    going_on = {"last_sweep": now - 60, "sweep": {"started_at": now - 0.5 * DAY}}
    assert sweep_due(going_on, 7, now) == "going on with the one begun 0.5 days ago"


def test_periodic_sweep_catches_changes_a_normal_run_misses(make_api, home, monkeypatch, capsys):
    api = make_api(300)
    pop = api.population
    configure(monkeypatch, api)
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    deleted, changed = pop.session_ids(SLUG, "unlocked")[:2]
    pop.delete(deleted)  # deleted after it ended
    pop.change(changed, score=9)  # changed after it ended
    [old_lock] = pop.add(SLUG, 1, on_old_lock=True)  # behind the cursor ...
    pop.end(old_lock)  # ... and ended before the next run
    api.clear_log()

    normal = run_cli(capsys, "--duckdb", "out.duckdb")  # the first load was a sweep: not due
    assert normal.code == 0, normal.err
    assert "periodic full sweep" not in normal.out
    locked = len(pop.truth(SLUG, "locked"))
    assert (api.count("search"), api.count("get")) == (1 + math.ceil(locked / 100), 0)
    assert removed_sessions("out.duckdb") == set()
    assert _score("out.duckdb", changed) is None
    assert old_lock not in stored_sessions("out.duckdb")

    configure(monkeypatch, api, full_sweep_every_days="0")
    api.clear_log()
    swept = run_cli(capsys, "--duckdb", "out.duckdb")
    assert swept.code == 0, swept.err
    assert (
        "    refresh: periodic full sweep (every run (full_sweep_every_days = 0)): "
        "3 pages this run\n" in swept.out
    )
    # the new-session page, then every session: 300 in 3 pages; no locked sweep, no GETs
    assert (api.count("search"), api.count("get")) == (1 + 3, 0)
    assert removed_sessions("out.duckdb") == {deleted}
    assert _score("out.duckdb", changed) == 9
    assert stored_sessions("out.duckdb")[old_lock] == "unlocked"
    assert present_sessions("out.duckdb") == pop.truth(SLUG)

    monkeypatch.delenv("SOURCES__CHASTER__FULL_SWEEP_EVERY_DAYS")  # every 7 days: it just ran
    api.clear_log()
    after = run_cli(capsys, "--duckdb", "out.duckdb")
    assert after.code == 0, after.err
    assert "periodic full sweep" not in after.out
    assert api.count("search") == 1 + math.ceil(len(pop.truth(SLUG, "locked")) / 100)


def test_a_sweep_cut_by_a_failure_goes_on_from_its_last_chunk(make_api, home, monkeypatch, capsys):
    api = make_api(300)
    pop = api.population
    configure(monkeypatch, api, page_size="50")
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    deleted = pop.session_ids(SLUG, "unlocked")[-1]
    pop.delete(deleted)
    # a chunk per page; the sweep's third page fails (the new-session page and two sweep
    # pages go through first)
    configure(
        monkeypatch,
        api,
        page_size="50",
        full_sweep_every_days="0",
        chunk_pages="1",
        max_attempts="1",
    )
    api.add_fault("500", after=3)
    api.clear_log()
    failed = run_cli(capsys, "--duckdb", "out.duckdb")
    assert failed.code == 5, failed.err
    assert api.count("search") == 4

    api.clear_log()
    resumed = run_cli(capsys, "--duckdb", "out.duckdb")
    assert resumed.code == 0, resumed.err
    # the new-session page, then the sweep's pages 3 to 6 (299 sessions): not from the start
    assert api.count("search") == 1 + 4
    hundredth = pop.session(pop.session_ids(SLUG)[99])["paginationId"]
    assert api.requests[1].body["paginationLastId"] == hundredth
    assert "periodic full sweep (going on with the one begun 0.0 days ago): 4 pages this run" in (
        resumed.out
    )
    assert removed_sessions("out.duckdb") == {deleted}
    assert present_sessions("out.duckdb") == pop.truth(SLUG)


def test_finish_after_plain_runs_marks_only_what_a_sweep_no_longer_saw(make_api, home, monkeypatch):
    """The README's way from Python: a plain `pipeline.run`, then `finish`. A plain run's sweep
    starts before its own load package, so its rows count as seen by it."""
    import dlt

    from chaster_sessions import chaster_source, finish
    from chaster_sessions.pipeline import duckdb_destination

    api = make_api(300)
    configure(monkeypatch, api, full_sweep_every_days=0)  # every run is a full sweep
    path = home / "plain.duckdb"
    pipeline = dlt.pipeline("plain", destination=duckdb_destination(path), dataset_name="chaster")
    pipeline.run(chaster_source())
    finish(pipeline)
    assert query(path, "select count(*), count(removed_at) from chaster.sessions") == [(300, 0)]
    gone = api.population.session_ids(SLUG, "unlocked")[0]
    api.population.delete(gone)
    pipeline.run(chaster_source())
    finish(pipeline)
    removed = query(path, "select session_id from chaster.sessions where removed_at is not null")
    assert removed == [(gone,)]
