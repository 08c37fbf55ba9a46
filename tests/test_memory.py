"""A long backfill's memory is bounded by the chunk: what DuckDB holds between chunks.

The figures at scale are `bench/memory.py`'s (bench/RESULTS.md); these tests hold the two
mechanisms in place on a small load through the runner's own `run_once` door: each committed
chunk is checkpointed out of DuckDB's memory, and DuckDB runs under the project's memory
limit unless the user's DuckDB credentials name one.
"""

from __future__ import annotations

from typing import Any

import duckdb

from chaster_sessions.destination import duckdb_memory_limit
from conftest import configure, query

IN_MEMORY = (
    "select coalesce(sum(memory_usage_bytes), 0) from duckdb_memory() where tag = 'IN_MEMORY_TABLE'"
)


def _as_duckdb_shows(limit: str) -> str:
    """`limit` as `current_setting('memory_limit')` reads it back ("256MB" is "244.1 MiB")."""
    with duckdb.connect() as con:
        con.execute(f"SET memory_limit = '{limit}'")
        return str(con.execute("select current_setting('memory_limit')").fetchall()[0][0])


def _threads() -> int:
    """DuckDB's threads on this machine (its default: the cores)."""
    with duckdb.connect() as con:
        return int(con.execute("select current_setting('threads')").fetchall()[0][0])


def _observed_load(home: Any, api: Any, monkeypatch: Any) -> list[tuple[int, int, str]]:
    """Load `api` in chunks of 2 pages; per chunk: DuckDB's in-memory table bytes before it
    and right after dlt committed it, and its memory limit, all on the run's connection."""
    import dlt

    from chaster_sessions import chaster_source, load
    from chaster_sessions.destination import connection

    configure(monkeypatch, api, chunk_pages="2")
    seen: list[tuple[int, int, str]] = []

    def read(pipeline: dlt.Pipeline, sql: str) -> Any:
        with connection(pipeline) as client:
            return client.execute_sql(sql)[0][0]

    def observed(pipeline: dlt.Pipeline, source: Any, file_format: Any) -> object:
        before = read(pipeline, IN_MEMORY)
        info = pipeline.run(source, loader_file_format=file_format)
        limit = read(pipeline, "select current_setting('memory_limit')")
        seen.append((before, read(pipeline, IN_MEMORY), limit))
        return info

    pipeline = dlt.pipeline(
        "chaster",
        destination=dlt.destinations.duckdb(str(home / "out.duckdb")),
        dataset_name="chaster",
    )
    result = load(pipeline, chaster_source(), run_once=observed)
    assert result.chunks == 3
    assert query(home / "out.duckdb", "select count(*) from chaster.sessions") == [(600,)]
    return seen


def test_the_memory_limit_grows_with_duckdbs_threads():
    assert [duckdb_memory_limit(n) for n in (1, 2, 3, 8)] == ["256MB", "256MB", "384MB", "1024MB"]


def test_each_chunk_leaves_duckdb_memory_once_committed(home, make_api, monkeypatch):
    seen = _observed_load(home, make_api(600), monkeypatch)
    assert [before for before, _, _ in seen] == [0, 0, 0]  # the chunk before was checkpointed
    assert all(after > 0 for _, after, _ in seen)  # each chunk's rows were in memory
    # 256 MB on this 2-core machine
    assert {limit for _, _, limit in seen} == {_as_duckdb_shows(duckdb_memory_limit(_threads()))}


def test_a_memory_limit_in_the_duckdb_credentials_stands(home, make_api, monkeypatch):
    monkeypatch.setenv(
        "DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", '{"memory_limit": "300MB"}'
    )
    seen = _observed_load(home, make_api(600), monkeypatch)
    assert {limit for _, _, limit in seen} == {_as_duckdb_shows("300MB")}


def test_the_limit_is_put_back_for_a_connection_that_shares_the_database(
    home, make_api, monkeypatch
):
    """A user's own connection to the file in the same process shares DuckDB's database, and
    so its settings: after the run its memory limit is what it was."""
    import dlt

    from chaster_sessions import chaster_source, load

    configure(monkeypatch, make_api(300))
    with duckdb.connect(str(home / "out.duckdb")) as mine:
        mine.execute("SET memory_limit = '2GiB'")
        pipeline = dlt.pipeline(
            "chaster",
            destination=dlt.destinations.duckdb(str(home / "out.duckdb")),
            dataset_name="chaster",
        )
        load(pipeline, chaster_source())
        assert mine.execute("select count(*) from chaster.sessions").fetchall() == [(300,)]
        limit = mine.execute("select current_setting('memory_limit')").fetchall()[0][0]
    assert limit == _as_duckdb_shows("2GiB")
