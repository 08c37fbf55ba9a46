"""The stand-in's action log search, over HTTP on loopback, as the logs resource will call it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from chaster_standin import Population, StandIn
from conftest import SLUG, TOKEN

FIELDS = {
    "_id",
    "type",
    "lock",
    "role",
    "extension",
    "createdAt",
    "title",
    "description",
    "color",
    "icon",
    "payload",
    "prefix",
}


def search_logs(
    api: StandIn, session_id: str, body: dict[str, Any], token: str | None = TOKEN
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"{api.url}/api/extensions/sessions/{session_id}/logs/search"
    return requests.post(url, json=body, headers=headers, timeout=10)


def read_all(api: StandIn, session_id: str, limit: int = 7, **body: Any) -> list[dict[str, Any]]:
    """Every page of a session's log in serving order; each page must say the same count."""
    entries: list[dict[str, Any]] = []
    counts = set()
    last_id = None
    for _ in range(1000):
        answer = search_logs(api, session_id, {"limit": limit, "lastId": last_id, **body})
        assert answer.status_code == 201, answer.text
        page = answer.json()
        counts.add(page["count"])
        entries += page["results"]
        assert len(page["results"]) == limit or not page["hasMore"]
        if not page["hasMore"]:
            assert counts == {len(entries)}
            return entries
        last_id = page["results"][-1]["_id"]
    raise AssertionError("the log never ended")


def ids(entries: list[dict[str, Any]]) -> list[str]:
    return [e["_id"] for e in entries]


def session_with(pop: Population, test: Any, status: str = "all") -> str:
    return next(s for s in pop.session_ids(SLUG, status) if test(s))


def test_log_search_needs_the_token(make_api: Any) -> None:
    api = make_api(50)
    session_id = api.population.session_ids(SLUG)[0]
    assert search_logs(api, session_id, {"role": "keyholder"}, token=None).status_code == 401
    wrong = search_logs(api, session_id, {"role": "keyholder"}, token="nope")
    assert (wrong.status_code, wrong.json()["message"]) == (401, "Unauthorized")
    assert search_logs(api, session_id, {"role": "keyholder"}).status_code == 201
    assert (api.count("logs"), api.count("logs", status=401), api.count()) == (3, 2, 3)


@pytest.mark.parametrize("body", [{}, {"role": "admin"}, {"role": None, "limit": 5}])
def test_role_is_required(make_api: Any, body: dict[str, Any]) -> None:
    api = make_api(50)
    answer = search_logs(api, api.population.session_ids(SLUG)[0], body)
    assert answer.status_code == 400
    assert answer.json() == {
        "statusCode": 400,
        "message": ["role must be one of the following values: keyholder, wearer, visitor"],
        "error": "Bad Request",
    }


def test_bad_limit_last_id_and_filter_are_rejected(make_api: Any) -> None:
    api = make_api(50, log_page_cap=20)
    session_id = api.population.session_ids(SLUG)[0]
    body = {"role": "keyholder", "limit": 21, "lastId": "12", "showOnlyExtensionActions": "yes"}
    answer = search_logs(api, session_id, body)
    assert answer.status_code == 400
    assert answer.json()["message"] == [
        "limit must not be greater than 20",
        "lastId must be a mongodb id",
        "showOnlyExtensionActions must be a boolean value",
    ]
    assert search_logs(api, session_id, {"role": "keyholder", "limit": 0}).status_code == 400
    assert search_logs(api, session_id, {"role": "keyholder", "limit": 20}).status_code == 201


def test_a_clamping_api_serves_its_cap_instead(make_api: Any) -> None:
    api = make_api(300, log_page_cap=20, cap_mode="clamp")
    pop = api.population
    session_id = session_with(pop, lambda s: len(pop.log_entries(s)) > 20)
    page = search_logs(api, session_id, {"role": "keyholder", "limit": 100}).json()
    assert (len(page["results"]), page["hasMore"]) == (20, True)


def test_deleted_and_unknown_sessions_answer_404_as_their_get_does(make_api: Any) -> None:
    api = make_api(50)
    session_id = api.population.session_ids(SLUG)[4]
    api.population.delete(session_id)
    for missing in (session_id, "no-such-session-id-123"):
        answer = search_logs(api, missing, {"role": "keyholder"})
        get = requests.get(
            f"{api.url}/api/extensions/sessions/{missing}",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        assert (answer.status_code, get.status_code) == (404, 404)
        assert answer.json() == get.json()
    api.population.restore(session_id)
    assert search_logs(api, session_id, {"role": "keyholder"}).status_code == 201


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_paging_returns_every_entry_once_in_order(make_api: Any, order: str) -> None:
    api = make_api(300, log_order=order)
    pop = api.population
    long = session_with(pop, lambda s: len(pop.log_entries(s)) > 100)
    short = session_with(pop, lambda s: 1 < len(pop.log_entries(s)) < 7)
    for session_id in (long, short):
        truth = ids(pop.log_entries(session_id))
        served = ids(read_all(api, session_id, role="keyholder"))
        assert served == (truth if order == "asc" else truth[::-1])
        assert len(set(served)) == len(served)
        assert truth == sorted(truth)


def test_the_default_order_is_newest_first_and_the_default_limit_15(make_api: Any) -> None:
    api = make_api(300)
    pop = api.population
    session_id = session_with(pop, lambda s: len(pop.log_entries(s)) > 15)
    page = search_logs(api, session_id, {"role": "keyholder"}).json()
    truth = ids(pop.log_entries(session_id))
    assert (ids(page["results"]), page["count"], page["hasMore"]) == (
        truth[::-1][:15],
        len(truth),
        True,
    )


def test_an_unknown_last_id_pages_from_where_it_would_sort(make_api: Any) -> None:
    api = make_api(300, log_order="asc")
    pop = api.population
    session_id = session_with(pop, lambda s: len(pop.log_entries(s)) > 10)
    truth = ids(pop.log_entries(session_id))
    between = truth[4][:-1] + ("0" if truth[4][-1] != "0" else "1")  # not an id it has
    assert between not in truth
    expected = [i for i in truth if i > between][:5]
    page = search_logs(api, session_id, {"role": "keyholder", "limit": 5, "lastId": between})
    assert ids(page.json()["results"]) == expected


def test_entries_carry_every_field_and_the_sessions_people(make_api: Any) -> None:
    api = make_api(300)
    pop = api.population
    durations = []
    lengths = []
    all_ids: list[str] = []
    for session_id in pop.session_ids(SLUG):
        session = pop.session(session_id)
        lock = session["lock"]
        entries = pop.log_entries(session_id)
        lengths.append(len(entries))
        all_ids += ids(entries)
        assert entries[0]["type"] == "locked"
        assert entries[0]["createdAt"][:19] == lock["startDate"][:19]
        ends = [e for e in entries if e["type"] in ("unlocked", "deserted")]
        assert len(ends) == (lock["status"] != "locked")
        if lock["status"] != "locked":
            assert entries[-1]["type"] == lock["status"]
        for entry in entries:
            assert FIELDS <= entry.keys() <= FIELDS | {"user"}
            assert re.fullmatch(r"[0-9a-f]{24}", entry["_id"])
            created = datetime.strptime(entry["createdAt"], "%Y-%m-%dT%H:%M:%S.%fZ")
            assert int(entry["_id"][:8], 16) == int(created.replace(tzinfo=UTC).timestamp())
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["createdAt"])
            assert entry["lock"] == lock["_id"]
            assert entry["role"] in ("user", "keyholder", "extension", "admin")
            assert entry["extension"] == (SLUG if entry["role"] == "extension" else None)
            assert entry["prefix"] in ("default", SLUG)
            assert "%USER%" in entry["title"]
            assert isinstance(entry["description"], str)
            person = {"user": lock["user"], "keyholder": lock["keyholder"]}.get(entry["role"])
            assert entry.get("user") == person
            if entry["type"] == "time_changed":
                durations.append(entry["payload"]["duration"])
    assert len(set(all_ids)) == len(all_ids)
    assert any(i.isdigit() for i in all_ids)  # all-digit ObjectIds exist, as in the real API
    assert min(durations) < 0 < max(durations)
    assert min(lengths) == 1 and max(lengths) > 100
    assert 10 < sorted(lengths)[len(lengths) // 2] < 30


def test_wearer_and_visitor_miss_the_time_logs_a_lock_hides(make_api: Any) -> None:
    api = make_api(300)
    pop = api.population
    hidden = [s for s in pop.session_ids(SLUG) if pop.session(s)["lock"]["hideTimeLogs"]]
    assert 30 < len(hidden) < 90  # about a fifth
    session_id = next(
        s for s in hidden if any(e["type"] == "time_changed" for e in pop.log_entries(s))
    )
    everything = read_all(api, session_id, role="keyholder")
    without_time = [e for e in everything if e["type"] != "time_changed"]
    assert len(without_time) < len(everything)
    for role in ("wearer", "visitor"):
        assert read_all(api, session_id, role=role) == without_time
        assert pop.log_entries(session_id, role) == without_time[::-1]
    shown = next(s for s in pop.session_ids(SLUG) if s not in hidden)
    assert read_all(api, shown, role="wearer") == read_all(api, shown, role="keyholder")


def test_show_only_extension_actions(make_api: Any) -> None:
    api = make_api(300)
    pop = api.population
    session_id = session_with(pop, lambda s: len(pop.log_entries(s)) > 20)
    everything = read_all(api, session_id, role="keyholder")
    own = read_all(api, session_id, role="keyholder", showOnlyExtensionActions=True)
    assert own == [e for e in everything if e["role"] == "extension" or e["prefix"] == SLUG]
    assert 0 < len(own) < len(everything)
    assert pop.log_entries(session_id, only_extension=True) == own[::-1]


def test_new_entries_arrive_after_add_log_entries_and_end(make_api: Any) -> None:
    api = make_api(300, log_order="asc")
    pop = api.population
    session_id = pop.session_ids(SLUG, "locked")[0]
    before = ids(read_all(api, session_id, role="keyholder"))
    total = pop.total_log_entries(SLUG)
    added = pop.add_log_entries(session_id, 3)
    pop.end(session_id)
    after = read_all(api, session_id, role="keyholder")
    assert ids(after) == [*before, *added, after[-1]["_id"]]
    assert after[-1]["type"] == "unlocked" and after[-1]["_id"] > added[-1] > before[-1]
    assert pop.total_log_entries(SLUG) == total + 4
    newer = search_logs(api, session_id, {"role": "keyholder", "lastId": before[-1]}).json()
    assert (ids(newer["results"]), newer["hasMore"]) == (ids(after[len(before) :]), False)
    with pytest.raises(ValueError, match="not running"):
        pop.add_log_entries(session_id)
    pop.end(session_id, "deserted")  # a second end writes no second end entry
    assert ids(pop.log_entries(session_id)) == ids(after)


def test_a_stand_in_in_another_process_takes_log_entries_and_tells_the_truth(
    make_api: Any,
) -> None:
    api = make_api(50)
    changed = requests.post(f"{api.url}/_standin/mutate", json={"log_entries": 4}, timeout=10)
    logged = changed.json()["logged"]
    truth = requests.post(f"{api.url}/_standin/log-truth", json={}, timeout=10).json()[SLUG]
    assert len(logged) == 4 and all(any(i in v for v in truth.values()) for i in logged)
    assert sum(map(len, truth.values())) == api.population.total_log_entries(SLUG)


def test_histories_are_the_same_for_the_same_seed() -> None:
    def mutated(seed: int) -> Population:
        pop = Population(200, seed=seed)
        running = pop.session_ids(SLUG, "locked")
        pop.add_log_entries(running[0], 2)
        pop.end(running[1], "deserted")
        pop.add(SLUG, 1)
        return pop

    first, second, other = mutated(3), mutated(3), mutated(4)
    assert first.log_truth(SLUG) == second.log_truth(SLUG)
    some = first.session_ids(SLUG)[::40]
    assert [first.log_entries(s) for s in some] == [second.log_entries(s) for s in some]
    assert first.log_truth(SLUG) != other.log_truth(SLUG)


def test_faults_on_the_logs_endpoint(make_api: Any) -> None:
    api = make_api(50)
    session_id = api.population.session_ids(SLUG)[0]
    api.add_fault("500", endpoint="logs", times=2)
    statuses = [search_logs(api, session_id, {"role": "keyholder"}).status_code for _ in range(3)]
    search = requests.post(
        f"{api.url}/api/extensions/sessions/search",
        json={"extensionSlug": SLUG},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert (statuses, search.status_code) == ([500, 500, 201], 201)
    assert (api.count("logs"), api.count("logs", status=500), api.count("search")) == (3, 2, 1)
    api.add_fault("missing_pagination_id", endpoint="logs")
    page = search_logs(api, session_id, {"role": "keyholder", "limit": 1}).json()
    assert "_id" not in page["results"][-1]
