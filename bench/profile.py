"""Where a backfill's time and memory go: extract, normalize and load, timed one by one.

    .venv/bin/python bench/profile.py --sessions 50000

It starts the stand-in (bodies cached, warmed up), then runs the pipeline's source in one chunk
with dlt's three steps called separately (extract files uncompressed, as the runner writes
them), and prints each step's seconds and the process's resident memory after it and at its
peak.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.memory import rss_mb  # noqa: E402
from bench.run import SLUG, TOKEN, StandInProcess, run_tool  # noqa: E402


def _memory() -> str:
    now, peak = rss_mb()
    return f"RSS {now} MB, peak {peak} MB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="chaster-profile-"))
    standin = StandInProcess(args.sessions)
    try:
        run_tool("floor", standin, {}, work / "warmup")  # fills the stand-in's body cache
        os.environ.update(
            {
                "DLT_DATA_DIR": str(work / "dlt"),
                "RUNTIME__LOG_LEVEL": "ERROR",
                "SOURCES__CHASTER__API_TOKEN": TOKEN,
                "SOURCES__CHASTER__BASE_URL": standin.url,
                "SOURCES__CHASTER__EXTENSION_SLUG": SLUG,
                "SOURCES__CHASTER__REQUESTS_PER_MINUTE": "1000000",
                "SOURCES__CHASTER__CHUNK_PAGES": "0",
                "SOURCES__CHASTER__CHUNK_SECONDS": "0",
            }
        )
        import dlt

        from chaster_sessions import chaster_source
        from chaster_sessions.runner import run_defaults

        pipeline = dlt.pipeline(
            "profile",
            destination=dlt.destinations.duckdb(str(work / "profile.duckdb")),
            dataset_name="chaster",
        )
        print(f"{args.sessions:,} sessions, one chunk; start: {_memory()}")
        started = time.perf_counter()
        with run_defaults():  # as the runner extracts
            pipeline.extract(chaster_source(), loader_file_format="parquet")
        print(f"  extract   {time.perf_counter() - started:6.1f} s  {_memory()}")
        started = time.perf_counter()
        pipeline.normalize()
        print(f"  normalize {time.perf_counter() - started:6.1f} s  {_memory()}")
        started = time.perf_counter()
        pipeline.load()
        print(f"  load      {time.perf_counter() - started:6.1f} s  {_memory()}")
    finally:
        standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
