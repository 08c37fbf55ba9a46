"""Every run leaves a row in `chaster._chaster_runs`, failed ones too, queryable with SQL.

The README's two queries are run here exactly as written, on DuckDB and on PostgreSQL.
"""

from __future__ import annotations

import json
import re

from chaster_sessions import __version__
from conftest import (
    PG_PASSWORD,
    ROOT,
    SLUG,
    TOKEN,
    configure,
    db_snapshot,
    pg_query,
    query,
    run_cli,
    to_postgres,
    values_found,
)

WRONG_TOKEN = "wrong-token-for-the-history"
COLUMNS = (
    "status, exit_code, error, requests, search_requests, get_requests, rate_limited, "
    "rate_limit_wait_seconds, extensions, version, started_at, finished_at"
)


def readme_queries() -> dict[str, str]:
    """The README's run-history queries, by their comment line."""
    text = (ROOT / "README.md").read_text()
    block = text.split("**Run history.**", 1)[1].split("```sql\n", 1)[1].split("```", 1)[0]
    found = re.findall(r"^-- ([^\n]+)\n(.+?;)$", block, re.MULTILINE | re.DOTALL)
    return {title: sql for title, sql in found}


def test_readme_has_the_two_queries():
    assert sorted(readme_queries()) == [
        "runs in the last day that failed",
        "when did the last successful run end",
    ]


def test_two_runs_and_a_failed_one_are_in_the_history(make_api, home, monkeypatch, capsys):
    api = make_api(300)
    configure(monkeypatch, api)
    first = run_cli(capsys, "--duckdb", "out.duckdb")
    assert first.code == 0, first.err
    assert "run history: a row appended to chaster._chaster_runs" in first.out
    requests = [api.count()]
    api.population.add(SLUG, 5)
    api.clear_log()
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    requests.append(api.count())
    before = db_snapshot(home / "out.duckdb")
    configure(monkeypatch, api, token=WRONG_TOKEN)
    api.clear_log()
    failed = run_cli(capsys, "--duckdb", "out.duckdb")
    assert failed.code == 3
    requests.append(api.count())
    assert db_snapshot(home / "out.duckdb") == before  # the row is the failed run's only trace

    rows = query("out.duckdb", f"select {COLUMNS} from chaster._chaster_runs order by started_at")  # noqa: S608
    assert [r[:2] for r in rows] == [("succeeded", 0), ("succeeded", 0), ("failed", 3)]
    assert [r[2] for r in rows[:2]] == [None, None]
    assert "error: " + rows[2][2] + "\n" == failed.err  # the line the command printed
    assert [r[3] for r in rows] == requests
    assert (requests[0], requests[2]) == (3, 1)  # 3 pages; the refused first request
    assert [(r[4], r[5]) for r in rows] == [(requests[0], 0), (requests[1], 0), (1, 0)]
    assert [(r[6], r[7]) for r in rows] == [(0, 0.0)] * 3
    extensions = [json.loads(r[8]) for r in rows]
    assert [e[SLUG]["new"] for e in extensions] == [300, 5, 0]
    assert [e[SLUG]["total"] for e in extensions] == [300, 305, 305]
    assert {r[9] for r in rows} == {__version__}
    assert all(r[10] <= r[11] for r in rows)
    assert rows[0][11] <= rows[1][10] and rows[1][11] <= rows[2][10]

    queries = readme_queries()
    last_success = query("out.duckdb", queries["when did the last successful run end"])
    assert last_success == [(rows[1][11],)]
    failures = query("out.duckdb", queries["runs in the last day that failed"])
    assert failures == [(rows[2][10], 3, rows[2][2])]
    assert values_found("out.duckdb", {TOKEN, WRONG_TOKEN}) == set()


def test_the_history_on_postgres(make_api, home, monkeypatch, capsys, postgres):
    api = make_api(120)
    configure(monkeypatch, api)
    to_postgres(monkeypatch, postgres)
    assert run_cli(capsys).code == 0
    configure(monkeypatch, api, token=WRONG_TOKEN)
    failed = run_cli(capsys)
    assert failed.code == 3
    rows = pg_query(
        postgres,
        "select status, exit_code, error, extensions, finished_at, started_at "
        "from chaster._chaster_runs order by started_at",
    )
    assert [r[:2] for r in rows] == [("succeeded", 0), ("failed", 3)]
    assert rows[1][2].startswith("the API refused the token (HTTP 401")
    assert rows[0][3][SLUG]["new"] == 120  # jsonb: a dict already
    queries = readme_queries()
    assert pg_query(postgres, queries["when did the last successful run end"]) == [(rows[0][4],)]
    assert pg_query(postgres, queries["runs in the last day that failed"]) == [
        (rows[1][5], 3, rows[1][2])
    ]
    text = str(pg_query(postgres, "select * from chaster._chaster_runs"))
    assert WRONG_TOKEN not in text and TOKEN not in text and PG_PASSWORD not in text
