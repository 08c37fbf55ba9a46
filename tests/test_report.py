"""`--report PATH` writes what a scheduler alerts on; several extensions are broken down by slug."""

from __future__ import annotations

import json
from collections import Counter

from conftest import SLUG, TOKEN, configure, run_cli, stored_sessions

OTHER = "other-extension"


def test_report_of_a_run_over_two_extensions(make_api, home, monkeypatch, capsys):
    api = make_api({SLUG: 250, OTHER: 120})
    configure(monkeypatch, api, slug=None)
    args = ["--extension-slug", SLUG, "--extension-slug", OTHER, "--duckdb", "out.duckdb"]
    result = run_cli(capsys, *args, "--report", "reports/run.json")
    assert result.code == 0, result.err
    report = json.loads((home / "reports" / "run.json").read_text())
    assert (report["status"], report["exit_code"], report["error"]) == ("succeeded", 0, None)
    assert report["destination"] == "duckdb"
    assert report["location"] == str(home / "out.duckdb")
    sent = Counter(r.body["extensionSlug"] for r in api.requests)
    assert report["requests"]["total"] == api.count() == sum(sent.values())
    for slug, size in ((SLUG, 250), (OTHER, 120)):
        figures = report["extensions"][slug]
        assert (figures["new"], figures["total"], figures["removed"]) == (size, size, 0)
        assert figures["requests"] == sent[slug]
        assert f"  {slug}: {size:,} new" in result.out
    assert stored_sessions("out.duckdb") == {
        **api.population.truth(SLUG),
        **api.population.truth(OTHER),
    }
    assert "analytics.overview" in report["views"]

    # the next run: the other extension ended a lock, the first one has 3 new sessions
    api.population.add(SLUG, 3)
    api.population.end(api.population.session_ids(OTHER, "locked")[0], "deserted")
    api.clear_log()
    assert run_cli(capsys, *args, "--report", "reports/run.json").code == 0
    report = json.loads((home / "reports" / "run.json").read_text())
    assert report["extensions"][SLUG]["new"] == 3
    assert report["extensions"][OTHER]["new"] == 0
    assert report["extensions"][OTHER]["updated"] >= 1
    sent = Counter(r.body["extensionSlug"] for r in api.requests if r.body)
    gets = api.count("get")
    assert report["extensions"][SLUG]["requests"] == sent[SLUG]
    assert report["extensions"][OTHER]["requests"] == sent[OTHER] + gets  # the GET of its leaver


def test_report_of_a_failed_run(make_api, home, monkeypatch, capsys):
    api = make_api(50)
    configure(monkeypatch, api, token="wrong-token-for-the-report")
    result = run_cli(capsys, "--duckdb", "out.duckdb", "--report", "run.json")
    assert result.code == 3
    text = (home / "run.json").read_text()
    report = json.loads(text)
    assert (report["status"], report["exit_code"]) == ("failed", 3)
    assert report["error"].startswith("the API refused the token (HTTP 401")
    assert report["requests"]["total"] == 1
    assert "wrong-token-for-the-report" not in text and TOKEN not in text


def test_report_of_a_run_that_fails_after_its_load(make_api, home, monkeypatch, capsys):
    """The load stands, but the command fails writing the page: the report says the command's
    outcome, not the load's, with the load's figures."""
    api = make_api(120)
    configure(monkeypatch, api)
    (home / "blocker").write_text("a file where the page's folder would be")
    args = ["--duckdb", "out.duckdb", "--report", "run.json", "--html", "blocker/page.html"]
    result = run_cli(capsys, *args)
    assert result.code == 1, result.err
    report = json.loads((home / "run.json").read_text())
    assert (report["status"], report["exit_code"]) == ("failed", 1)
    assert report["error"] and report["error"] in result.err
    assert report["extensions"][SLUG]["new"] == 120
    assert report["chunks"] == 1
    assert report["requests"]["total"] == api.count()
