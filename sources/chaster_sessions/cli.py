"""The command line: `chaster-sessions` (or `python pipelines/sessions.py`), `--help` for more.

It parses arguments, prints, and turns every failure into one line and an exit code. The load
itself is `runner.load`, the same the Dagster assets and library users run.
"""

from __future__ import annotations

import argparse
import atexit
import os
import signal
import sys
import textwrap
import time
import tomllib
import traceback
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import dlt
from dlt.common.configuration.container import Container
from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext
from dlt.common.runtime.telemetry import stop_telemetry

from . import chaster_source
from .client import RequestCounts
from .destination import check_duckdb, connection, read_views, remove_empty_duckdb
from .errors import (
    EXIT_CODES,
    ConfigError,
    DestinationError,
    known_secrets,
    redact,
)
from .explain import explain
from .html_report import write_html
from .interrupts import finishing, interruption, stop_on_signals
from .pipeline import (
    chaster_pipeline,
    check_pipeline_name,
    configured_destination,
    configured_name,
    duckdb_destination,
)
from .record import Outcome, RunRecord
from .report import summary, write_report
from .runner import check_duckdb_name, load, run_lock
from .settings import DATASET, DEFAULT_DUCKDB, PIPELINE_NAME

DEMO_PIPELINE_NAME = "chaster_demo"
DEMO_DUCKDB = "chaster_demo.duckdb"
DEMO_SLUG = "example-extension"
DEMO_SESSIONS = 3000
DEMO_LOG_REQUESTS = 200
DEMO_TOKEN = "demo-token"  # noqa: S105 - the in-process stand-in's token, not a real one


@dataclass
class RunPlan:
    """What this run will do, settled from the command line before anything is touched."""

    pipeline_name: str
    duckdb_path: Path
    source_args: dict[str, Any] = field(default_factory=dict)
    demo: bool = False
    destination: str | None = None  # a destination named in config; None: the DuckDB file
    report: Path | None = None
    html: Path | None = None

    @property
    def on_duckdb(self) -> bool:
        return self.destination is None

    def where(self) -> str:
        if self.on_duckdb:
            return f"DuckDB: {self.duckdb_path} (schema {DATASET})"
        return f"destination: {self.destination} (dataset {DATASET})"

    def destination_label(self) -> str:
        """The destination as the report names it: `duckdb`, or the destination's name."""
        return "duckdb" if self.on_duckdb else str(self.destination)

    def location(self) -> str:
        return str(self.duckdb_path) if self.on_duckdb else f"{self.destination}/{DATASET}"


def choose_settings_folder() -> None:
    """The one rule for which `.dlt/` a run reads, the same through `chaster-sessions` and
    `python pipelines/sessions.py`: `DLT_PROJECT_DIR` when set (dlt's own variable); else the
    working directory's `.dlt/`, if it has one; else, when the package runs from a checkout (the
    editable install `task.py` makes, or `pipelines/sessions.py`), the checkout's `.dlt/`. A
    package installed from a wheel has no project of its own: elsewhere it reads env vars only."""
    if "DLT_PROJECT_DIR" in os.environ or (Path.cwd() / ".dlt").is_dir():
        return
    package = Path(__file__).resolve().parent
    checkout = package.parents[1]
    if package.parent.name == "sources" and (checkout / ".dlt").is_dir():
        os.environ["DLT_PROJECT_DIR"] = str(checkout)


def check_settings_files() -> None:
    """Stop with one line if .dlt/config.toml or secrets.toml is not valid TOML."""
    folder = Path(os.environ.get("DLT_PROJECT_DIR") or Path.cwd()) / ".dlt"
    for name in ("config.toml", "secrets.toml"):
        path = folder / name
        try:
            tomllib.loads(path.read_text()) if path.is_file() else None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} is not valid TOML ({exc}); fix the file") from None


def reload_dlt_settings() -> None:
    """Make dlt read its settings (log level, `.dlt/` folder) as they are now, not as they were
    when it was imported: the command sets a quiet log level, and may run more than once in one
    process (the tests, a notebook)."""
    context = Container()[PluggableRunContext]  # the first access starts dlt's telemetry
    context.reload_providers()
    if telemetry_off_unless_chosen():
        stop_telemetry()  # started above with dlt's default; restarted below without it
    context.initialize_runtime()


def telemetry_off_unless_chosen() -> bool:
    """dlt sends anonymous usage telemetry unless told not to; this dataset is about people's
    locks, so the command turns it off, also where the project's `.dlt/config.toml` (which says
    so too) is not found, such as the installed command run from another folder. A choice made
    in an env var or any of dlt's config files (`dlt telemetry enable`) is kept. True when it
    turned telemetry off."""
    if dlt.config.get("runtime.dlthub_telemetry") is not None:
        return False
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    return True


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's wrapping, but never at a hyphen: `--session-id=-xBPLPd_TTiZ7QvQalwRd` in the
    help must stay whole to be copied."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The options of `argv` (the process's own when None)."""
    parser = argument_parser()
    return parser.parse_args(join_dash_values(parser, sys.argv[1:] if argv is None else argv))


def argument_parser() -> argparse.ArgumentParser:
    """The command's options, in the order `--help` lists them."""
    codes = "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES.items())
    parser = argparse.ArgumentParser(
        prog="chaster-sessions",
        description="Load the sessions of your Chaster extension(s) into DuckDB, incrementally.",
        epilog=(
            "Settings (token, extension slug, status, page size, base URL, ...) come from "
            ".dlt/secrets.toml, .dlt/config.toml or SOURCES__CHASTER__* env vars; options here "
            f"override them.\n\nexit codes:\n{codes}"
        ),
        formatter_class=HelpFormatter,
    )
    _add_load_options(parser)
    _add_destination_and_output_options(parser)
    return parser


def _add_load_options(parser: argparse.ArgumentParser) -> None:
    """The DuckDB file or the demo, and which sessions: statuses, extensions, a full walk or
    single sessions."""
    parser.add_argument(
        "--duckdb",
        metavar="PATH",
        help=f"DuckDB file to write (default {DEFAULT_DUCKDB}; {DEMO_DUCKDB} with --demo)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help=f"load {DEMO_SESSIONS} seeded sessions from the built-in API stand-in (no token)",
    )
    parser.add_argument("--status", help="locked, unlocked, deserted or all (default all)")
    parser.add_argument(
        "--extension-slug",
        action="append",
        metavar="SLUG",
        help="extension to load (repeatable; default from config)",
    )
    parser.add_argument(
        "--full-refresh",
        action="store_true",
        help="walk every session again instead of starting from the stored cursor",
    )
    parser.add_argument(
        "--session-id",
        action="append",
        metavar="ID",
        help="only re-read this session with one GET (repeatable); a session the API no longer "
        "has is marked removed; no cursor moves, nothing else is fetched. An id that starts "
        "with '-' works in both forms: --session-id -xBPLPd_TTiZ7QvQalwRd or "
        "--session-id=-xBPLPd_TTiZ7QvQalwRd",
    )


def _add_destination_and_output_options(parser: argparse.ArgumentParser) -> None:
    """Another destination, the pipeline's name, the report files and how much is printed."""
    parser.add_argument(
        "--destination",
        metavar="NAME",
        help="load into a destination configured under [destination.NAME] (or a dlt type such "
        "as postgres) instead of a DuckDB file; default from CHASTER__DESTINATION or "
        "[chaster] destination",
    )
    parser.add_argument(
        "--pipeline-name",
        metavar="NAME",
        help=f"dlt pipeline name, the key of the cursors stored in the destination (default "
        f"{PIPELINE_NAME}, {DEMO_PIPELINE_NAME} with --demo; or CHASTER__PIPELINE_NAME, "
        "[chaster] pipeline_name); each destination gets its own local folder either way",
    )
    parser.add_argument(
        "--report",
        metavar="PATH",
        help="write a JSON report of the run (status, timings, figures per extension, errors)",
    )
    parser.add_argument(
        "--html",
        metavar="PATH",
        help="after a successful run, write a self-contained HTML report page there; default "
        "from CHASTER__HTML_REPORT or [chaster] html_report (the demo writes chaster_demo.html)",
    )
    parser.add_argument("--verbose", action="store_true", help="show dlt's logs and tracebacks")
    parser.add_argument("--quiet", action="store_true", help="no progress lines, summary only")


def join_dash_values(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """`--session-id -xBP...` as `--session-id=-xBP...`: about one Chaster session id in 32
    starts with `-`, which argparse takes for an option and then reports `expected one
    argument`. A value that is one of the parser's options (or the start of one) stays apart,
    so `--session-id --quiet` is still refused."""
    options = list(parser._option_string_actions)
    joined: list[str] = []
    values = iter(argv)
    for arg in values:
        value = next(values, None) if arg == "--session-id" else None
        if value is None:
            joined.append(arg)
        elif value.startswith("-") and not any(o.startswith(value) for o in options):
            joined.append(f"{arg}={value}")
        else:
            joined += [arg, value]
    return joined


def plan_run(args: argparse.Namespace) -> RunPlan:
    report = Path(args.report).resolve() if args.report else None
    source_args: dict[str, Any] = {}
    if args.status is not None:
        source_args["status"] = args.status
    if args.extension_slug:
        source_args["extension_slug"] = args.extension_slug
    if args.full_refresh:
        source_args["full_refresh"] = True
    if args.session_id:
        if args.full_refresh:
            raise ConfigError("--session-id re-reads only those sessions; drop --full-refresh")
        source_args["session_ids"] = args.session_id
    if args.demo:
        source_args.setdefault("extension_slug", [DEMO_SLUG])
        # The stand-in has no rate limit; the real budget would only slow the demo down.
        source_args.update(api_token=DEMO_TOKEN, requests_per_minute=60_000)
        # the demo shows the whole picture, each session's history too: a run reads the logs
        # of 200 sessions (a third of a real run's budget, to stay quick), and each run again
        # goes on with the rest
        source_args.setdefault("action_logs", True)
        source_args.setdefault("action_log_requests", DEMO_LOG_REQUESTS)
        path = Path(args.duckdb or DEMO_DUCKDB).resolve()
        check_duckdb_name(path, DATASET)
        html = Path(args.html).resolve() if args.html else path.with_suffix(".html")
        name = check_pipeline_name(args.pipeline_name or DEMO_PIPELINE_NAME)
        return RunPlan(name, path, source_args, True, report=report, html=html)
    on_file = args.duckdb or args.destination == "duckdb"  # `duckdb` names the file's type
    destination = None if on_file else args.destination or configured_destination()
    path = Path(args.duckdb or DEFAULT_DUCKDB).resolve()
    if destination is None:
        check_duckdb_name(path, DATASET)
    html_setting = args.html or dlt.config.get("chaster.html_report", str)
    return RunPlan(
        check_pipeline_name(args.pipeline_name) if args.pipeline_name else configured_name(),
        path,
        source_args,
        destination=destination,
        report=report,
        html=Path(html_setting).resolve() if html_setting else None,
    )


def make_pipeline(plan: RunPlan) -> dlt.Pipeline:
    """The pipeline object, in the local folder of its destination; it connects to nothing
    until it runs."""
    destination: Any = duckdb_destination(plan.duckdb_path) if plan.on_duckdb else plan.destination
    return chaster_pipeline(destination, plan.pipeline_name)


def demo_population() -> Any:
    """The demo's sessions, laid out up to today (UTC midnight), so "recent" means recent."""
    from chaster_standin import Population

    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return Population(DEMO_SESSIONS, now=today)


class Progress:
    """A progress line on stderr at most every two seconds while pages come in."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.started = time.monotonic()
        self._last = self.started
        self.record: RunRecord | None = None

    def progress(self, slug: str, fetched: int, counts: RequestCounts, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or now - self._last < 2.0:
            return
        self._last = now
        of_total = f" of {total:,}" if total else ""
        waits = (
            f", waited {counts.rate_limit_wait:.0f}s for rate limits"
            if counts.rate_limit_wait
            else ""
        )
        print(
            f"  {slug}: {fetched:,} sessions fetched{of_total}, "
            f"{counts.pages} pages, {now - self.started:.0f}s{waits}",
            file=sys.stderr,
            flush=True,
        )

    def waiting(self, seconds: float, why: str) -> None:
        """A wait long enough to look like a hang is announced before it starts."""
        if self.enabled:
            print(f"  waiting {seconds:.0f}s: {why}", file=sys.stderr, flush=True)

    def ended(self, record: RunRecord) -> None:
        """Keep the run's record: the command formats it, also when the run failed."""
        self.record = record


# -- turning failures into one line ---------------------------------------------------------


# -- the run ----------------------------------------------------------------------------------


def run(plan: RunPlan, progress: Progress, started_at: float) -> Any:
    """Build the source (checking every setting), then load; the load's result. The run's
    record starts with the command (`started_at`), as its runs row and report say."""
    pipeline = make_pipeline(plan)
    if plan.on_duckdb:
        run_lock(pipeline).probe()  # another run holds the file: that run's no, not "in use"
        check_duckdb(plan.duckdb_path)
    if not plan.demo:
        source = chaster_source(**plan.source_args)
        return load(pipeline, source, observer=progress, started_at=started_at)
    from chaster_standin import StandIn, StandInConfig

    # every setting is checked before the stand-in starts
    chaster_source(**{"base_url": "http://127.0.0.1", **plan.source_args})
    with StandIn(demo_population(), StandInConfig(token=DEMO_TOKEN)) as standin:
        print(f"demo: serving {DEMO_SESSIONS:,} seeded sessions at {standin.url}", file=sys.stderr)
        source = chaster_source(**{**plan.source_args, "base_url": standin.url})
        return load(pipeline, source, observer=progress, started_at=started_at)


def main(argv: list[str] | None = None) -> int:
    """The command; SIGINT and SIGTERM end it as `interrupts` says, with exit 130 or 143."""
    with stop_on_signals():
        return command(argv)


def script() -> NoReturn:
    """The installed `chaster-sessions` and `pipelines/sessions.py`: `main`, then the process
    ends at once.

    By then the run's database is closed and its files are written. Python's own teardown of
    the modules dlt imports took another 0.5 s (bench/RESULTS.md), after the last request of a
    run a scheduler waits on. The exit handlers (dlt's, logging's, temporary folders') still
    run, and the output is flushed; only that teardown is skipped. A signal in those last
    milliseconds changes nothing: the run has ended, and its exit code stands.
    """
    code = main()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    atexit._run_exitfuncs()  # what a normal exit runs first
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def command(argv: list[str] | None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")
    if args.verbose:
        os.environ["RUNTIME__LOG_LEVEL"] = "INFO"
    progress = Progress(enabled=not args.quiet)
    started_at = time.time()
    plan: RunPlan | None = None
    existed = False
    try:
        choose_settings_folder()
        check_settings_files()
        reload_dlt_settings()
        plan = plan_run(args)
        existed = plan.duckdb_path.exists()
        result = run(plan, progress, started_at)
        outcome = result.record.outcome  # as the runs table recorded it
        with finishing(), connection(result.pipeline):
            print(summary(result.record, plan.where()))
            if outcome.error:  # the views failed; the sessions are loaded
                print(f"error: {outcome.error}", file=sys.stderr)
            elif plan.html is not None and result.record.views:
                write_html(plan.html, read_views(result.pipeline), result.record)
                print(f"  report page: {plan.html}")
            elif plan.html is not None:
                print("  report page: not written; it reads the analytics views, absent here")
    except (Exception, KeyboardInterrupt) as exc:  # one line and an exit code, signals too
        outcome = failed(exc, plan, existed, progress.record, verbose=args.verbose)
    if plan is not None and plan.report is not None:
        # the command's own outcome: it may fail after a successful load (the page, say)
        record = replace(progress.record or unloaded(plan, started_at), outcome=outcome)
        write_report(plan.report, record, plan.destination_label(), plan.location())
    return outcome.exit_code


def failed(
    exc: BaseException,
    plan: RunPlan | None,
    existed: bool,
    record: RunRecord | None,
    *,
    verbose: bool,
) -> Outcome:
    """Say why the run failed or was stopped (SIGINT, SIGTERM), in one line; a DuckDB file
    this run created and committed nothing to is removed. Returns the outcome, as the runs
    table recorded it when the load got that far."""
    interrupted = interruption(exc) is not None
    committed = record is not None and record.chunks > 0
    kept = committed if interrupted else isinstance(explain(exc), DestinationError)
    if plan is not None and plan.on_duckdb and not existed and not kept:
        remove_empty_duckdb(plan.duckdb_path, DATASET)
    if verbose and not interrupted:
        trace = "".join(traceback.format_exception(exc))
        print(redact(trace, known_secrets()), file=sys.stderr)
    # the load's own failure, as recorded; else (it never ran, or succeeded) this one's
    recorded = record.outcome if record is not None and record.outcome.exit_code else None
    outcome = recorded or Outcome.of(exc)
    print(f"error: {outcome.error}", file=sys.stderr)
    return outcome


def unloaded(plan: RunPlan, started_at: float) -> RunRecord:
    """The record of a run that ended before the load began (a setting, the DuckDB file)."""
    kind = plan.destination_label()
    return RunRecord(plan.pipeline_name, DATASET, kind, "", started_at, time.time())


if __name__ == "__main__":
    script()
