"""A run stopped by SIGINT (Ctrl-C) or SIGTERM keeps what it committed and says so.

The real command runs against a slowed stand-in and gets the signal after two committed chunks:
it must exit 130 or 143 with one line, write its `--report` and its runs-table row as
`interrupted` with the true figures, and the next run must converge on the API's sessions.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    ROOT,
    SLUG,
    configure,
    duplicate_rows,
    query,
    run_process,
    standin_env,
    start_process,
    stored_sessions,
    wait_for_commits,
)

LINE = re.compile(
    r"error: interrupted \((SIGINT|SIGTERM)\) after (\d+) committed chunks? "
    r"\(([\d,]+) new sessions?\); the next run resumes"
)


def _runs(path: Path) -> list[tuple[Any, ...]]:
    """The rows of the runs table; none when no run has written one yet."""
    exists = "select count(*) from information_schema.tables where table_name = '_chaster_runs'"
    if not query(path, exists)[0][0]:
        return []
    return query(
        path, "select status, exit_code, chunks, requests, error from chaster._chaster_runs"
    )


def _converges(api: Any, env: dict[str, str]) -> None:
    """The next run goes on from the interrupted one and ends with the API's sessions, once."""
    result = run_process(
        "--duckdb", "out.duckdb", env={**env, **standin_env(api, chunk_pages="100")}
    )
    assert result.code == 0, result.err
    assert "resumed an interrupted run" in result.out
    assert stored_sessions("out.duckdb") == api.population.truth(SLUG)
    assert duplicate_rows("out.duckdb") == 0


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_ends_the_run_with_its_committed_chunks_recorded(home, make_api, signum, code):
    api = make_api(1200, latency=0.02)
    env = standin_env(api, chunk_pages="2")
    proc = start_process("--quiet", "--duckdb", "out.duckdb", "--report", "report.json", env=env)
    wait_for_commits(home, 2)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert out == ""
    line = err.strip()
    assert "\n" not in line, err  # one line
    found = LINE.fullmatch(line)
    assert found, line
    name, chunks, new = found[1], int(found[2]), int(found[3].replace(",", ""))
    assert name == signal.Signals(signum).name
    stored = query("out.duckdb", "select count(*) from chaster.sessions")[0][0]
    assert chunks >= 2
    assert new == stored == chunks * 200  # two pages of 100 a chunk; the first load
    report = json.loads((home / "report.json").read_text())
    assert report["status"] == "interrupted"
    assert report["exit_code"] == code
    assert report["error"] == line.removeprefix("error: ")
    assert report["chunks"] == chunks
    assert report["requests"]["total"] > 0
    assert report["extensions"][SLUG]["new"] == new
    assert _runs(home / "out.duckdb") == [
        ("interrupted", code, chunks, report["requests"]["total"], report["error"])
    ]
    _converges(api, env)


def test_a_second_signal_ends_the_run_at_once(home, make_api):
    api = make_api(1200, latency=0.02)
    env = standin_env(api, chunk_pages="2")
    proc = start_process("--quiet", "--duckdb", "out.duckdb", env=env)
    wait_for_commits(home, 1)
    # Ctrl-C, then a scheduler's SIGTERM: Python runs pending handlers in signal-number order,
    # so SIGINT is always the first signal the run handles and SIGTERM the second
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM, err  # ended by the signal itself
    assert "interrupted" not in err
    assert _runs(home / "out.duckdb") == []  # no time was taken to record it
    _converges(api, env)


def test_a_signal_while_dlt_commits_a_chunk_waits_for_the_commit(home, make_api, monkeypatch):
    """The runner's `run_once` door: the signal comes between dlt's extract and normalize, and
    the chunk is still committed before the run stops."""
    import dlt

    from chaster_sessions import chaster_source, load
    from chaster_sessions.interrupts import Interrupted, stop_on_signals

    api = make_api(1000)
    configure(monkeypatch, api, chunk_pages="2")

    def signalled_mid_commit(pipeline: dlt.Pipeline, source: Any, file_format: Any) -> object:
        pipeline.extract(source, loader_file_format=file_format)
        os.kill(os.getpid(), signal.SIGTERM)
        pipeline.normalize()
        return pipeline.load()

    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals(), pytest.raises(Interrupted) as stopped:
        pipeline = dlt.pipeline(
            "chaster",
            destination=dlt.destinations.duckdb(str(home / "out.duckdb")),
            dataset_name="chaster",
        )
        load(pipeline, chaster_source(), run_once=signalled_mid_commit)
    assert signal.getsignal(signal.SIGTERM) is before  # the handlers are put back
    assert os.environ.get("RUNTIME__INTERCEPT_SIGNALS") is None  # and dlt's setting
    assert (stopped.value.signum, stopped.value.chunks) == (signal.SIGTERM, 1)
    assert stopped.value.new_sessions == 200
    assert query(home / "out.duckdb", "select count(*) from chaster.sessions") == [(200,)]
    assert _runs(home / "out.duckdb")[0][:3] == ("interrupted", 143, 1)


def test_a_library_users_handlers_are_left_alone(home, make_api, monkeypatch):
    import dlt

    from chaster_sessions import chaster_source, load

    api = make_api(300)
    configure(monkeypatch, api)

    def mine(signum: int, frame: object) -> None:
        """A library user's own handler."""

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        seen: list[object] = []

        def run_once(pipeline: dlt.Pipeline, source: Any, file_format: Any) -> object:
            seen.append(signal.getsignal(signal.SIGTERM))  # what dlt's extract runs under
            return pipeline.run(source, loader_file_format=file_format)

        pipeline = dlt.pipeline(
            "chaster", destination=dlt.destinations.duckdb(str(home / "out.duckdb"))
        )
        load(pipeline, chaster_source(), run_once=run_once)
        assert seen == [mine]
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)


def _setup_is_a_no_op() -> bool:
    """`task.py run` first sets up .venv; the test must not install into a shared one."""
    sys.path.insert(0, str(ROOT))
    try:
        import task
    finally:
        sys.path.remove(str(ROOT))
    stamp = task.STAMP.read_text() if task.STAMP.exists() else ""
    return any(f"{kind} {task.fingerprint(kind)}" in stamp for kind in ("runtime", "dev"))


def test_task_run_hands_a_signal_to_the_command(home, make_api):
    if not _setup_is_a_no_op():
        pytest.skip(".venv is not set up from this checkout's locks (python3 task.py setup dev)")
    api = make_api(1200, latency=0.02)
    env = standin_env(api, chunk_pages="2")
    database = home / "out.duckdb"
    proc = start_process("run", "--duckdb", str(database), env=env, script=ROOT / "task.py")
    wait_for_commits(home, 2)
    proc.send_signal(signal.SIGINT)  # to task.py's process only, as `kill -INT` does
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    found = LINE.search(err)
    assert found and found[1] == "SIGINT", err
    assert _runs(database)[0][:3] == ("interrupted", 130, int(found[2]))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_python_starts_is_one_line_too(home, make_api, signum):
    """Importing dlt takes a second or more; a signal then (a scheduler's time-out right after
    the start) ends the command with one line and the signal's code, never a traceback."""
    api = make_api(300)
    proc = start_process(env=standin_env(api))
    time.sleep(0.3)  # past Python's own start, inside the imports (or, on a fast machine, later)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum
    name = signal.Signals(signum).name
    assert err.startswith(f"error: interrupted ({name})"), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
