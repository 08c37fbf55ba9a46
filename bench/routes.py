"""Routes to less CPU per session, each measured on the same pages with dlt's three steps timed.

    .venv/bin/python bench/routes.py --sessions 10000 --repeat 3

Issue #13 asked for less CPU per session with dlt's relational normaliser kept. This fetches
the stand-in's pages once, then loads them again and again into fresh DuckDB files, one route
at a time, interleaved, and prints the median seconds of extract, normalize and load. No HTTP
is timed: only what dlt and the source do with the pages. The routes:

- `dlt_defaults`: the sessions as the source yields them (credentials scrubbed), dlt defaults;
- `uncompressed`: the same, with the extract files written without gzip (what the runner does);
- `timestamps`: `uncompressed`, and the source parses the 14 timestamp fields itself
  (`datetime.fromisoformat`);
- `no_nulls`: `uncompressed`, and the source drops keys whose value is null (dlt then has
  fewer values to check);
- `users_table`: `uncompressed`, and the user profiles (wearer, keyholder, shared lock's owner)
  moved to a `users` table, each profile once per run: a table change, measured, not adopted;
- `workers`: `uncompressed` + `NORMALIZE__WORKERS=2` and extract files of 2,500 rows, so both
  cores normalise (in one chunk; the runner's chunks of 50 pages gave no gain, RESULTS.md).

And one that cannot run: `arrow_nested` yields an Arrow table for a nested table (as the
child tables would need to skip the normaliser) and prints how dlt 1.31 refuses it.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dlt  # noqa: E402
import pyarrow as pa  # noqa: E402

from bench.run import SLUG, TOKEN, StandInProcess  # noqa: E402
from chaster_sessions.privacy import scrub  # noqa: E402
from chaster_sessions.runner import EXTRACT_COMPRESSION  # noqa: E402
from chaster_sessions.schema import SESSIONS, add_session_tables  # noqa: E402

Session = dict[str, Any]
ROOT_TIMES = ("createdAt", "updatedAt", "nextActionDate")
LOCK_TIMES = (
    "startDate",
    "endDate",
    "minDate",
    "maxDate",
    "maxLimitDate",
    "createdAt",
    "updatedAt",
    "unlockedAt",
    "archivedAt",
    "frozenAt",
    "keyholderArchivedAt",
)


def fetch_pages(sessions: int) -> list[list[Session]]:
    """Every page of a stand-in of `sessions`, as the API returns them."""
    standin = StandInProcess(sessions)
    try:
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {TOKEN}"
        body: dict[str, Any] = {"extensionSlug": SLUG, "status": "all", "limit": 100}
        pages = []
        while True:
            answer = http.post(f"{standin.url}/api/extensions/sessions/search", json=body)
            answer.raise_for_status()
            page = answer.json()
            if page["results"]:
                pages.append(page["results"])
            if not page["hasMore"] or not page["results"]:
                return pages
            body["paginationLastId"] = page["results"][-1]["paginationId"]
    finally:
        standin.stop()


def _parse_times(session: Session) -> None:
    for holder, keys in ((session, ROOT_TIMES), (session.get("lock") or {}, LOCK_TIMES)):
        for key in keys:
            if isinstance(holder.get(key), str):
                holder[key] = datetime.fromisoformat(holder[key])


def _drop_nulls(value: Any) -> None:
    if isinstance(value, dict):
        for key in [key for key, item in value.items() if item is None]:
            del value[key]
        for item in value.values():
            _drop_nulls(item)
    elif isinstance(value, list):
        for item in value:
            _drop_nulls(item)


def _profiles(session: Session) -> Iterator[tuple[dict[str, Any], str]]:
    lock = session.get("lock") or {}
    yield lock, "user"
    yield lock, "keyholder"
    yield lock.get("sharedLock") or {}, "user"


def route_items(route: str, pages: list[list[Session]]) -> Iterator[Any]:
    """What the `sessions` resource yields on `route`."""
    seen_users: set[str] = set()
    for page in pages:
        for session in page:
            scrub(session, privacy="full", store_credentials=False, key=None)
            if route == "timestamps":
                _parse_times(session)
            if route == "no_nulls":
                _drop_nulls(session)
        if route == "users_table":
            users = {}
            for session in page:
                for holder, key in _profiles(session):
                    profile = holder.get(key)
                    if isinstance(profile, dict) and profile.get("_id"):
                        if profile["_id"] not in seen_users:
                            users[profile["_id"]] = profile
                            seen_users.add(profile["_id"])
                        holder[key] = {"_id": profile["_id"]}
            if users:
                hints = dlt.mark.make_hints(
                    table_name="users", primary_key="_id", write_disposition="merge"
                )
                yield dlt.mark.with_hints(list(users.values()), hints, create_table_variant=True)
        yield page


def source(items: Callable[[], Iterator[Any]]) -> Any:
    @dlt.source(name="chaster", section="chaster")
    def chaster() -> Any:
        add_session_tables(dlt.current.source_schema())

        @dlt.resource(name=SESSIONS, primary_key="sessionId", write_disposition="merge")
        def sessions() -> Iterator[Any]:
            yield from items()

        return sessions

    return chaster()


ROUTE_ENV = {
    "dlt_defaults": {},
    "uncompressed": {EXTRACT_COMPRESSION: "true"},
    "timestamps": {EXTRACT_COMPRESSION: "true"},
    "no_nulls": {EXTRACT_COMPRESSION: "true"},
    "users_table": {EXTRACT_COMPRESSION: "true"},
    "workers": {
        EXTRACT_COMPRESSION: "true",
        "NORMALIZE__WORKERS": "2",
        "SOURCES__CHASTER__DATA_WRITER__FILE_MAX_ITEMS": "2500",
    },
}


def run_route(route: str, pages: list[list[Session]], work: Path) -> tuple[float, ...]:
    """(extract, normalize, load) seconds of one load of `pages` on `route`."""
    pages = copy.deepcopy(pages)  # the routes change sessions in place; not timed
    saved = {name: os.environ.get(name) for name in ROUTE_ENV[route]}
    os.environ.update(ROUTE_ENV[route])
    try:
        folder = Path(tempfile.mkdtemp(prefix=f"{route}-", dir=work))
        pipeline = dlt.pipeline(
            f"routes_{route}",
            destination=dlt.destinations.duckdb(str(folder / "out.duckdb")),
            dataset_name="chaster",
            pipelines_dir=str(folder / "dlt"),
        )
        times = []
        started = time.perf_counter()
        pipeline.extract(source(lambda: route_items(route, pages)), loader_file_format="parquet")
        times.append(time.perf_counter() - started)
        started = time.perf_counter()
        pipeline.normalize()
        times.append(time.perf_counter() - started)
        started = time.perf_counter()
        pipeline.load()
        times.append(time.perf_counter() - started)
        return tuple(times)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def arrow_nested(work: Path) -> str:
    """Yield one Arrow row to a nested table, as an Arrow route for the child tables would."""
    row = pa.table(
        {
            "value": ["tag"],
            "_dlt_parent_id": ["p"],
            "_dlt_list_idx": [0],
            "_dlt_root_id": ["p"],
            "_dlt_id": ["c"],
        }
    )
    hints = dlt.mark.make_hints(
        table_name="sessions__lock__shared_lock__tags", parent_table_name=SESSIONS
    )
    items = [{"sessionId": "s1"}, dlt.mark.with_hints(row, hints, create_table_variant=True)]
    pipeline = dlt.pipeline(
        "routes_arrow",
        destination=dlt.destinations.duckdb(str(work / "arrow.duckdb")),
        pipelines_dir=str(work / "arrow-dlt"),
    )
    try:
        pipeline.extract(source(lambda: iter(items)))
    except Exception as exc:
        cause = exc.__cause__ or exc
        return f"refused: {type(cause).__name__}: {str(cause).splitlines()[0]}"
    return "accepted (dlt now writes nested tables at extract: worth measuring)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--routes", nargs="+", default=list(ROUTE_ENV), choices=list(ROUTE_ENV))
    args = parser.parse_args()
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")
    work = Path(tempfile.mkdtemp(prefix="chaster-routes-"))
    os.environ["DLT_DATA_DIR"] = str(work / "dlt-home")
    pages = fetch_pages(args.sessions)
    print(f"{sum(map(len, pages)):,} sessions in {len(pages)} pages; medians of {args.repeat}")
    results: dict[str, list[tuple[float, ...]]] = {route: [] for route in args.routes}
    for _ in range(args.repeat):
        for route in args.routes:  # interleaved, so each route feels the machine alike
            results[route].append(run_route(route, pages, work))
    print(f"{'route':14} {'extract':>8} {'normalize':>10} {'load':>6} {'total':>7}")
    for route, runs in results.items():
        steps = [statistics.median(step) for step in zip(*runs, strict=True)]
        total = statistics.median(sum(run) for run in runs)
        print(f"{route:14} {steps[0]:7.2f}s {steps[1]:9.2f}s {steps[2]:5.2f}s {total:6.2f}s")
    print(f"arrow_nested: {arrow_nested(work)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
