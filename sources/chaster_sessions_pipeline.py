"""Example: load your Chaster extension's sessions into DuckDB with the `chaster_sessions` source.

    SOURCES__CHASTER__API_TOKEN=... SOURCES__CHASTER__EXTENSION_SLUG=your-slug \
        python chaster_sessions_pipeline.py

As in dlt's verified sources, this script sits beside the source folder; copy both into your
project. `load` commits a long backfill chunk by chunk and then marks removed sessions, repairs
rows a killed merge inserted twice and creates the `analytics` views. A plain `pipeline.run`
works too: it loads everything, and leaves that maintenance undone.
"""

import dlt

from chaster_sessions import chaster_source, load


def load_sessions() -> None:
    pipeline = dlt.pipeline(
        pipeline_name="chaster_sessions",
        destination=dlt.destinations.duckdb("chaster_sessions.duckdb"),
        dataset_name="chaster",
    )
    result = load(pipeline, chaster_source())
    print(
        f"{result.record.requests.requests} requests, {result.chunks} chunk(s); sessions per "
        f"extension (stored, removed): {result.after}"
    )


def load_sessions_plainly() -> None:
    """The plain dlt way: one `pipeline.run`, complete, without the runner's maintenance."""
    pipeline = dlt.pipeline(
        pipeline_name="chaster_sessions_plain",
        destination=dlt.destinations.duckdb("chaster_sessions_plain.duckdb"),
        dataset_name="chaster",
    )
    print(pipeline.run(chaster_source()))


if __name__ == "__main__":
    load_sessions()
