"""The peer: the same extraction written the way a dlt user would without this project.

A `dlt.sources.rest_api` config: POST search, the cursor paginator writing `paginationLastId` into
the body, merge on `sessionId`, and dlt's defaults for everything else (loader file format,
normalisation, no incremental state). `--tuned` is what a dlt user gets with five more lines:
parquet loading, and `json` hints on the free-form `config`, `data` and `userData` that this
project keeps as JSON too. Reads SOURCES__CHASTER__BASE_URL / _API_TOKEN / _EXTENSION_SLUG like
the pipeline; writes `out.duckdb` in the working directory.
"""

from __future__ import annotations

import os
import sys

import dlt
from dlt.sources.rest_api import rest_api_source

TUNED = "--tuned" in sys.argv[1:]
source = rest_api_source(
    {
        "client": {
            "base_url": os.environ["SOURCES__CHASTER__BASE_URL"],
            "auth": {"type": "bearer", "token": os.environ["SOURCES__CHASTER__API_TOKEN"]},
        },
        "resources": [
            {
                "name": "sessions",
                "primary_key": "sessionId",
                "write_disposition": "merge",
                **(
                    {
                        "columns": {
                            name: {"data_type": "json"} for name in ("config", "data", "user_data")
                        }
                    }
                    if TUNED
                    else {}
                ),
                "endpoint": {
                    "path": "/api/extensions/sessions/search",
                    "method": "POST",
                    "json": {
                        "extensionSlug": os.environ["SOURCES__CHASTER__EXTENSION_SLUG"],
                        "status": "all",
                        "limit": 100,
                    },
                    "data_selector": "results",
                    "paginator": {
                        "type": "cursor",
                        "cursor_path": "results[-1].paginationId",
                        "cursor_body_path": "paginationLastId",
                        "has_more_path": "hasMore",
                    },
                },
            }
        ],
    }
)
pipeline = dlt.pipeline(
    "bench_rest_api", destination=dlt.destinations.duckdb("out.duckdb"), dataset_name="chaster"
)
pipeline.run(source, loader_file_format="parquet" if TUNED else None)
