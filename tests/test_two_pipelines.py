"""Two pipelines on one machine: runs into different destinations are independent.

dlt keeps a pipeline's local folder by name; every run is named `chaster`, so each destination
gets a folder of its own. Neither run blocks, resumes or discards the other's work, the folder
keeps no loaded package, dlt's staging copy is emptied, and a folder of version 0.2 is adopted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dlt

from chaster_sessions import chaster_source, cursor_states, load
from chaster_sessions.pipeline import duckdb_destination
from conftest import (
    SLUG,
    attach,
    configure,
    duplicate_rows,
    killed_after_commits,
    pg_query,
    pipeline_folders,
    query,
    run_cli,
    run_process,
    standin_env,
    start_process,
    stored_sessions,
    to_postgres,
    wait_for_commits,
)

STAGING_TABLES = (
    "select table_name from information_schema.tables where table_schema = 'chaster_staging' "
    "and table_name not like '\\_dlt%' escape '\\'"  # dlt's own version table stays
)


def _staging_rows(path: Path) -> dict[str, int]:
    """Rows per data table of dlt's merge staging dataset in a DuckDB file."""
    tables = query(path, STAGING_TABLES)
    return {
        t: query(path, f'select count(*) from chaster_staging."{t}"')[0][0]  # noqa: S608
        for (t,) in tables
    }


def test_runs_into_two_files_go_side_by_side(make_api, home):
    # 8 chunks, each waiting 0.5 s on its two pages: the first run outlasts the whole second
    # one by several chunks, at the cost of few commits
    slow = make_api(1600, latency=0.25)
    fast = make_api({"other-extension": 300})
    first = start_process("--duckdb", "a.duckdb", env=standin_env(slow, chunk_pages="2"))
    wait_for_commits(home, 1)
    second = run_process(
        "--duckdb", "b.duckdb", env=standin_env(fast, extension_slug="other-extension")
    )
    assert second.code == 0, second.err  # not exit 8: another destination, another lock
    assert first.poll() is None  # the two did overlap
    assert "resumed an interrupted run" not in second.out
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert "resumed an interrupted run" not in out
    assert stored_sessions(home / "a.duckdb") == slow.population.truth(SLUG)
    assert stored_sessions(home / "b.duckdb") == fast.population.truth("other-extension")
    assert len(pipeline_folders(home)) == 2


def test_a_killed_run_is_resumed_by_its_own_destination_only(make_api, home):
    killed = make_api(1000, latency=0.05)  # 5 chunks of two pages: 3 after the kill
    other = make_api({"other-extension": 300})
    env_a = standin_env(killed, chunk_pages="2")
    killed_after_commits(home, 2, "--duckdb", "a.duckdb", env=env_a)
    b = run_process(
        "--duckdb", "b.duckdb", env=standin_env(other, extension_slug="other-extension")
    )
    assert b.code == 0, b.err
    assert "resumed an interrupted run" not in b.out  # A's cut walk is not B's
    a = run_process("--duckdb", "a.duckdb", env=env_a)
    assert a.code == 0, a.err
    assert "resumed an interrupted run" in a.out
    assert stored_sessions(home / "a.duckdb") == killed.population.truth(SLUG)
    assert duplicate_rows("a.duckdb") == 0


def test_the_local_folder_keeps_no_loaded_package_and_staging_is_emptied(
    make_api, home, monkeypatch, capsys
):
    api = make_api(600)
    configure(monkeypatch, api, chunk_pages=2)
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 0, result.err
    assert "(3 chunks)" in result.out
    (folder,) = pipeline_folders(home)
    assert f"  local folder: {folder} (`dlt pipeline --pipelines-dir {folder} chaster info`" in (
        result.out
    )
    loaded = folder / "chaster" / "load" / "loaded"
    assert not loaded.exists() or list(loaded.iterdir()) == []
    lock = json.loads((folder / "chaster.run.lock").read_text())
    assert lock["chunks"] == 3 and lock["pid"] == os.getpid()
    staging = _staging_rows(home / "out.duckdb")
    assert len(staging) == 7 and set(staging.values()) == {0}, staging  # they stay, empty


def test_postgres_staging_is_emptied_after_each_load(make_api, home, monkeypatch, capsys, postgres):
    api = make_api(300)
    configure(monkeypatch, api)
    to_postgres(monkeypatch, postgres)
    for _ in range(2):  # the second load merges into what the first loaded
        assert run_cli(capsys).code == 0
        api.population.add(SLUG, 5)
    tables = pg_query(postgres, STAGING_TABLES)
    assert len(tables) == 7
    for (table,) in tables:
        count = f'select count(*) from chaster_staging."{table}"'  # noqa: S608
        assert pg_query(postgres, count) == [(0,)], table


def test_another_pipeline_name_can_be_chosen(make_api, home, monkeypatch, capsys):
    api = make_api(300)
    configure(monkeypatch, api)
    monkeypatch.setenv("CHASTER__PIPELINE_NAME", "nightly")
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    assert pipeline_folders(home) == []
    assert len(pipeline_folders(home, "nightly")) == 1
    assert query("out.duckdb", "select pipeline from chaster._chaster_runs") == [("nightly",)]
    names = query("out.duckdb", "select distinct pipeline_name from chaster._dlt_pipeline_state")
    assert names == [("nightly",)]
    bad = run_cli(capsys, "--duckdb", "out.duckdb", "--pipeline-name", "no/slash")
    assert bad.code == 2
    assert bad.err.startswith("error: pipeline name 'no/slash' is not allowed")


def test_a_folder_of_version_0_2_is_adopted_with_its_pending_package(
    make_api, home, monkeypatch, capsys
):
    """0.2 kept one folder per name, `<pipelines dir>/chaster`, with the destination it last
    loaded in `destination.txt`: what `load` on a plain `dlt.pipeline("chaster")` still does.
    A package extracted there and never loaded (a killed run) is the one thing only it holds."""
    api = make_api(600)
    configure(monkeypatch, api)
    path = home / "out.duckdb"
    old = dlt.pipeline(
        "chaster", destination=duckdb_destination(path), dataset_name="chaster"
    )  # the folder version 0.2 used: `<pipelines dir>/chaster`
    load(old, chaster_source())
    sweep = cursor_states(old)["cursors"][f"{SLUG}|all"]["last_sweep"]
    added = api.population.add(SLUG, 25)
    old.extract(chaster_source())  # then killed before normalize
    assert old.list_extracted_load_packages()
    api.population.add(SLUG, 5)
    api.clear_log()
    result = run_cli(capsys, "--duckdb", str(path))
    assert result.code == 0, result.err
    assert "resumed an interrupted run" in result.out
    assert not (home / "dlt" / "pipelines" / "chaster").exists()  # moved, not copied
    assert stored_sessions(path) == api.population.truth(SLUG)
    assert set(added) <= set(stored_sessions(path))
    moved = attach(home)
    assert cursor_states(moved)["cursors"][f"{SLUG}|all"]["last_sweep"] == sweep
    assert api.count("search") < 10  # went on from the cursors: no walk from the start
    statuses = query(path, "select status from chaster._chaster_runs order by started_at")
    assert statuses == [("succeeded",), ("succeeded",)]
