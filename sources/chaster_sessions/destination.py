"""Every query sent to the destination, in one place, each handed the pipeline it runs on.

Counts and per-extension figures, the running and stored sessions a run hands the source,
duplicate repair, removal marks, the views, the runs-table append, the checks an orchestrator
runs and what the report page reads. Nothing here reaches for a current pipeline: callers pass
it in. The view definitions are in `analytics.py`; this module executes them.

dlt resolves the destination's configuration and builds a new client each time
`pipeline.sql_client()` is called: about 35 ms here, and a run's bookkeeping asked for 16, half a
second of every scheduled run. Inside `with connection(pipeline):` every query shares one client.
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import dlt
import duckdb
from dlt.destinations.exceptions import DatabaseException, DatabaseUndefinedRelation
from dlt.destinations.sql_client import SqlClientBase

from .analytics import DIALECTS, create_views
from .errors import DestinationError, known_secrets, redact
from .runs import COLUMNS, RUNS_TABLE
from .schema import LOG_CURSORS, SESSIONS
from .state import LogTask

# -- the connection ---------------------------------------------------------------------------

_open: ContextVar[tuple[dlt.Pipeline, SqlClientBase[Any]] | None] = ContextVar(
    "chaster_sql_client", default=None
)


@contextmanager
def connection(pipeline: dlt.Pipeline) -> Iterator[SqlClientBase[Any]]:
    """The client already open for `pipeline` in this context, or a new one for the block."""
    active = _open.get()
    if active is not None and active[0] is pipeline:
        yield active[1]
        return
    with pipeline.sql_client() as client:
        token = _open.set((pipeline, client))
        try:
            yield client
        finally:
            _open.reset(token)


def query(pipeline: dlt.Pipeline, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of a query on the pipeline's dataset; none if nothing was loaded yet."""
    try:
        with connection(pipeline) as client, client.execute_query(sql, *params) as cursor:
            return [tuple(row) for row in cursor.fetchall()]
    except DatabaseUndefinedRelation:
        return []


def qualified(pipeline: dlt.Pipeline, table: str) -> str:
    """`table` as the destination names it inside the pipeline's dataset."""
    with connection(pipeline) as client:
        return client.make_qualified_table_name(table)


# -- what the destination is ------------------------------------------------------------------


def destination_kind(pipeline: dlt.Pipeline) -> str:
    """ "duckdb", "postgres", ...: the destination type without its module path."""
    return str(pipeline.destination.destination_type).rsplit(".", 1)[-1]


def preferred_file_format(pipeline: dlt.Pipeline) -> Any:
    """parquet is DuckDB's fastest format; other destinations keep their own preferred one."""
    return "parquet" if destination_kind(pipeline) in ("duckdb", "motherduck") else None


# What DuckDB may hold in memory during a run, per thread of its own (DuckDB asks for at least
# 125 MB a thread), at least `DUCKDB_MEMORY_FLOOR_MB`: its default is 80% of the machine's
# memory, and it keeps every block of the file it has read or written until it reaches that,
# so a backfill's memory grew with the file. A chunk needs far less (`bench/memory.py`;
# bench/RESULTS.md has the figures).
DUCKDB_MEMORY_PER_THREAD_MB = 128
DUCKDB_MEMORY_FLOOR_MB = 256


def duckdb_memory_limit(threads: int) -> str:
    """The memory limit the runner gives a DuckDB that runs `threads` threads."""
    return f"{max(DUCKDB_MEMORY_FLOOR_MB, DUCKDB_MEMORY_PER_THREAD_MB * threads)}MB"


def cap_memory(pipeline: dlt.Pipeline) -> Callable[[], None] | None:
    """Hold DuckDB to `duckdb_memory_limit` for the run; return what puts the limit back.

    The setting is the database's, so dlt's own connections to it share it. Blocks of the file
    beyond it are dropped from memory and read again when needed, and a large query can spill
    to DuckDB's temporary folder (`<file>.tmp`). Left alone: a limit the user named in the
    DuckDB credentials' `global_config` (dlt has applied it), and a connection the user handed
    to dlt, whose settings are theirs.
    """
    credentials = duckdb_credentials(pipeline)
    if (
        credentials is None
        or credentials.external_conn() is not None
        or "memory_limit" in (credentials.global_config or {})
    ):
        return None
    with connection(pipeline) as client:
        [(before, threads)] = query(
            pipeline, "select current_setting('memory_limit'), current_setting('threads')"
        )
        client.execute_sql(f"SET GLOBAL memory_limit = '{duckdb_memory_limit(int(threads))}'")

    def restore() -> None:  # as DuckDB reads it back, to its 0.1 of a unit
        # on a failed run's way out, a database that no longer answers keeps the run's error
        with connection(pipeline) as client, suppress(DatabaseException):
            client.execute_sql(f"SET GLOBAL memory_limit = '{before}'")

    return restore


def settle(pipeline: dlt.Pipeline) -> None:
    """Between two chunks, write what the first committed into the DuckDB file, so its memory
    goes.

    dlt opens DuckDB with `checkpoint_threshold = 1gb`, and the runner holds the database open
    for the whole run: a backfill's rows stayed in memory (`duckdb_memory()`'s
    IN_MEMORY_TABLE) until the log reached 1 GB, 45 MB more after every chunk of 10,000
    sessions (`bench/memory.py`). A checkpoint between chunks bounds that by the chunk (after
    the last one, closing the database checkpoints anyway). The chunk is committed already:
    a checkpoint that cannot run now (another transaction on the same database) leaves it to
    the next one. Other destinations keep no data in this process.
    """
    if destination_kind(pipeline) != "duckdb":
        return
    with connection(pipeline) as client, suppress(DatabaseException):
        client.execute_sql("CHECKPOINT")


_duckdb_credentials: weakref.WeakKeyDictionary[dlt.Pipeline, Any] = weakref.WeakKeyDictionary()


def duckdb_credentials(pipeline: dlt.Pipeline) -> Any:
    """The DuckDB credentials a pipeline loads with, or None for other destinations (kept per
    pipeline object: dlt resolves the destination's configuration to answer, about 40 ms)."""
    if destination_kind(pipeline) != "duckdb":
        return None
    if pipeline not in _duckdb_credentials:
        _duckdb_credentials[pipeline] = pipeline.destination_client().config.credentials
    return _duckdb_credentials[pipeline]


def duckdb_path(pipeline: dlt.Pipeline) -> Path | None:
    """The DuckDB file a pipeline writes, or None for other destinations."""
    database = getattr(duckdb_credentials(pipeline), "database", None)
    return Path(database) if isinstance(database, str) and database != ":memory:" else None


# -- the DuckDB file, before and after a run of the command -----------------------------------


def check_duckdb(path: Path) -> None:
    """Fail before any request if the file is held by another process or is not DuckDB."""
    if path.exists() and path.is_dir():
        raise DestinationError(f"{path} is a directory, not a DuckDB file")
    if not path.exists():
        if not path.parent.is_dir():
            raise DestinationError(f"folder {path.parent} does not exist (from --duckdb {path})")
        return
    try:
        duckdb.connect(str(path)).close()
    except duckdb.Error as exc:
        text = str(exc)
        if "lock" in text.lower():
            raise DestinationError(
                f"{path} is in use by another process (a notebook, a DuckDB shell or another "
                "program has it open); close it there and run again"
            ) from None
        raise DestinationError(
            f"{path} cannot be opened as DuckDB ({text.splitlines()[0]})"
        ) from None


def remove_empty_duckdb(path: Path, dataset: str) -> None:
    """Delete a DuckDB file that holds nothing of `dataset` (the command calls it for a file its
    failed first run created): a failed first run leaves the folder as it found it."""
    if not path.is_file():
        return
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            tables = con.execute(
                "select count(*) from information_schema.tables where table_schema = ?",
                [dataset],
            ).fetchall()[0][0]
    except duckdb.Error:
        return
    if not tables:
        path.unlink()
        Path(f"{path}.wal").unlink(missing_ok=True)


# -- what is stored ---------------------------------------------------------------------------


def tables(pipeline: dlt.Pipeline) -> list[str]:
    """The dataset's data tables (not dlt's own, nor the runs table), by name."""
    rows = query(
        pipeline,
        "select table_name from information_schema.tables where table_schema = %s "
        "and table_name not like '\\_dlt%%' escape '\\' and table_name <> %s order by table_name",
        pipeline.dataset_name,
        RUNS_TABLE,
    )
    return [row[0] for row in rows]


def table_counts(pipeline: dlt.Pipeline) -> dict[str, int]:
    """Rows per data table, in one query."""
    names = tables(pipeline)
    if not names:
        return {}
    parts = [
        # table names come from information_schema, not from the user
        f"select '{name}', count(*) from {qualified(pipeline, name)}"  # noqa: S608
        for name in names
    ]
    return {name: int(n) for name, n in query(pipeline, " union all ".join(parts))}


def sessions_per_slug(pipeline: dlt.Pipeline) -> dict[str, tuple[int, int]]:
    """slug -> (sessions stored, of which marked removed)."""
    if SESSIONS not in tables(pipeline):
        return {}
    table = qualified(pipeline, SESSIONS)
    rows = query(pipeline, f"select slug, count(*), count(removed_at) from {table} group by slug")  # noqa: S608
    return {slug: (int(total), int(removed)) for slug, total, removed in rows}


def running_sessions(pipeline: dlt.Pipeline, slugs: list[str]) -> dict[str, dict[str, str]]:
    """slug -> {sessionId: paginationId} of the sessions stored as running (and not marked
    removed), for those of `slugs` that have any; empty before the first load."""
    running: dict[str, dict[str, str]] = {}
    rows = _sessions_where(
        pipeline,
        "slug, session_id, pagination_id",
        ("slug", slugs),
        "lock__status = 'locked' and removed_at is null",
    )
    for slug, session_id, pagination_id in rows:
        running.setdefault(slug, {})[session_id] = pagination_id
    return running


def stored_sessions(
    pipeline: dlt.Pipeline, session_ids: list[str]
) -> dict[str, tuple[str, str | None]]:
    """sessionId -> (slug, paginationId) of those of `session_ids` stored in the destination."""
    rows = _sessions_where(pipeline, "session_id, slug, pagination_id", ("session_id", session_ids))
    return {session_id: (slug, pagination_id) for session_id, slug, pagination_id in rows}


def _log_pending(pipeline: dlt.Pipeline, slugs: tuple[str, ...]) -> tuple[str, list[Any]] | None:
    """`from ... where ...` of the stored sessions of `slugs` whose action log is not complete
    (never read, or read while running), with its parameters; None before the first load."""
    names = tables(pipeline)
    if SESSIONS not in names or not slugs:
        return None
    sessions = qualified(pipeline, SESSIONS)
    where = f"s.slug in ({', '.join(['%s'] * len(slugs))}) and s.removed_at is null"
    if LOG_CURSORS not in names:
        return f"from {sessions} s where {where}", list(slugs)
    cursors = qualified(pipeline, LOG_CURSORS)
    return (
        f"from {sessions} s left join {cursors} c on c.session_id = s.session_id "
        f"where {where} and (c.session_id is null or not c.complete)",
        list(slugs),
    )


def log_tasks(
    pipeline: dlt.Pipeline,
    slugs: tuple[str, ...],
    session_ids: tuple[str, ...] | None,
    limit: int,
) -> list[LogTask]:
    """The next sessions whose action log to read, at most `limit` (each costs a request at
    least): running ones first, then the most recent. With `session_ids`, those sessions,
    whole (their stored entries are merged again, not doubled)."""
    with connection(pipeline):
        if session_ids:
            rows = _sessions_where(
                pipeline, "session_id, slug, lock__status", ("session_id", list(session_ids))
            )
            return [LogTask(sid, slug, status, None) for sid, slug, status in rows][:limit]
        pending = _log_pending(pipeline, slugs)
        if pending is None:
            return []
        sql, params = pending
        newest = "c.newest_log_id" if "left join" in sql else "null"
        # no cursors table yet: nothing was read, every session ranks by its status alone
        read_at = "c.read_at" if "left join" in sql else "cast(null as timestamp)"
        rows = query(
            pipeline,
            f"select s.session_id, s.slug, s.lock__status, {newest} {sql} "
            # one last read of the just ended first, then the running ones, least recently
            # read first (so a budget smaller than them still reaches each in turn), then the
            # backlog, the most recent first
            f"order by case when s.lock__status = 'locked' then 1 "
            f"when {read_at} is not null then 0 else 2 end, "
            f"{read_at} nulls first, s.pagination_id desc limit %s",
            *params,
            limit,
        )
    return [LogTask(*row) for row in rows]


def logs_unread(pipeline: dlt.Pipeline, slugs: tuple[str, ...]) -> tuple[int, int]:
    """(never read, running) of the stored sessions: the backlog later runs go on with, and
    the running sessions each run reads before it."""
    with connection(pipeline):
        pending = _log_pending(pipeline, slugs)
        if pending is None:
            return 0, 0
        sql, params = pending
        unread = "c.session_id is null" if "left join" in sql else "true"
        rows = query(
            pipeline,
            f"select count(*) filter (where {unread}), "
            f"count(*) filter (where s.lock__status = 'locked') {sql}",
            *params,
        )
        return int(rows[0][0]), int(rows[0][1])


def _sessions_where(
    pipeline: dlt.Pipeline, columns: str, one_of: tuple[str, list[str]], also: str = "true"
) -> list[tuple[Any, ...]]:
    """`columns` of the stored sessions whose column `one_of[0]` is one of the values
    `one_of[1]` (none asked: no query), and `also`; none before the first load."""
    column, values = one_of
    if not values:
        return []
    with connection(pipeline):  # one client for the name and the query
        return query(
            pipeline,
            f"select {columns} from {qualified(pipeline, SESSIONS)} "  # noqa: S608 - constants
            f"where {column} in ({', '.join(['%s'] * len(values))}) and {also}",
            *values,
        )


# -- the maintenance after every load ---------------------------------------------------------


def repair_duplicates(pipeline: dlt.Pipeline) -> int:
    """Delete rows that one load inserted twice; return how many.

    dlt 1.31 can insert a package's root rows twice when the process is killed in the middle of
    its merge (the crash tests reproduce it; dlt-hub/dlt#3023): same `_dlt_id`, same load id.
    Every run ends with this check, so the next run repairs what a killed one left. It costs
    one `count(distinct _dlt_id)` per table when nothing is wrong.
    """
    row = {"duckdb": "rowid", "postgres": "ctid"}.get(destination_kind(pipeline))
    if row is None:
        return 0
    repaired = 0
    names = tables(pipeline)
    with connection(pipeline) as client:
        for table in names:
            name = client.make_qualified_table_name(table)
            # names come from information_schema, not from the user
            check = f"select count(*) - count(distinct _dlt_id) from {name}"  # noqa: S608
            with client.execute_query(check) as cursor:
                extra = cursor.fetchall()[0][0]
            if extra:
                client.execute_sql(
                    f"delete from {name} where {row} in (select {row} from (select {row}, "  # noqa: S608
                    f"row_number() over (partition by _dlt_id order by {row}) as n "
                    f"from {name}) d where n > 1)"
                )
                repaired += extra
    return repaired


class RemovalMarks(NamedTuple):
    """What one cursor's committed state says the API no longer has."""

    slug: str
    status: str  # the cursor's status filter: "all" or "locked"
    removed: dict[str, str]  # sessionId -> when a GET answered 404 for it
    last_sweep: float | None  # when the last full sweep began (a `status=all` cursor's)


def mark_removed(pipeline: dlt.Pipeline, marks: list[RemovalMarks]) -> None:
    """Set `removed_at` on sessions the API no longer has, from the committed state's marks.

    Idempotent and repeated after every run, so a crash between the load and this update loses
    nothing: GETs that answered 404 are listed in the state, and after a full sweep every row
    of that extension not reloaded since the sweep began is gone from the API.
    """
    if not marks or SESSIONS not in tables(pipeline):
        return
    with connection(pipeline) as client:
        table = client.make_qualified_table_name(SESSIONS)
        for mark in marks:
            for session_id, noticed in mark.removed.items():
                client.execute_sql(
                    f"update {table} set removed_at = %s where session_id = %s "  # noqa: S608
                    "and removed_at is null",
                    noticed,
                    session_id,
                )
            if mark.status == "all" and mark.last_sweep:
                client.execute_sql(
                    f"update {table} set removed_at = to_timestamp(%s) where slug = %s "  # noqa: S608
                    "and removed_at is null and cast(_dlt_load_id as decimal(20, 6)) < %s",
                    mark.last_sweep,
                    mark.slug,
                    mark.last_sweep,
                )


def update_views(pipeline: dlt.Pipeline) -> tuple[list[str], str | None]:
    """(Re)create the `analytics` views in one transaction: (their names, why they failed).

    Runs after the data is committed, so a failure here never costs a load: the old views stay
    as they were, and the run reports the failure instead of hiding it.
    """
    try:
        with connection(pipeline) as client:
            rows = client.execute_sql(
                "select table_name, column_name from information_schema.columns "
                "where table_schema = %s",
                pipeline.dataset_name,
            )
            columns: dict[str, set[str]] = {}
            for table, column in rows or []:
                columns.setdefault(table, set()).add(column)
            dialect = DIALECTS[destination_kind(pipeline)]
            with client.begin_transaction():
                names = create_views(client.execute_sql, columns, pipeline.dataset_name, dialect)
                return names, None
    except Exception as exc:  # reported, never silent; the load itself stands
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return [], (
            f"the analytics views could not be updated ({first_line}); the sessions were loaded"
        )


# -- the runs table ---------------------------------------------------------------------------

_JSON = {"duckdb": "json", "postgres": "jsonb"}


def _dataset_loaded(pipeline: dlt.Pipeline) -> bool:
    """True once dlt has loaded into the dataset: a failed first run adds nothing, not even a
    runs table (and on DuckDB leaves no file behind)."""
    path = duckdb_path(pipeline)
    if path is not None and not path.exists():
        return False
    found = query(
        pipeline,
        "select count(*) from information_schema.tables where table_schema = %s "
        "and table_name = '_dlt_version'",
        pipeline.dataset_name,
    )
    return bool(found and found[0][0])


def append_run(pipeline: dlt.Pipeline, values: dict[str, Any]) -> str | None:
    """Append a run's row (`runs.row`) to the runs table; returns why it could not be written,
    if it could not (never raises: the history must not turn a run's real outcome into
    another). The row goes through the SQL client, never through dlt, so it cannot load a
    failed run's pending package or move a cursor."""
    kind = destination_kind(pipeline)
    if kind not in DIALECTS:
        return f"not written on {kind} (DuckDB and PostgreSQL only)"
    try:
        if not _dataset_loaded(pipeline):
            return "not written: nothing was ever loaded into the dataset"
        json_type = _JSON[DIALECTS[kind]]
        with connection(pipeline) as client:
            table = client.make_qualified_table_name(RUNS_TABLE)
            columns = ", ".join(
                f"{name} {json_type if sql == 'json' else sql}" for name, sql, _ in COLUMNS
            )
            client.execute_sql(f"create table if not exists {table} ({columns})")
            present = {
                row[0]
                for row in query(
                    pipeline,
                    "select column_name from information_schema.columns "
                    "where table_schema = %s and table_name = %s",
                    pipeline.dataset_name,
                    RUNS_TABLE,
                )
            }
            for name, sql, _ in COLUMNS:  # a table of an older version gains the new columns
                if name not in present:
                    added = json_type if sql == "json" else sql
                    client.execute_sql(f"alter table {table} add column {name} {added}")
            names = [name for name, _, _ in COLUMNS]
            client.execute_sql(
                f"insert into {table} ({', '.join(names)}) "  # noqa: S608 - names are constants
                f"values ({', '.join(['%s'] * len(names))})",
                *[values[name] for name in names],
            )
    except Exception as exc:  # reported in the summary, never raised
        first = str(exc).strip().splitlines() or [type(exc).__name__]
        return f"not written ({redact(first[0], known_secrets())})"
    return None


# -- the checks an orchestrator runs after a load ---------------------------------------------
# Each returns plain figures; the Dagster asset checks (`pipelines/dagster_defs.py`) turn them
# into pass / fail with metadata, and any other scheduler can call them the same way.


def duplicate_sessions(pipeline: dlt.Pipeline) -> int:
    """Rows of `sessions` beyond one per `session_id` (0 when the merge key holds)."""
    if SESSIONS not in tables(pipeline):
        return 0
    table = qualified(pipeline, SESSIONS)
    rows = query(pipeline, f"select count(*) - count(distinct session_id) from {table}")  # noqa: S608
    return int(rows[0][0])


def orphaned_rows(pipeline: dlt.Pipeline) -> dict[str, int]:
    """Child table -> its rows whose `_dlt_root_id` matches no `sessions` row (only tables that
    have any)."""
    names = tables(pipeline)
    if SESSIONS not in names:
        return {}
    found: dict[str, int] = {}
    with connection(pipeline) as client:
        root = client.make_qualified_table_name(SESSIONS)
        for name in names:
            if not name.startswith(f"{SESSIONS}__"):
                continue
            child = client.make_qualified_table_name(name)
            # names come from information_schema, not from the user
            sql = (
                f"select count(*) from {child} c where not exists "  # noqa: S608
                f"(select 1 from {root} s where s._dlt_id = c._dlt_root_id)"
            )
            with client.execute_query(sql) as cursor:
                orphans = int(cursor.fetchall()[0][0])
            if orphans:
                found[name] = orphans
    return found


def last_successful_load(pipeline: dlt.Pipeline) -> datetime | None:
    """When dlt last completed a load of the pipeline's schema into the dataset (UTC)."""
    loads = qualified(pipeline, "_dlt_loads")
    rows = query(
        pipeline,
        f"select max(inserted_at) from {loads} where status = 0 and schema_name = %s",  # noqa: S608
        pipeline.default_schema_name or "chaster",
    )
    if not rows or rows[0][0] is None:
        return None
    value: datetime = rows[0][0]
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# -- what the report page reads ---------------------------------------------------------------

VIEW_QUERIES = {  # what the page shows of each view, per extension
    "overview": "select * from analytics.overview",
    "daily": "select * from analytics.daily order by extension, day",
    "outcomes": "select * from analytics.outcomes order by extension, sessions desc, value",
    "co_extensions": "select * from analytics.co_extensions "
    "order by extension, sessions desc, other_extension",
    "config_values": "select * from analytics.config_values "
    "order by extension, sessions desc, setting, value",
    "wearers": "select extension, least(sessions, 5) as sessions, count(*) as wearers "
    "from analytics.wearers group by extension, least(sessions, 5) "
    "order by extension, sessions",
    "weekly_actions": "select * from analytics.weekly_actions order by extension, week, type",
}


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def _rows(pipeline: dlt.Pipeline, sql: str) -> list[dict[str, Any]]:
    with connection(pipeline) as client, client.execute_query(sql) as cursor:
        names = [d[0] for d in cursor.description]
        return [
            {n: _plain(v) for n, v in zip(names, row, strict=True)} for row in cursor.fetchall()
        ]


def read_views(pipeline: dlt.Pipeline) -> dict[str, Any]:
    """What the page shows, per extension, from the views; and the last successful load."""
    by_extension: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for view, sql in VIEW_QUERIES.items():
        for row in _rows(pipeline, sql):
            by_extension[row["extension"]][view].append(row)
    loads = qualified(pipeline, "_dlt_loads")
    # status 0: the load completed
    latest = f"select max(inserted_at) as at from {loads} where status = 0"  # noqa: S608
    last_load = _rows(pipeline, latest)
    return {"extensions": by_extension, "last_load": last_load[0]["at"] if last_load else None}
