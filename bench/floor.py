"""The floor: the same pages fetched with a plain `requests` loop, loaded as raw JSON.

No normalisation, no state, no retries: each page's body goes to a JSON-lines file as it came,
then one `read_json` puts its sessions into a single DuckDB table `raw_sessions` (one JSON value
a row). Nothing a user could rely on,
but no extractor can be faster than fetching the pages and handing them to DuckDB.
"""

from __future__ import annotations

import os

import duckdb
import requests

base = os.environ["SOURCES__CHASTER__BASE_URL"]
http = requests.Session()
http.headers["Authorization"] = f"Bearer {os.environ['SOURCES__CHASTER__API_TOKEN']}"
body = {
    "extensionSlug": os.environ["SOURCES__CHASTER__EXTENSION_SLUG"],
    "status": "all",
    "limit": 100,
    "paginationLastId": None,
}
with open("pages.jsonl", "wb") as out:
    while True:
        response = http.post(f"{base}/api/extensions/sessions/search", json=body, timeout=60)
        response.raise_for_status()
        page = response.json()
        out.write(response.content.replace(b"\n", b" ") + b"\n")
        if not page["hasMore"] or not page["results"]:
            break
        body["paginationLastId"] = page["results"][-1]["paginationId"]
with duckdb.connect("out.duckdb") as con:
    con.execute(
        "create table raw_sessions as select unnest(json_extract(json, '$.results[*]')) "
        "as session from read_ndjson_objects('pages.jsonl', maximum_object_size = 67108864)"
    )
