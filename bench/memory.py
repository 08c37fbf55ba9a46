"""Where a long backfill's memory goes, chunk by chunk, and whether chunks slow down.

    .venv/bin/python bench/memory.py --sessions 30000 300000          # RSS, DuckDB, time
    .venv/bin/python bench/memory.py --sessions 30000 100000 --python  # + tracemalloc

For each size it starts the stand-in (bodies cached, warmed up), then runs the pipeline in a
child process the way the command does (`runner.load`, default chunks of 100 pages), and after
every committed chunk prints one line: the chunk's seconds, dlt's part of them by step
(extract, normalize, load, from the pipeline's trace) and the runner's checkpoint before the
chunk (`destination.settle`, timed), the process's RSS now and at its peak, what DuckDB holds
(`duckdb_memory()` on the run's own connection, right after dlt's commit and before the
runner's checkpoint) and its `memory_limit`, and with `--python` the Python heap as
`tracemalloc` sees it (slower: use it for where, not for how fast). `--logs` loads every
action log too. What grows with the chunk number grows with the dataset; what stays level is
bounded by the chunk. It ends with the run's wall time, peak RSS, the DuckDB file's size and
the state's rows and largest row.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from bench.run import LOGS_ON, SLUG, STATE_SQL, TOKEN, StandInProcess, run_tool  # noqa: E402


def rss_mb() -> tuple[int, int]:
    """(resident now, peak so far) of this process, in MB."""
    status = Path("/proc/self/status").read_text()
    now = int(status.split("VmRSS:")[1].split()[0]) // 1024
    return now, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def duckdb_figures(pipeline: Any) -> dict[str, Any]:
    """What DuckDB holds in memory now, by tag (MB), and its memory limit, on the run's own
    connection (the runner holds one for the whole run)."""
    from chaster_sessions.destination import connection

    with connection(pipeline) as client:
        with client.execute_query(
            "select tag, memory_usage_bytes, temporary_storage_bytes from duckdb_memory()"
        ) as cursor:
            rows = cursor.fetchall()
        with client.execute_query("select current_setting('memory_limit')") as cursor:
            limit = cursor.fetchall()[0][0]
    held = {tag: round(used / 2**20) for tag, used, _ in rows if used}
    spilled = sum(temp for _, _, temp in rows)
    return {
        "duckdb_mb": sum(held.values()),
        "by_tag": held,
        "spilled_mb": spilled // 2**20,
        "limit": limit,
    }


def child(url: str, folder: Path, python: bool, logs: bool) -> None:
    """One backfill in this process, a JSON line per committed chunk on stdout."""
    os.environ.update(
        {
            "DLT_DATA_DIR": str(folder / "dlt"),
            "RUNTIME__LOG_LEVEL": "ERROR",
            "SOURCES__CHASTER__API_TOKEN": TOKEN,
            "SOURCES__CHASTER__BASE_URL": url,
            "SOURCES__CHASTER__EXTENSION_SLUG": SLUG,
            "SOURCES__CHASTER__REQUESTS_PER_MINUTE": "1000000",  # as bench/run.py's backfill
            **(LOGS_ON if logs else {}),
        }
    )
    if python:
        tracemalloc.start(1)
    import dlt

    from chaster_sessions import chaster_source
    from chaster_sessions.runner import load

    pipeline = dlt.pipeline(
        "chaster_sessions",
        destination=dlt.destinations.duckdb(str(folder / "out.duckdb")),
        dataset_name="chaster",
    )
    chunk = 0
    checkpoint = 0.0
    first: Any = None
    started = time.perf_counter()

    def measured(pipe: dlt.Pipeline, source: Any, file_format: Any) -> object:
        nonlocal chunk, first, started, checkpoint
        run_started = time.perf_counter()
        info = pipe.run(source, loader_file_format=file_format)
        chunk += 1
        now = time.perf_counter()
        line: dict[str, Any] = {"chunk": chunk, "seconds": round(now - started, 2)}
        # the rest of the chunk's seconds: the runner's checkpoint and reads between chunks
        line["run_seconds"] = round(now - run_started, 2)
        line["checkpoint_seconds"] = round(checkpoint, 2)  # the one before this chunk
        trace = pipe.last_trace
        line["steps"] = {
            step.step: round((step.finished_at - step.started_at).total_seconds(), 2)
            for step in (trace.steps if trace is not None else [])
            if step.step in ("extract", "normalize", "load") and step.finished_at
        }
        line["rss_mb"], line["peak_mb"] = rss_mb()
        line.update(duckdb_figures(pipe))
        if python:
            current, peak = tracemalloc.get_traced_memory()
            line["py_mb"], line["py_peak_mb"] = current // 2**20, peak // 2**20
            snapshot = tracemalloc.take_snapshot()
            if first is None:
                first = snapshot
            else:
                top = snapshot.compare_to(first, "lineno")[:3]
                line["py_growth"] = [
                    f"{stat.size_diff // 1024} KB {stat.traceback.format()[-1].strip()}"
                    for stat in top
                ]
            tracemalloc.reset_peak()
        print(json.dumps(line), flush=True)
        started = time.perf_counter()
        return info

    import chaster_sessions.runner as runner

    # the runner calls `settle` by its module-level name: timed here, for this child only
    settle = runner.settle

    def timed_settle(pipe: dlt.Pipeline) -> None:  # the checkpoint between chunks, timed
        nonlocal checkpoint
        begun = time.perf_counter()
        settle(pipe)
        checkpoint = time.perf_counter() - begun

    runner.settle = timed_settle
    load(pipeline, chaster_source(), run_once=measured)
    done: dict[str, Any] = {"done": True, "peak_mb": rss_mb()[1]}
    done["file_mb"] = (folder / "out.duckdb").stat().st_size // 2**20
    with duckdb.connect(str(folder / "out.duckdb"), read_only=True) as con:
        done["state_rows"], done["state_bytes"] = con.execute(STATE_SQL).fetchall()[0]
        done["sessions"] = con.execute("select count(*) from chaster.sessions").fetchall()[0][0]
        if logs:
            done["entries"] = con.execute("select count(*) from chaster.action_logs").fetchall()[0][
                0
            ]
    print(json.dumps(done), flush=True)


def measure(sessions: int, work: Path, python: bool, logs: bool) -> None:
    standin = StandInProcess(sessions)
    try:
        run_tool("floor", standin, {}, work / f"warmup-{sessions}")  # fills the body cache
        shutil.rmtree(work / f"warmup-{sessions}")
        folder = work / f"memory-{sessions}"
        folder.mkdir()
        command = [sys.executable, __file__, "--child", standin.url, str(folder)]
        command += ["--python"] if python else []
        command += ["--logs"] if logs else []
        print(f"{sessions:,} sessions{' with action logs' if logs else ''}:", flush=True)
        started = time.perf_counter()
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
            assert process.stdout is not None
            for raw in process.stdout:
                line = json.loads(raw)
                if line.get("done"):
                    wall = time.perf_counter() - started
                    entries = f", {line['entries']:,} log entries" if "entries" in line else ""
                    print(
                        f"  done in {wall:.1f} s ({sessions / wall:,.0f} sessions/s), peak RSS "
                        f"{line['peak_mb']} MB, DuckDB file {line['file_mb']} MB, "
                        f"{line['sessions']:,} sessions{entries}, state {line['state_rows']} rows "
                        f"of at most {line['state_bytes']} bytes",
                        flush=True,
                    )
                    if line["sessions"] != sessions:
                        raise SystemExit(f"stored {line['sessions']:,} sessions, not {sessions:,}")
                    continue
                growth = "; ".join(line.get("py_growth", []))
                python_part = (
                    f" py {line['py_mb']:4d} MB (peak {line['py_peak_mb']}) {growth}"
                    if "py_mb" in line
                    else ""
                )
                steps = " ".join(f"{step} {sec:.2f}" for step, sec in line["steps"].items())
                tags = ", ".join(f"{tag} {mb}" for tag, mb in line["by_tag"].items() if mb)
                print(
                    f"  chunk {line['chunk']:3d} {line['seconds']:6.2f} s"
                    f" (dlt {line['run_seconds']:6.2f} s: {steps};"
                    f" checkpoint before {line['checkpoint_seconds']:.2f} s)"
                    f"  RSS {line['rss_mb']:5d} MB (peak {line['peak_mb']:5d})"
                    f"  DuckDB {line['duckdb_mb']:4d} MB ({tags}; limit {line['limit']}, "
                    f"spilled {line['spilled_mb']} MB){python_part}",
                    flush=True,
                )
        if process.returncode:
            raise SystemExit(f"the profiled run failed (exit {process.returncode})")
    finally:
        standin.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[30000])
    parser.add_argument("--python", action="store_true", help="also trace the Python heap")
    parser.add_argument("--logs", action="store_true", help="with every action log")
    parser.add_argument("--child", nargs=2, metavar=("URL", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), args.python, args.logs)
        return 0
    work = Path(tempfile.mkdtemp(prefix="chaster-memory-"))
    try:
        for sessions in args.sessions:
            measure(sessions, work, args.python, args.logs)
    finally:
        shutil.rmtree(work)  # a million sessions leave about 1 GB
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
