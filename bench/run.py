"""Benchmark this pipeline beside the `rest_api` peers and the `requests` floor, in one run.

    python bench/run.py                          # quick: 2,000 sessions, 3 repeats
    python bench/run.py --sessions 10000 100000  # the recorded sizes (bench/RESULTS.md)

For each size it starts the API stand-in in its own process (bodies cached after a warm-up pass,
so the figures measure the clients), then runs each tool as its own process, each in a fresh
folder with a fresh pipeline and DuckDB file, interleaved, `--repeat` times. It reports medians:
wall time, sessions per second, peak RSS of the tool's whole process tree, and requests. It then
measures rate-limit utilisation under a scaled budget, and the requests that steady-state
scheduled runs spend against the minimum the API allows. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
SLUG = "example-extension"
TOKEN = "bench-token"  # noqa: S105 - the loopback stand-in's token
PAGE = 100

TOOLS = {
    "pipeline": [str(ROOT / "pipelines" / "sessions.py"), "--quiet", "--duckdb", "out.duckdb"],
    "rest_api": [str(ROOT / "bench" / "peer_rest_api.py")],
    "rest_api_tuned": [str(ROOT / "bench" / "peer_rest_api.py"), "--tuned"],
    "floor": [str(ROOT / "bench" / "floor.py")],
}
LOGS_ON = {
    "SOURCES__CHASTER__ACTION_LOGS": "true",
    # high enough that one run reads every session's log
    "SOURCES__CHASTER__ACTION_LOG_REQUESTS": "1000000",
}
# the state's rows (one per committed chunk) and the largest of them, in bytes
STATE_SQL = "select count(*), max(octet_length(state::blob)) from chaster._dlt_pipeline_state"
COUNT_SQL = {
    "pipeline": "select count(*) from chaster.sessions",
    "rest_api": "select count(*) from chaster.sessions",
    "rest_api_tuned": "select count(*) from chaster.sessions",
    "floor": "select count(*) from raw_sessions",
}


# -- the stand-in, in its own process ----------------------------------------------------------


class StandInProcess:
    def __init__(self, sessions: int, *args: str) -> None:
        cmd = [sys.executable, "-m", "chaster_standin", "--port", "0", "--token", TOKEN]
        # the data of every benchmark run ends on the same day
        cmd += ["--sessions", str(sessions), "--now", "2026-11-01", "--cache", *args]
        self.process = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http://"):
            raise SystemExit(f"the stand-in did not start: {self.url!r}")

    def admin(self, hook: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(  # noqa: S310 - loopback URL we started
            f"{self.url}/_standin/{hook}", data=json.dumps(body or {}).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
            return json.loads(answer.read())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


# -- one measured run --------------------------------------------------------------------------


@dataclass
class Run:
    tool: str
    seconds: float
    peak_rss_mb: float
    requests: int
    rows: int
    rate_limited: int = 0
    request_span: float = 0.0  # first to last request, seconds
    state_rows: int = 0  # rows of _dlt_pipeline_state (one per committed chunk)
    state_max_bytes: int = 0  # the largest of them
    log_requests: int = 0  # of `requests`, those for action logs
    log_rows: int = 0  # rows of action_logs, when the run loaded logs
    before_first: float = 0.0  # seconds from the tool's start to its first request
    after_last: float = 0.0  # seconds from its last request to its exit


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants, from /proc."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(next(x for x in status.splitlines() if x.startswith("VmRSS")).split()[1])
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration, ValueError):
            continue
    return total


PEER_MEMORY_LIMIT = 16 * 1024**3


def _limit_memory() -> None:
    """The peer's memory grows with the data (4 GB at 10,000 sessions): cap its address space
    so that at 100,000 it fails on its own instead of the machine's OOM killer taking others."""
    resource.setrlimit(resource.RLIMIT_AS, (PEER_MEMORY_LIMIT, PEER_MEMORY_LIMIT))


def run_tool(
    tool: str, standin: StandInProcess, env: dict[str, str], folder: Path, fresh: bool = True
) -> Run:
    """Run one tool to the end; `fresh=False` runs again in a folder kept from an earlier run
    (its pipeline state and DuckDB file), as a scheduler would."""
    folder.mkdir(parents=True, exist_ok=not fresh)
    full_env = {
        **os.environ,
        "DLT_DATA_DIR": str(folder / "dlt"),
        "RUNTIME__LOG_LEVEL": "ERROR",
        "SOURCES__CHASTER__API_TOKEN": TOKEN,
        "SOURCES__CHASTER__BASE_URL": standin.url,
        "SOURCES__CHASTER__EXTENSION_SLUG": SLUG,
        **env,
    }
    standin.admin("reset-log")
    peak = 0
    started = time.perf_counter()
    started_at = time.monotonic()  # the stand-in's clock for its requests
    process = subprocess.Popen(
        [sys.executable, *TOOLS[tool]],
        cwd=folder,
        preexec_fn=_limit_memory if tool.startswith("rest_api") else None,
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_kb(process.pid))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = process.communicate()
    seconds = time.perf_counter() - started
    ended_at = time.monotonic()
    done.set()
    sampler.join()
    if process.returncode != 0:
        print(f"  {tool} failed (exit {process.returncode}): {err.strip()[-500:]}", flush=True)
        return Run(tool, seconds, peak / 1024, standin.admin("stats")["requests"], -1)
    stats = standin.admin("stats")
    state_rows = state_max = log_rows = 0
    with duckdb.connect(str(folder / "out.duckdb"), read_only=True) as con:
        rows = con.execute(COUNT_SQL[tool]).fetchall()[0][0]
        if tool == "pipeline":
            state_rows, state_max = con.execute(STATE_SQL).fetchall()[0]
        if full_env.get("SOURCES__CHASTER__ACTION_LOGS") == "true":
            log_rows, distinct = con.execute(
                "select count(*), count(distinct log_id) from chaster.action_logs"
            ).fetchall()[0]
            if distinct != log_rows:
                raise SystemExit(f"{log_rows - distinct} action log entries stored twice")
    span = (stats["last_at"] - stats["first_at"]) if stats["requests"] > 1 else 0.0
    return Run(
        tool,
        seconds,
        peak / 1024,
        stats["requests"],
        rows,
        stats["by_status"].get("429", 0),
        span,
        state_rows,
        state_max or 0,
        stats["by_endpoint"].get("logs", 0),
        log_rows,
        (stats["first_at"] - started_at) if stats["requests"] else 0.0,
        (ended_at - stats["last_at"]) if stats["requests"] else 0.0,
    )


# -- the three parts of the benchmark ----------------------------------------------------------


def compare(
    sessions: int,
    repeat: int,
    work: Path,
    tools: list[str],
    env: dict[str, str],
    peer_repeat: int | None = None,
) -> dict[str, list[Run]]:
    """Backfill `sessions` with each tool, `repeat` times, interleaved."""
    standin = StandInProcess(sessions)
    try:
        run_tool("floor", standin, {}, work / f"warmup-{sessions}")  # fills the body cache
        runs: dict[str, list[Run]] = {tool: [] for tool in tools}
        tool_env = {"SOURCES__CHASTER__REQUESTS_PER_MINUTE": "1000000", **env}
        for i in range(repeat):
            for tool in tools:
                if tool.startswith("rest_api") and peer_repeat is not None and i >= peer_repeat:
                    continue
                run = run_tool(tool, standin, tool_env, work / f"{tool}-{sessions}-{i}")
                if run.rows == -1:
                    runs[tool].append(run)
                    continue
                if run.rows != sessions:
                    raise SystemExit(f"{tool} loaded {run.rows} of {sessions} sessions")
                runs[tool].append(run)
                state = (
                    f", state {run.state_rows} rows of at most {run.state_max_bytes:,} bytes"
                    if tool == "pipeline"
                    else ""
                )
                print(
                    f"  {sessions:>7,} sessions  {tool:<14} run {i + 1}: {run.seconds:6.1f} s, "
                    f"{run.peak_rss_mb:6.0f} MB, {run.requests} requests{state}",
                    flush=True,
                )
        return runs
    finally:
        standin.stop()


def utilisation(sessions: int, work: Path, per_minute: int, logs: bool = False) -> str:
    """A backfill under a budget of `per_minute` requests in any rolling 60 s, the stand-in
    enforcing it as NestJS's throttler does, the pipeline told the same budget; with `logs`,
    it reads every session's action log too.

    The budget needs (requests - 1) x 60 / per_minute seconds for the run's requests, however
    they are spread; the share of the wall time that this is says how busy the run kept it.
    With logs the stand-in is not warmed: at a few requests a second, generating a body or a
    history costs nothing against the wait, and the warm-up's requests would hold the window."""
    standin = StandInProcess(sessions, "--rate-limit", str(per_minute), "--rate-window", "60")
    try:
        if not logs:
            run_tool("floor", standin, {}, work / f"warmup-rate-{per_minute}-{sessions}")
            time.sleep(61)  # the warm-up's requests leave the window
        env = {
            "SOURCES__CHASTER__REQUESTS_PER_MINUTE": str(per_minute),
            **(LOGS_ON if logs else {}),
        }
        run = run_tool("pipeline", standin, env, work / f"rate-{per_minute}-{sessions}-{logs}")
    finally:
        standin.stop()
    needed = (run.requests - 1) * 60 / per_minute
    of_logs = f" ({run.log_requests} for logs, {run.log_rows:,} entries)" if logs else ""
    return (
        f"  {per_minute}/min, {sessions:,} sessions: {run.requests} requests{of_logs}, "
        f"{run.rate_limited} x 429; the budget needs {needed:.1f} s, the run took "
        f"{run.seconds:.1f} s: busy {needed / run.seconds:.1%} of the wall time "
        f"({needed / run.request_span:.1%} from first to last request); "
        f"{run.before_first:.2f} s before the first request, {run.after_last:.2f} s after the last"
    )


def sessions_minimum(standin: StandInProcess, ended: int) -> tuple[int, str]:
    """The fewest requests a steady-state run of the sessions can spend, and how, after
    `ended` running locks ended: one page of new sessions, then what it takes to learn which
    running locks ended. The API has no "changed since": the running set must be re-read (one
    locked sweep), and each lock that left it fetched (a GET), unless a full sweep is cheaper."""
    truth = standin.admin("truth")[SLUG]
    running = sum(1 for status in truth.values() if status == "locked")
    locked_way = math.ceil(running / PAGE) + ended
    full_way = math.ceil(len(truth) / PAGE)
    if locked_way <= full_way:
        return 1 + locked_way, (
            f"new page + {math.ceil(running / PAGE)}-page locked sweep + {ended} GETs"
        )
    return 1 + full_way, f"new page + {full_way}-page full sweep"


def efficiency(sessions: int, work: Path) -> list[str]:
    """Requests a scheduled run spends when little has changed, against the API's minimum."""
    standin = StandInProcess(sessions)
    folder = work / f"steady-{sessions}"
    peer_folder = work / f"steady-peer-{sessions}"
    env = {"SOURCES__CHASTER__REQUESTS_PER_MINUTE": "1000000"}
    lines = []
    try:
        first = run_tool("pipeline", standin, env, folder)
        peer = run_tool("rest_api", standin, env, peer_folder)
        lines.append(
            f"  backfill of {sessions:,}: pipeline {first.requests} requests, "
            f"rest_api {peer.requests} (minimum {math.ceil(sessions / PAGE)})"
        )
        steps = [
            ("nothing new", {}),
            ("5 new", {"add": 5}),
            ("20 ended, 5 new", {"add": 5, "end": 20}),
        ]
        for label, change in steps:
            if change:
                standin.admin("mutate", change)
            minimum, way = sessions_minimum(standin, change.get("end", 0))
            again = run_tool("pipeline", standin, env, folder, fresh=False)
            cursor_only = run_tool(
                "pipeline",
                standin,
                {**env, "SOURCES__CHASTER__REFRESH": "false"},
                folder,
                fresh=False,
            )
            peer_run = run_tool("rest_api", standin, env, peer_folder, fresh=False)
            lines.append(
                f"  {label:<16} pipeline {again.requests:>4} requests (minimum {minimum}: {way}); "
                f"refresh=false {cursor_only.requests} (minimum 1); rest_api {peer_run.requests}"
            )
    finally:
        standin.stop()
    return lines


LOG_STEPS: list[tuple[str, dict[str, int]]] = [
    ("nothing new", {}),
    ("1,000 entries, 5 new", {"add": 5, "log_entries": 1000}),
    ("1,000 entries, 20 ended, 5 new", {"add": 5, "end": 20, "log_entries": 1000}),
]


def log_minimum(before: dict[str, list[str]], after: dict[str, list[str]], read: set[str]) -> int:
    """The fewest log requests that read the sessions `read`: one each, and a page for each
    further 100 of its new entries (`before` and `after` are the stand-in's log truth)."""
    return sum(max(1, math.ceil((len(after[s]) - len(before.get(s, []))) / PAGE)) for s in read)


def _checked(run: Run, sessions: int, entries: int | None = None) -> Run:
    """Stop the benchmark when a run did not load every session and, unless `entries` is None
    (the sessions only), every entry."""
    if run.rows != sessions or (entries is not None and run.log_rows != entries):
        raise SystemExit(f"loaded {run.rows} of {sessions} sessions, {run.log_rows} of {entries}")
    return run


def action_logs(sessions: int, work: Path) -> list[str]:
    """The action logs (issue 21) beside the sessions only: a backfill of both, then
    steady-state runs of both after running sessions got entries, some ended and new ones came,
    each against the minimum the API allows (the sessions' minimum as in `efficiency`)."""
    standin = StandInProcess(sessions)
    plain_folder, logs_folder = work / f"plain-{sessions}", work / f"logs-{sessions}"
    env = {"SOURCES__CHASTER__REQUESTS_PER_MINUTE": "1000000"}
    try:
        run_tool("floor", standin, {}, work / f"warmup-logs-{sessions}")  # fills the body cache
        truth: dict[str, list[str]] = standin.admin("log-truth")[SLUG]
        entries = sum(map(len, truth.values()))
        plain = _checked(run_tool("pipeline", standin, env, plain_folder), sessions)
        logs = _checked(
            run_tool("pipeline", standin, {**env, **LOGS_ON}, logs_folder), sessions, entries
        )
        lines = [
            f"  backfill of {sessions:,}: sessions only {plain.seconds:.1f} s, {plain.requests} "
            f"requests (minimum {math.ceil(sessions / PAGE)}), peak RSS {plain.peak_rss_mb:.0f} MB",
            f"    with logs {logs.seconds:.1f} s, {logs.requests} requests = "
            f"{logs.requests - logs.log_requests} sessions + {logs.log_requests} logs (minimum "
            f"{log_minimum({}, truth, set(truth))}), {logs.log_rows:,} entries, "
            f"peak RSS {logs.peak_rss_mb:.0f} MB",
        ]
        for label, change in LOG_STEPS:
            status = standin.admin("truth")[SLUG]  # as the previous run saw it
            read = {session for session, now in status.items() if now == "locked"}
            if change:
                standin.admin("mutate", change)
            after: dict[str, list[str]] = standin.admin("log-truth")[SLUG]
            read |= set(after) - set(truth)
            log_min = log_minimum(truth, after, read)
            new_entries = sum(map(len, after.values())) - entries
            truth, entries = after, entries + new_entries
            minimum, _ = sessions_minimum(standin, change.get("end", 0))
            logs = _checked(
                run_tool("pipeline", standin, {**env, **LOGS_ON}, logs_folder, fresh=False),
                len(truth),
                entries,
            )
            plain = _checked(
                run_tool("pipeline", standin, env, plain_folder, fresh=False), len(truth)
            )
            lines.append(
                f"  {label:<31} with logs {logs.requests - logs.log_requests} sessions + "
                f"{logs.log_requests} logs (minimum {minimum} + {log_min}: {len(read)} sessions "
                f"read, {new_entries:,} new entries); sessions only {plain.requests} "
                f"(minimum {minimum})"
            )
    finally:
        standin.stop()
    return lines


# -- report -----------------------------------------------------------------------------------


def median(runs: list[Run], attr: str) -> float:
    return statistics.median(getattr(r, attr) for r in runs)


def report(results: dict[int, dict[str, list[Run]]]) -> list[str]:
    lines = []
    for sessions, runs in results.items():
        lines.append(f"{sessions:,} sessions (median of {len(next(iter(runs.values())))}):")
        for tool, tool_runs in runs.items():
            failed = [r for r in tool_runs if r.rows == -1]
            if failed:
                lines.append(
                    f"  {tool:<14} FAILED in {len(failed)} of {len(tool_runs)} runs (after "
                    f"{failed[0].seconds:.0f} s, peak RSS {failed[0].peak_rss_mb:.0f} MB)"
                )
                tool_runs = [r for r in tool_runs if r.rows != -1]
                runs[tool] = tool_runs
                if not tool_runs:
                    continue
            seconds = median(tool_runs, "seconds")
            runs_note = f" ({len(tool_runs)} run{'s' if len(tool_runs) > 1 else ''})"
            lines.append(
                f"  {tool:<14} {seconds:7.1f} s  {sessions / seconds:8,.0f} sessions/s  "
                f"peak RSS {median(tool_runs, 'peak_rss_mb'):6.0f} MB  "
                f"{int(median(tool_runs, 'requests'))} requests{runs_note}"
            )
        done = {tool for tool, tool_runs in runs.items() if tool_runs}
        peer = next((p for p in ("rest_api_tuned", "rest_api") if p in done), None)
        if not {"pipeline", "floor"} <= done or peer is None:
            continue
        ours = median(runs["pipeline"], "seconds")
        lines.append(
            f"  pipeline vs {peer}: {median(runs[peer], 'seconds') / ours:.2f}x faster; "
            f"pipeline vs floor: {ours / median(runs['floor'], 'seconds'):.2f}x the floor's time"
        )
        if peer == "rest_api_tuned" and "rest_api" in done:
            defaults = median(runs["rest_api"], "seconds") / ours
            lines.append(f"  pipeline vs rest_api (dlt's defaults): {defaults:.2f}x faster")
    sizes = sorted(results)
    if len(sizes) > 1 and "pipeline" in results[sizes[0]]:
        small, large = sizes[0], sizes[-1]
        ratio = median(results[large]["pipeline"], "peak_rss_mb") / median(
            results[small]["pipeline"], "peak_rss_mb"
        )
        lines.append(f"pipeline peak RSS at {large:,} / at {small:,}: {ratio:.2f}x")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[2000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--peer-repeat", type=int, help="run the rest_api peer fewer times (it is slow at 100k)"
    )
    parser.add_argument(
        "--rate-sessions",
        type=int,
        default=10000,
        help="sessions of the run at the real budget (the 3x run takes 1.5 times as many)",
    )
    parser.add_argument(
        "--tools", nargs="+", choices=list(TOOLS), default=list(TOOLS), help="a subset"
    )
    parser.add_argument(
        "--env", action="append", default=[], help="NAME=VALUE for the tools (to try settings)"
    )
    parser.add_argument("--only-compare", action="store_true", help="skip rate and steady runs")
    parser.add_argument(
        "--logs",
        action="store_true",
        help="instead of the parts above, measure the action logs (issue 21) on the smallest "
        "--sessions, and under the real budget and 3x it on --log-rate-sessions and 3 times that",
    )
    parser.add_argument("--log-rate-sessions", type=int, default=80)
    parser.add_argument("--keep", action="store_true", help="keep the run folders")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="chaster-bench-"))
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"load average before: {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    try:
        if args.logs:
            smallest, few = min(args.sessions), args.log_rate_sessions
            lines = [f"action logs on {smallest:,} sessions, beside the sessions only:"]
            lines += action_logs(smallest, work)
            lines.append("rate-limit utilisation with action logs (the real budget, and 3x it):")
            lines.append(utilisation(few, work, 100, logs=True))
            lines.append(utilisation(few * 3, work, 300, logs=True))
            lines.append(f"load average after: {os.getloadavg()[0]:.2f} (1 min)")
            print("\n" + "\n".join(lines))
            return 0
        env = dict(item.split("=", 1) for item in args.env)
        results = {
            n: compare(n, args.repeat, work, args.tools, env, args.peer_repeat)
            for n in args.sessions
        }
        lines = report(results)
        if not args.only_compare:
            lines.append("rate-limit utilisation (the real budget, and 3x it):")
            lines.append(utilisation(args.rate_sessions, work, 100))
            lines.append(utilisation(args.rate_sessions * 3 // 2, work, 300))
            smallest = min(args.sessions)
            lines.append(f"request efficiency of scheduled runs on {smallest:,} sessions:")
            lines += efficiency(smallest, work)
        lines.append(f"load average after: {os.getloadavg()[0]:.2f} (1 min)")
        print("\n" + "\n".join(lines))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
