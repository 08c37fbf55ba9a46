"""The runner's dlt settings: the source's transient extract files stay uncompressed (they are
read once, by normalize, and gzip was 1 s of CPU per 10,000 sessions), and under a budget the
normaliser writes small batches (so the fetch-ahead thread gets the GIL in time), each unless a
user set otherwise.

Checked on the files dlt really writes: the real source, extracting from the stand-in.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dlt
import pyarrow.parquet as pq
import pytest

from chaster_sessions import chaster_source
from chaster_sessions.runner import (
    EXTRACT_COMPRESSION,
    NORMALIZE_BATCH,
    PACED_UP_TO_PER_MINUTE,
    paced,
    run_defaults,
)
from chaster_sessions.sessions import settings_of
from conftest import configure

GZIP_MAGIC = b"\x1f\x8b"


def _extracted_session_files(name: str, runner_setting: bool) -> list[bytes]:
    """Extract once into a new pipeline `name` (inside the runner's setting, or not) and
    return the first two bytes of every extracted `sessions` file."""
    pipeline = dlt.pipeline(name, destination="duckdb", dataset_name="chaster")
    if runner_setting:
        with run_defaults():
            pipeline.extract(chaster_source())
    else:
        pipeline.extract(chaster_source())
    extracted = Path(pipeline.working_dir, "normalize", "extracted")
    files = sorted(extracted.glob("*/new_jobs/sessions.*"))
    assert files, "dlt wrote no extract file"
    return [file.read_bytes()[:2] for file in files]


def test_the_runner_writes_extract_files_without_gzip_and_leaves_nothing_set(
    api, home, monkeypatch
):
    configure(monkeypatch, api)
    heads = _extracted_session_files("with_runner_setting", runner_setting=True)
    assert heads and all(head != GZIP_MAGIC for head in heads)
    assert EXTRACT_COMPRESSION not in os.environ  # scoped to the load
    heads = _extracted_session_files("without", runner_setting=False)
    assert heads and all(head == GZIP_MAGIC for head in heads)


def test_a_users_own_compression_setting_is_kept(api, home, monkeypatch):
    configure(monkeypatch, api)
    monkeypatch.setenv("DATA_WRITER__DISABLE_COMPRESSION", "false")
    heads = _extracted_session_files("user_setting", runner_setting=True)
    assert heads and all(head == GZIP_MAGIC for head in heads)
    assert os.environ["DATA_WRITER__DISABLE_COMPRESSION"] == "false"


def _normalized_batches(name: str) -> list[int]:
    """Extract and normalise once into a new pipeline `name`, inside the runner's settings for
    the configured budget; the rows of every Arrow batch (row group) of the sessions' files."""
    pipeline = dlt.pipeline(name, destination="duckdb", dataset_name="chaster")
    source = chaster_source()
    with run_defaults(settings_of(source)):
        pipeline.extract(source, loader_file_format="parquet")  # the runner's format on DuckDB
        pipeline.normalize()
    files = sorted(Path(pipeline.working_dir, "load", "normalized").glob("*/new_jobs/sessions.*"))
    assert files, "dlt wrote no normalised file"
    batches = []
    for file in files:
        metadata = pq.ParquetFile(file).metadata
        batches += [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    return batches


@pytest.mark.parametrize(
    ("per_minute", "batches"), [(PACED_UP_TO_PER_MINUTE, [300, 300, 100]), (100000, [700])]
)
def test_under_a_budget_the_normaliser_writes_small_batches(
    make_api, home, monkeypatch, per_minute, batches
):
    configure(monkeypatch, make_api(700), requests_per_minute=per_minute)
    assert _normalized_batches(f"budget_{per_minute}") == batches
    assert NORMALIZE_BATCH not in os.environ  # scoped to the load


def test_a_users_own_batch_size_is_kept_under_a_budget(make_api, home, monkeypatch):
    configure(monkeypatch, make_api(700), requests_per_minute=PACED_UP_TO_PER_MINUTE)
    monkeypatch.setenv("DATA_WRITER__BUFFER_MAX_ITEMS", "500")
    assert _normalized_batches("user_batch") == [500, 200]


def test_paced_means_a_budget_the_api_sets_the_pace_of():
    def budget(per_minute: float) -> Any:
        return settings_of(
            chaster_source(api_token="t", extension_slug="x", requests_per_minute=per_minute)
        )

    assert paced(budget(100))
    assert paced(budget(PACED_UP_TO_PER_MINUTE))
    assert not paced(budget(PACED_UP_TO_PER_MINUTE + 1))
    assert not paced(None)  # a source the runner has no settings of
