"""Shared fixtures: a stand-in API on loopback, an isolated dlt home, and a way to run the CLI.

Every test talks HTTP to a real server and reads the DuckDB file the pipeline wrote; nothing of
requests or dlt is mocked.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from chaster_standin import Population, StandIn, StandInConfig

ROOT = Path(__file__).resolve().parents[1]
SESSIONS_PY = ROOT / "pipelines" / "sessions.py"
SLUG = "example-extension"
TOKEN = "test-token-7f3a9c2e51"


# The slowest tests (pytest --durations=15), slowest first. `task.py test` runs the suite in one
# worker per core (pytest-xdist), which hands out tests in collection order: starting these
# first keeps a worker from picking up a long one at the end while the other sits idle.
SLOWEST_FIRST = (
    "test_crash_safety.py::test_killed_runs_resume_and_converge",
    "test_dagster.py::test_dagster_command_line_runs_load_and_checks_in_a_row",
    "test_two_pipelines.py::test_a_killed_run_is_resumed_by_its_own_destination_only",
    "test_two_pipelines.py::test_runs_into_two_files_go_side_by_side",
    "test_secrets.py::test_token_and_credentials_are_found_nowhere",
    "test_cli.py::test_demo_end_to_end_without_a_token",
    "test_notebook.py::test_notebook_runs_against_the_demo_database",
    "test_package.py::test_pip_install_from_a_copy_gives_the_console_script",
    "test_crash_safety.py::test_a_run_killed_while_it_reads_logs_loses_and_doubles_nothing",
    "test_crash_safety.py::test_resumed_run_says_so",
    "test_first_contact.py::test_a_killed_descending_backfill_resumes_whole",
    "test_html_report.py::test_demo_page_renders_every_chart_in_a_real_browser",
    "test_package.py::test_both_doors_read_the_same_settings_from_any_folder",
    "test_first_contact.py::test_default_run_from_an_empty_folder_and_the_readme_queries",
    "test_resilience.py::test_persistent_faults_fail_cleanly_and_lose_nothing",
    "test_views_postgres.py::test_every_view_on_postgres_equals_duckdb",
    "test_first_load.py::test_first_load_stores_every_session_and_child_row",  # its group's load
    "test_signals.py::test_a_signal_ends_the_run_with_its_committed_chunks_recorded",
)


@pytest.hookimpl(trylast=True)  # after pytest-xdist's own, which names the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Move SLOWEST_FIRST to the front; the sort is stable, so the rest keep their order."""
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(
        key=lambda item: rank.get(
            item.nodeid.split("[")[0].split("@")[0].removeprefix("tests/"), len(rank)
        )
    )
    if config.getoption("loadgroup", False):  # in a worker of `--dist loadgroup`
        _name_xdist_groups(items)


def _name_xdist_groups(items: list[pytest.Item]) -> None:
    """pytest-xdist 3.8 sends the tests of one `xdist_group` to one worker by renaming each
    test's `_nodeid` to end in `@group`, which pytest 9.2 no longer reads: the groups were
    silently spread over the workers, and each worker loaded a module's data again
    (pytest-dev/pytest-xdist#1386). Name them where pytest 9.2 keeps the id, unless xdist
    already did."""
    for item in items:
        marks = item.iter_markers("xdist_group")
        names = sorted(
            {str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in marks}
        )
        suffix = "@" + "_".join(names)
        if names and not item.nodeid.endswith(suffix):
            item._id = type(item._id).parse(item.nodeid + suffix)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean dlt home and project folder per test, with no settings but what the test sets."""
    for name in list(os.environ):
        if name.startswith(("SOURCES__", "DESTINATION__", "RUNTIME__", "DLT_")):
            monkeypatch.delenv(name)
    (tmp_path / "project" / ".dlt").mkdir(parents=True)
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    monkeypatch.setenv("DLT_PROJECT_DIR", str(tmp_path / "project"))
    monkeypatch.setenv("RUNTIME__LOG_LEVEL", "ERROR")
    monkeypatch.chdir(tmp_path)
    # dlt keeps the settings providers it loaded in the process: without this, a test that uses
    # dlt directly would still read the `.dlt/` of whichever test ran before it in this worker
    from chaster_sessions.cli import reload_dlt_settings

    reload_dlt_settings()
    return tmp_path


@pytest.fixture
def api() -> Iterator[StandIn]:
    """3000 sessions of one extension, ascending order, no rate limit."""
    with StandIn(Population(3000), StandInConfig(token=TOKEN)) as standin:
        yield standin


@pytest.fixture
def make_api() -> Iterator[Any]:
    """Build a stand-in with a chosen population and config; stopped at the end of the test."""
    started: list[StandIn] = []

    def make(sessions: int | dict[str, int] = 300, **config: Any) -> StandIn:
        config.setdefault("token", TOKEN)
        standin = StandIn(Population(sessions), StandInConfig(**config)).start()
        started.append(standin)
        return standin

    yield make
    for standin in started:
        standin.stop()


def configure(
    monkeypatch: pytest.MonkeyPatch, standin: StandIn, slug: str | None = SLUG, **settings: Any
) -> None:
    """Point the pipeline at a stand-in through the documented env vars."""
    monkeypatch.setenv("SOURCES__CHASTER__API_TOKEN", settings.pop("token", TOKEN))
    monkeypatch.setenv("SOURCES__CHASTER__BASE_URL", standin.url)
    monkeypatch.setenv("SOURCES__CHASTER__REQUESTS_PER_MINUTE", "100000")
    if slug is not None:
        monkeypatch.setenv("SOURCES__CHASTER__EXTENSION_SLUG", slug)
    for key, value in settings.items():
        monkeypatch.setenv(f"SOURCES__CHASTER__{key.upper()}", str(value))


def to_postgres(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """A named destination, set by env vars only: what a user puts in .dlt/secrets.toml."""
    monkeypatch.setenv("CHASTER__DESTINATION", "warehouse")
    monkeypatch.setenv("DESTINATION__WAREHOUSE__DESTINATION_TYPE", "postgres")
    monkeypatch.setenv("DESTINATION__WAREHOUSE__CREDENTIALS", url)


@dataclass
class FirstLoad:
    """The folder of a finished first load of `Population(300)` by `--duckdb out.duckdb`: the
    DuckDB file and the pipeline's local folder, as the run left them."""

    folder: Path
    truth: dict[str, str]

    def copy_to(self, home: Path) -> None:
        """Give `home` this first load, as if it had run there (same file name, same pipeline
        name): the local folder is renamed for the new file's path and the paths in its state
        and marker are rewritten; dlt's trace of the run, which only the command's `--verbose`
        reads, is left behind."""
        from chaster_sessions.pipeline import duckdb_destination, local_pipelines_dir, target

        shutil.copy2(self.folder / "out.duckdb", home / "out.duckdb")
        [source] = pipeline_folders(self.folder)
        moved = local_pipelines_dir("chaster", target(duckdb_destination(home / "out.duckdb")))
        shutil.copytree(source, moved, ignore=shutil.ignore_patterns("trace.pickle"))
        for name in ("state.json", "destination.txt"):
            path = moved / "chaster" / name
            path.write_text(path.read_text().replace(str(self.folder), str(home)))


@pytest.fixture(scope="session")
def first_load(tmp_path_factory: pytest.TempPathFactory) -> FirstLoad:
    """One first load per worker, which `loaded_then_grown` copies instead of running again."""
    folder = tmp_path_factory.mktemp("first-load")
    with StandIn(Population(300), StandInConfig(token=TOKEN)) as standin:
        result = run_once_under(folder, standin, "--duckdb", "out.duckdb")
        assert result.code == 0, result.err
        return FirstLoad(folder, standin.population.truth(SLUG))


def loaded_then_grown(
    api: StandIn, home: Path, monkeypatch: pytest.MonkeyPatch, first_load: FirstLoad
) -> dict[str, Any]:
    """A database with a first load of `api`'s 300 sessions in it, the stand-in grown by 150
    sessions since, its request log cleared; returns the database's snapshot, which a failed
    run must leave unchanged. The load is `first_load`'s, copied: the same population loaded
    the same way (checked), so the test pays for its own run only."""
    assert api.population.truth(SLUG) == first_load.truth and api.count() == 0
    configure(monkeypatch, api)
    first_load.copy_to(home)
    api.population.add(SLUG, 150)
    api.clear_log()
    return db_snapshot(home / "out.duckdb")


def end_delete_add(api: StandIn, slug: str = SLUG) -> None:
    """The usual change between two runs: 3 running locks deserted, 2 deleted, 10 new."""
    locked = api.population.session_ids(slug, "locked")
    for session_id in locked[:3]:
        api.population.end(session_id, "deserted")
    for session_id in locked[3:5]:
        api.population.delete(session_id)
    api.population.add(slug, 10)


def standin_env(standin: StandIn, **settings: str) -> dict[str, str]:
    """The env vars that point a pipeline process at a stand-in (for subprocess runs)."""
    env = {
        "SOURCES__CHASTER__API_TOKEN": TOKEN,
        "SOURCES__CHASTER__BASE_URL": standin.url,
        "SOURCES__CHASTER__EXTENSION_SLUG": SLUG,
        "SOURCES__CHASTER__REQUESTS_PER_MINUTE": "100000",
    }
    env.update({f"SOURCES__CHASTER__{k.upper()}": v for k, v in settings.items()})
    return env


def process_env(*, drop: tuple[str, ...] = (), **extra: str) -> dict[str, str]:
    """This process's environment for a child a user would start: without the `SOURCES__*`
    settings and the `PYTHONPATH` a test may have set (and any `drop` prefix), plus `extra`."""
    dropped = ("SOURCES__", "PYTHONPATH", *drop)
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    return {**env, **extra}


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> CliResult:
    """Run the pipeline's main() in this process (fast; env vars are read per run)."""
    from chaster_sessions.cli import main

    capsys.readouterr()
    code = main(["--quiet", *args])
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)


def run_process(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> CliResult:
    """Run `python pipelines/sessions.py` as a user would, in its own process."""
    done = subprocess.run(
        [sys.executable, str(SESSIONS_PY), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


def start_process(
    *args: str, env: dict[str, str] | None = None, script: Path = SESSIONS_PY, quiet: bool = False
) -> subprocess.Popen[str]:
    """Start `python <script>` (the command, by default) without waiting for it, for a test that
    signals it or runs something beside it; `quiet` sends its output nowhere."""
    output = subprocess.DEVNULL if quiet else subprocess.PIPE
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        env={**os.environ, **(env or {})},
        stdout=output,
        stderr=output,
        text=True,
    )


def killed_after_commits(home: Path, commits: int, *args: str, env: dict[str, str]) -> None:
    """Run the command under `home` and SIGKILL it (a crash, an out-of-memory kill) once it has
    committed `commits` chunks."""
    proc = start_process(*args, env=env, quiet=True)
    wait_for_commits(home, commits)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def run_once_under(folder: Path, standin: StandIn | None, *args: str, **settings: str) -> CliResult:
    """Run the command in its own process, isolated under `folder` as `home` isolates a test:
    the load of a module-scoped fixture that several tests only read (from `standin`, or
    from none for `--demo`)."""
    project = folder / "project"
    (project / ".dlt").mkdir(parents=True, exist_ok=True)
    env = process_env(
        drop=("DLT_", "RUNTIME__"),
        DLT_DATA_DIR=str(folder / "dlt"),
        DLT_PROJECT_DIR=str(project),
        RUNTIME__LOG_LEVEL="ERROR",
        **(standin_env(standin, **settings) if standin is not None else {}),
    )
    done = subprocess.run(
        [sys.executable, str(SESSIONS_PY), "--quiet", *args],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return CliResult(done.returncode, done.stdout, done.stderr)


def pipeline_folders(home: Path, name: str = "chaster") -> list[Path]:
    """The local folders dlt was given for pipeline `name` under `home`: one per destination."""
    return sorted((home / "dlt" / "pipelines").glob(f"{name}@*"))


def attach(home: Path, name: str = "chaster") -> Any:
    """The pipeline `name` of the one destination loaded under `home`, as dlt attaches it."""
    import dlt

    (folder,) = pipeline_folders(home, name)
    return dlt.attach(name, pipelines_dir=str(folder))


def wait_for_commits(home: Path, commits: int, timeout: float = 60) -> None:
    """Wait until the command running under `home` has committed `commits` chunks: the run lock
    file says how many (reading the DuckDB file instead would take a lock the command needs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for lock in (home / "dlt" / "pipelines").glob("*/*.run.lock"):
            with contextlib.suppress(ValueError, KeyError):
                if json.loads(lock.read_text())["chunks"] >= commits:
                    return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {commits} chunks were committed within {timeout}s")


def query(path: Path | str, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def stored_sessions(path: Path | str) -> dict[str, str]:
    """session_id -> lock status, as stored."""
    return dict(query(path, "select session_id, lock__status from chaster.sessions"))


def removed_sessions(path: Path | str) -> set[str]:
    """The session ids marked removed (gone from the API, kept in DuckDB)."""
    rows = query(path, "select session_id from chaster.sessions where removed_at is not null")
    return {session_id for (session_id,) in rows}


def duplicates_sql(dataset: str = "chaster") -> str:
    """Counts the rows of `dataset`.sessions beyond one per session: what an interrupted load
    must never leave (on DuckDB and PostgreSQL alike)."""
    return f"select count(*) - count(distinct session_id) from {dataset}.sessions"  # noqa: S608


def duplicate_rows(path: Path | str, dataset: str = "chaster") -> int:
    """How many rows of `dataset`.sessions in a DuckDB file are duplicates."""
    return query(path, duplicates_sql(dataset))[0][0]


def cursors(home: Path) -> dict[str, tuple[Any, Any, Any]]:
    """Each stored cursor (`slug|status`) of the one pipeline under `home`: its high mark, the
    order it saw and when its last sweep began."""
    from chaster_sessions import cursor_states

    return {
        key: (entry.get("high"), entry.get("order"), entry.get("last_sweep"))
        for key, entry in cursor_states(attach(home))["cursors"].items()
    }


def present_sessions(path: Path | str) -> dict[str, str]:
    """session_id -> lock status of the sessions not marked removed: what the API has now."""
    return dict(
        query(
            path, "select session_id, lock__status from chaster.sessions where removed_at is null"
        )
    )


def has_table(db: Path | str, table: str) -> bool:
    sql = "select count(*) from information_schema.tables where table_schema = 'chaster' and "
    return bool(query(db, sql + "table_name = ?", [table])[0][0])


def stored_log(db: Path | str) -> dict[str, list[str]]:
    """session_id -> stored entry ids, oldest first (ids are creation-ordered), as `log_truth`."""
    stored: dict[str, list[str]] = {}
    if not has_table(db, "action_logs"):
        return stored
    for session_id, log_id in query(
        db, "select session_id, log_id from chaster.action_logs order by log_id"
    ):
        stored.setdefault(session_id, []).append(log_id)
    return stored


def log_requests_needed(db: Path | str, truth: dict[str, list[str]]) -> int:
    """The log requests a run needs for what `db` holds: for each stored session whose cursor
    is not complete (never read, or read while running), one page per `limit` (100) of its
    entries not stored yet, and at least one. Complete sessions cost nothing."""
    stored = stored_log(db)
    pending = query(
        db,
        "select s.session_id from chaster.sessions s left join chaster.action_log_cursors c "
        "using (session_id) where c.complete is not true"
        if has_table(db, "action_log_cursors")
        else "select session_id from chaster.sessions",
    )
    return sum(
        max(1, math.ceil(len(set(truth[sid]) - set(stored.get(sid, []))) / 100))
        for (sid,) in pending
    )


def db_snapshot(path: Path) -> dict[str, Any]:
    """Everything a failed run must leave unchanged: rows per table and the stored state (the
    run history, `_chaster_runs`, is the one table a failed run adds a row to)."""
    if not path.exists():
        return {}
    tables = query(
        path,
        "select table_name from information_schema.tables where table_schema = 'chaster' "
        "and table_name <> '_chaster_runs' order by 1",
    )
    snapshot: dict[str, Any] = {
        t: query(path, f'select count(*) from chaster."{t}"')[0][0]  # noqa: S608
        for (t,) in tables
    }
    if not tables:
        return snapshot
    snapshot["state"] = query(
        path, "select version, state from chaster._dlt_pipeline_state order by version"
    )
    return snapshot


def values_found(path: Path | str, needles: set[str]) -> set[str]:
    """Which of `needles` occur inside any value of any table (DuckDB compresses its file, so
    searching the bytes would prove nothing)."""
    # every value of every row, joined by NULs that no needle holds: a needle is found in the
    # whole text exactly when it is found in one value
    assert not any("\x00" in n or not n for n in needles)
    values: list[str] = []
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables"
        ).fetchall()
        for schema, table in tables:
            for row in con.execute(f'select * from "{schema}"."{table}"').fetchall():  # noqa: S608
                values.extend(str(v) for v in row if v is not None)
    return substrings_found("\x00".join(values), needles)


def substrings_found(text: str, needles: set[str]) -> set[str]:
    """Which of `needles` occur in `text`, in one pass per needle length rather than one scan of
    the text per needle (thousands of lock credentials over megabytes of rows): a needle lies
    inside a run of the characters needles are made of, so only those runs' slices of each
    needle length are looked up."""
    if not needles:
        return set()
    alphabet = re.escape("".join(sorted(set("".join(needles)))))
    runs = re.findall(f"[{alphabet}]+", text)
    found: set[str] = set()
    for length in {len(n) for n in needles}:
        slices = {run[i : i + length] for run in runs for i in range(len(run) - length + 1)}
        found |= needles & slices
    return found


# -- a throwaway PostgreSQL server on loopback, for the destination tests ------------------------


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None
    )
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (.ci/run installs it)")
    return found


def _as_postgres_user(command: list[str], folder: Path) -> None:
    """initdb refuses to run as root: run the server as the `postgres` user when we are root."""
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        command = ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(command)]
    subprocess.run(command, check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server for the whole test session; yields its base URL (no database)."""
    folder = Path(tempfile.mkdtemp(prefix="chaster-pg-"))
    folder.chmod(0o755)
    data = folder / "data"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _as_postgres_user([_pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"], folder)
    options = f"-k {folder} -p {port} -h 127.0.0.1 -c fsync=off"
    log = str(folder / "log")
    _as_postgres_user(
        [_pg_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", log, "-w", "start"], folder
    )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        _as_postgres_user([_pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], folder)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres(postgres_server: str) -> str:
    """A fresh database on the session's server; yields its URL (with a password that trust
    authentication ignores, so tests can search for it)."""
    import psycopg2

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(f"postgresql://postgres@{postgres_server}/postgres")
    try:
        admin.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        with admin.cursor() as cursor:
            cursor.execute(f"create database {name}")
    finally:
        admin.close()
    return f"postgresql://postgres:{PG_PASSWORD}@{postgres_server}/{name}"


PG_PASSWORD = "pg-secret-93c1"


def pg_query(url: str, sql: str) -> list[tuple[Any, ...]]:
    import psycopg2

    with psycopg2.connect(url) as con, con.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


# session-scoped, so that the tests run between these two (SLOWEST_FIRST) do not make the
# demo run again
@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One `--demo` run, its folder and what it printed: the tests of the demo page and of the
    notebook only read it (mark them `xdist_group("demo")`)."""
    folder = tmp_path_factory.mktemp("demo")
    result = run_once_under(folder, None, "--demo")
    assert result.code == 0, result.err
    return folder, result.out
