"""A first load stores every session once, normalised into the documented tables."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest

from chaster_sessions.privacy import scrub
from chaster_standin import Population, StandIn, StandInConfig
from conftest import SLUG, TOKEN, query, run_once_under, stored_sessions, values_found

# one worker runs the module, so its load is made once (pytest-xdist --dist loadgroup)
pytestmark = pytest.mark.xdist_group("first_load")

JSON_KEYS = {"config", "data", "userData"}


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def expected_child_rows(sessions: list[dict[str, Any]]) -> Counter[str]:
    """Rows dlt derives from every list outside the JSON columns, computed from the API's data."""
    rows: Counter[str] = Counter()

    def walk(node: Any, table: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in JSON_KEYS:
                    continue
                if isinstance(value, list):
                    if value:
                        child = f"{table}__{_snake(key)}"
                        rows[child] += len(value)
                        for item in value:
                            walk(item, child)
                else:
                    walk(value, f"{table}__{_snake(key)}" if isinstance(value, dict) else table)

    for session in sessions:
        walk(session, "sessions")
    return rows


# session-scoped, so that no other module's test run between two of these (SLOWEST_FIRST, a
# worker's order) makes the load again
@pytest.fixture(scope="session")
def first_load(tmp_path_factory):
    """3000 sessions of one extension, ascending, loaded once into a new file: every test here
    only reads that load."""
    folder = tmp_path_factory.mktemp("first_load")
    with StandIn(Population(3000), StandInConfig(token=TOKEN)) as api:
        result = run_once_under(folder, api, "--duckdb", "out.duckdb")
        assert result.code == 0, result.err
        yield api, result, folder


@pytest.fixture
def loaded(first_load, monkeypatch):
    """The module's load, with the test in its folder."""
    api, result, folder = first_load
    monkeypatch.chdir(folder)
    return api, result


def test_first_load_stores_every_session_and_child_row(loaded):
    api, result = loaded
    truth = api.population.truth(SLUG)
    assert stored_sessions("out.duckdb") == truth
    assert query("out.duckdb", "select count(*), count(distinct session_id) from chaster.sessions")[
        0
    ] == (3000, 3000)

    api_sessions = [
        scrub(api.population.session(s), privacy="full", store_credentials=False, key=None)
        for s in truth
    ]
    for table, rows in expected_child_rows(api_sessions).items():
        assert query("out.duckdb", f"select count(*) from chaster.{table}")[0][0] == rows, table  # noqa: S608
    assert api.count("search") == 30  # 3000 sessions / 100 per page
    assert "3,000 new, 0 re-read, 0 newly removed; 3,000 in total" in result.out
    assert "API sort order seen: asc" in result.out


@pytest.mark.usefixtures("loaded")
def test_values_keep_their_types():
    types = dict(
        query(
            "out.duckdb",
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'chaster' and table_name = 'sessions'",
        )
    )
    assert types["session_id"] == "VARCHAR"
    assert types["pagination_id"] == "VARCHAR"
    assert types["created_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["lock__start_date"] == "TIMESTAMP WITH TIME ZONE"
    assert types["lock__end_date"] == "TIMESTAMP WITH TIME ZONE"
    assert types["config"] == "JSON"
    assert types["data"] == "JSON"
    assert types["lock__total_duration"] == "BIGINT"
    assert types["lock__user__discord_id"] == "VARCHAR"
    ext_types = dict(
        query(
            "out.duckdb",
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'chaster' and table_name = 'sessions__lock__extensions'",
        )
    )
    assert ext_types["config"] == "JSON"
    # Free-form configs stay in their JSON column: no config__* columns for anyone.
    assert not [c for c in types if c.startswith(("config__", "data__"))]
    assert not [c for c in ext_types if c.startswith("config__")]


def test_digit_only_ids_stay_exact_strings(loaded):
    api, _ = loaded
    digit_ids = [
        api.population.session(s)["paginationId"]
        for s in api.population.session_ids(SLUG)
        if api.population.session(s)["paginationId"].isdigit()
    ]
    assert len(digit_ids) > 10
    stored = {
        row[0]
        for row in query(
            "out.duckdb",
            "select pagination_id from chaster.sessions where pagination_id similar to '[0-9]+'",
        )
    }
    assert stored == set(digit_ids)  # leading zeros and all 24 digits intact


def test_spot_check_one_session_field_by_field(loaded):
    api, _ = loaded
    session_id = next(
        s
        for s in api.population.session_ids(SLUG)
        if api.population.session(s)["lock"]["sharedLock"]
    )
    src = api.population.session(session_id)
    row = query(
        "out.duckdb",
        "select pagination_id, slug, lock__status, lock__user__username, lock__keyholder__username,"
        " config, lock__total_duration, strftime(lock__start_date, '%Y-%m-%dT%H:%M:%S.%g') "
        "from chaster.sessions where session_id = ?",
        [session_id],
    )[0]
    assert row[0] == src["paginationId"]
    assert row[1] == SLUG
    assert row[2] == src["lock"]["status"]
    assert row[3] == src["lock"]["user"]["username"]
    assert row[4] == src["lock"]["keyholder"]["username"]
    assert json.loads(row[5]) == src["config"]
    assert row[6] == src["lock"]["totalDuration"]
    assert row[7] + "Z" == src["lock"]["startDate"]
    exts = query(
        "out.duckdb",
        "select e.slug, e.config from chaster.sessions__lock__extensions e "
        "join chaster.sessions s on e._dlt_parent_id = s._dlt_id "
        "where s.session_id = ? order by e._dlt_list_idx",
        [session_id],
    )
    assert [(slug, json.loads(cfg)) for slug, cfg in exts] == [
        (e["slug"], e["config"]) for e in src["lock"]["extensions"]
    ]


def test_credentials_are_not_stored(loaded):
    api, _ = loaded
    columns = {
        row[0]
        for row in query(
            "out.duckdb",
            "select column_name from information_schema.columns where table_schema = 'chaster'",
        )
    }
    assert not {"lock__offer_token", "lock__combination", "lock__shared_lock__password"} & columns
    secrets = set()
    for s in api.population.session_ids(SLUG):
        lock = api.population.session(s)["lock"]
        secrets.update(v for v in (lock["offerToken"], lock["combination"]) if v)
        if lock["sharedLock"] and lock["sharedLock"]["password"]:
            secrets.add(lock["sharedLock"]["password"])
    assert len(secrets) > 1000
    assert values_found("out.duckdb", secrets) == set()
