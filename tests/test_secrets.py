"""The token and the lock credentials are found nowhere; pseudonymous mode hides who people are.

The search covers what a user or an attacker could read afterwards: everything the runs printed
(with `--verbose` and dlt's debug logs on, tracebacks included), every file under the dlt data
folder and the project folder, and every value in every table of the DuckDB file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import (
    SLUG,
    TOKEN,
    configure,
    present_sessions,
    query,
    run_cli,
    run_process,
    standin_env,
    stored_sessions,
    values_found,
)

WRONG_TOKEN = "wrong-token-0b9e44d1c7"
KEY = "pseudonym-key-5d21e0"


def _credentials(api: Any) -> set[str]:
    """Every credential-like value the stand-in served: offer tokens, combinations, passwords."""
    found: set[str] = set()
    for session_id in api.population.session_ids(SLUG):
        lock = api.population.session(session_id)["lock"]
        found.update(
            v
            for v in (
                lock.get("offerToken"),
                lock.get("combination"),
                (lock.get("sharedLock") or {}).get("password"),
            )
            if v
        )
    return found


def _files_containing(folder: Path, needles: set[str]) -> dict[str, set[str]]:
    """file -> the needles in its bytes (pickles and JSON store strings as plain UTF-8)."""
    hits: dict[str, set[str]] = {}
    for path in folder.rglob("*"):
        if path.is_file() and not path.name.endswith(".duckdb"):
            data = path.read_bytes()
            found = {n for n in needles if n.encode() in data}
            if found:
                hits[str(path)] = found
    return hits


def test_token_and_credentials_are_found_nowhere(home, make_api):
    # Rate-limited without Retry-After and behind a flaky proxy, as the real API may be.
    api = make_api(600, rate_limit=5, rate_window=1.0, retry_after=False, rate_headers=False)
    api.add_fault("502_html", times=2)
    api.add_fault("500", endpoint="get", times=1)
    env = {**standin_env(api, page_size="50"), "RUNTIME__LOG_LEVEL": "DEBUG"}
    credentials = _credentials(api)
    assert len(credentials) > 600  # every lock has an offer token and a combination
    outputs = []

    first = run_process("--verbose", "--duckdb", "out.duckdb", env=env)
    assert first.code == 0, first.err
    assert api.count(status=429) > 0 and api.count(status=502) == 2
    outputs.append(first)

    # a second run that re-reads sessions by GET (a running lock ended, another was deleted)
    locked = api.population.session_ids(SLUG, "locked")
    api.population.end(locked[0], "unlocked")
    api.population.delete(locked[1])
    second = run_process("--verbose", "--duckdb", "out.duckdb", env=env)
    assert second.code == 0, second.err
    assert api.count("get", status=500) == 1
    outputs.append(second)

    # a run that fails on a fault that persists, traceback shown
    api.add_fault("502_html", times=100)
    failed = run_process(
        "--verbose", "--duckdb", "out.duckdb", env={**env, "SOURCES__CHASTER__MAX_ATTEMPTS": "2"}
    )
    assert failed.code == 5
    assert "Traceback" in failed.err  # --verbose shows it: and it too must be clean
    outputs.append(failed)
    api.config.faults.clear()

    # a wrong token: the API's 401, dlt's wrapping, the traceback
    wrong = run_process(
        "--verbose",
        "--duckdb",
        "out.duckdb",
        env={**env, "SOURCES__CHASTER__API_TOKEN": WRONG_TOKEN},
    )
    assert wrong.code == 3
    outputs.append(wrong)

    assert present_sessions("out.duckdb") == api.population.truth(SLUG)
    needles = {TOKEN, WRONG_TOKEN, *credentials}
    for result in outputs:
        printed = result.out + result.err
        assert not {n for n in needles if n in printed}
    assert _files_containing(home / "dlt", needles) == {}
    assert _files_containing(home / "project", needles) == {}
    # the search does read dlt's own files: the slug, which is no secret, is found in them
    assert any(p.endswith("trace.pickle") for p in _files_containing(home / "dlt", {SLUG}))
    assert values_found("out.duckdb", needles) == set()
    columns = {c for (c,) in query("out.duckdb", "select column_name from duckdb_columns()")}
    assert not {"lock__offer_token", "lock__combination", "lock__shared_lock__password"} & columns


def test_credentials_are_stored_only_when_asked(make_api, home, monkeypatch, capsys):
    api = make_api(100)
    configure(monkeypatch, api, store_credentials="true")
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    stored = [
        offer
        for (offer,) in query("out.duckdb", "select lock__offer_token from chaster.sessions")
        if offer is not None
    ]
    served = [
        api.population.session(s)["lock"].get("offerToken") for s in api.population.truth(SLUG)
    ]
    assert sorted(stored) == sorted(o for o in served if o)
    assert stored and set(stored) <= _credentials(api)


def _people(api: Any) -> tuple[set[str], set[str]]:
    """(user ids and usernames, identifying profile values) of everyone the stand-in serves."""
    names: set[str] = set()
    profile: set[str] = set()
    for session_id in api.population.session_ids(SLUG):
        lock = api.population.session(session_id)["lock"]
        for user in (lock.get("user"), lock.get("keyholder")):
            if user:
                names.update((user["_id"], user["username"]))
                profile.update(
                    v
                    for k in ("avatarUrl", "discordId", "discordUsername", "fullLocation")
                    if isinstance(v := user.get(k), str) and len(v) > 6
                )
    return names, profile


def _pseudonyms(path: str) -> dict[str, tuple[str, str]]:
    return {
        sid: (uid, name)
        for sid, uid, name in query(
            path, "select session_id, lock__user___id, lock__user__username from chaster.sessions"
        )
    }


def test_pseudonymous_mode_hides_people_and_keeps_them_apart(make_api, home, monkeypatch, capsys):
    api = make_api(400)
    configure(monkeypatch, api, privacy="pseudonymous", pseudonym_key=KEY)
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    first = _pseudonyms("out.duckdb")
    assert len(first) == 400
    assert all(uid.startswith("p_") and name.startswith("p_") for uid, name in first.values())
    # people stay distinct: one pseudonym per real user, never two users on one pseudonym
    real = {
        sid: api.population.session(sid)["lock"]["user"]["username"]
        for sid in api.population.truth(SLUG)
    }
    assert len({first[s][1] for s in real}) == len(set(real.values()))
    names, profile = _people(api)
    assert values_found("out.duckdb", names | profile | {KEY}) == set()
    columns = {c for (c,) in query("out.duckdb", "select column_name from duckdb_columns()")}
    for dropped in ("description", "location", "full_location", "avatar_url", "discord_id"):
        assert f"lock__user__{dropped}" not in columns
        assert f"lock__keyholder__{dropped}" not in columns
    assert "lock__user__gender" in columns  # what is not listed is kept

    # stable across runs: re-read sessions get the same pseudonyms as before
    for session_id in api.population.session_ids(SLUG, "locked")[:3]:
        api.population.end(session_id, "unlocked")
    api.population.add(SLUG, 20)
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 0
    again = _pseudonyms("out.duckdb")
    assert {s: again[s] for s in first} == first
    assert stored_sessions("out.duckdb") == api.population.truth(SLUG)


def test_full_mode_keeps_profiles_but_never_credentials(make_api, home, monkeypatch, capsys):
    api = make_api(100)
    configure(monkeypatch, api)
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    columns = {c for (c,) in query("out.duckdb", "select column_name from duckdb_columns()")}
    assert {"lock__user__username", "lock__user__location", "lock__user__avatar_url"} <= columns
    names, _ = _people(api)
    assert values_found("out.duckdb", names) == names


def test_pseudonymous_mode_needs_its_key(make_api, home, monkeypatch, capsys):
    api = make_api(30)
    configure(monkeypatch, api, privacy="pseudonymous")
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 2
    assert "SOURCES__CHASTER__PSEUDONYM_KEY" in result.err
    assert api.count() == 0


@pytest.fixture
def held_open(home: Path):
    """Another process holding out.duckdb open for writing, as a notebook or DuckDB shell does."""
    import subprocess
    import sys

    code = (
        "import duckdb, sys; c = duckdb.connect('out.duckdb'); "
        "c.execute('create table notes as select 1 as x'); print('ready', flush=True); "
        "sys.stdin.read()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "ready"
    yield holder
    holder.stdin.close()
    holder.wait(timeout=30)


def test_a_duckdb_file_held_by_another_process(held_open, make_api, home, monkeypatch, capsys):
    api = make_api(30)
    configure(monkeypatch, api)
    result = run_cli(capsys, "--duckdb", "out.duckdb")
    assert result.code == 7
    assert result.err.strip() == (
        f"error: {home / 'out.duckdb'} is in use by another process (a notebook, a DuckDB shell "
        "or another program has it open); close it there and run again"
    )
    assert api.count() == 0
    held_open.stdin.close()
    held_open.wait(timeout=30)
    assert query("out.duckdb", "select count(*) from notes")[0][0] == 1  # untouched
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0  # released: the run goes ahead
    assert stored_sessions("out.duckdb") == api.population.truth(SLUG)
    assert query("out.duckdb", "select count(*) from notes")[0][0] == 1
