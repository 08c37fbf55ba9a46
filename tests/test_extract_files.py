"""The runner lets dlt keep the source's transient extract files uncompressed (they are read
once, by normalize, and gzip was 1 s of CPU per 10,000 sessions), unless a user set otherwise.

Checked on the files dlt really writes: the real source, extracting from the stand-in.
"""

from __future__ import annotations

import os
from pathlib import Path

import dlt

from chaster_sessions import chaster_source
from chaster_sessions.runner import EXTRACT_COMPRESSION, run_defaults
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
