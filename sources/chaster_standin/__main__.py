"""Run the API stand-in on its own: `python -m chaster_standin --sessions 100000 --port 8080`.

It prints its base URL on the first line of stdout, so a script can start it on port 0 and read
where it listens. It serves until interrupted. Its sessions run up to today (UTC midnight), as
the demo's do; `--now DATE` fixes the end, for runs that must see the same data.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from datetime import UTC, datetime

from .population import Population
from .server import StandIn, StandInConfig


def end_date(text: str) -> datetime:
    """A `--now` date (YYYY-MM-DD) as UTC midnight."""
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    parser = argparse.ArgumentParser(
        prog="python -m chaster_standin",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--sessions", type=int, default=3000, help="sessions per extension")
    parser.add_argument("--slug", action="append", help="extension slug (repeatable)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--token", default="standin-token", help="the Bearer token it accepts (default %(default)s)"
    )
    parser.add_argument(
        "--now",
        type=end_date,
        default=today,
        metavar="DATE",
        help="the day its sessions run up to, YYYY-MM-DD (default today, UTC)",
    )
    parser.add_argument("--order", choices=("asc", "desc"), default="asc")
    parser.add_argument("--page-cap", type=int, default=100)
    parser.add_argument("--cap-mode", choices=("reject", "clamp"), default="reject")
    parser.add_argument(
        "--log-order", choices=("asc", "desc"), default="desc", help="action logs' sort order"
    )
    parser.add_argument("--log-page-cap", type=int, default=100, help="largest log search limit")
    parser.add_argument("--rate-limit", type=int, help="requests per --rate-window seconds")
    parser.add_argument("--rate-window", type=float, default=60.0)
    parser.add_argument("--reset-unit", choices=("seconds", "epoch", "epoch_ms"), default="seconds")
    parser.add_argument("--no-retry-after", action="store_true", help="429s without Retry-After")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each answer")
    parser.add_argument(
        "--cache",
        action="store_true",
        help="keep each session's encoded body once served (about 5 KB a session), so repeated "
        "runs measure the client rather than the stand-in",
    )
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the stand-in only listens on loopback")
    population = Population(
        args.sessions, seed=args.seed, slugs=tuple(args.slug or ["example-extension"]), now=args.now
    )
    population.cache_bodies = args.cache
    config = StandInConfig(
        token=args.token,
        order=args.order,
        page_cap=args.page_cap,
        cap_mode=args.cap_mode,
        log_order=args.log_order,
        log_page_cap=args.log_page_cap,
        rate_limit=args.rate_limit,
        rate_window=args.rate_window,
        reset_unit=args.reset_unit,
        retry_after=not args.no_retry_after,
        latency=args.latency,
    )
    standin = StandIn(population, config).start(args.host, args.port)
    print(standin.url, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
