"""The report page: written after a successful run, self-contained, and drawn by a real browser.

The demo's page is opened in headless Chromium (Debian's `chromium`, installed here when
missing, as the destination tests install PostgreSQL). A small script, added to a copy of the
page only, records every chart's rendered size, every error and every network request into the
DOM, which `--dump-dom` prints.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import SLUG, configure, run_cli, run_process

CHARTS_PER_EXTENSION = 9
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",  # required as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
]
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", (e) => window.__errors.push(String(e.message || e.type)), true);
const consoleError = console.error;
console.error = (...args) => { window.__errors.push(args.join(" ")); consoleError(...args); };
window.addEventListener("load", () => {
  const probe = document.createElement("pre");
  probe.id = "probe";
  probe.textContent = JSON.stringify({
    charts: [...document.querySelectorAll("figure svg")].map((svg) => {
      const box = svg.getBoundingClientRect();
      return [box.width, box.height, svg.querySelectorAll("rect, polyline").length];
    }),
    errors: window.__errors,
    requests: performance.getEntriesByType("resource").map((r) => r.name),
    text: document.body.innerText,
  });
  document.body.appendChild(probe);
});
</script>"""


def chromium() -> str:
    """The Chromium binary, installed with apt-get when missing and allowed."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.fail("Chromium is not installed and cannot be here: apt-get install chromium")
    quiet: dict[str, Any] = {
        "stdout": subprocess.DEVNULL,
        "env": {**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        "check": True,
        "timeout": 900,
    }
    subprocess.run(["apt-get", "update", "-qq"], **quiet)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], **quiet)
    return shutil.which("chromium") or pytest.fail("apt-get installed no chromium")


def _probe(page: Path, tmp: Path) -> tuple[dict[str, Any], str]:
    """Open a copy of `page` with the probe script; (what the probe saw, Chromium's log)."""
    checked = tmp / "checked.html"
    checked.write_text(page.read_text().replace("<head>", "<head>" + PROBE, 1))
    done = subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, "--dump-dom", checked.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, done.stderr[-2000:]
    return json.loads(html.unescape(found.group(1))), done.stderr


def test_demo_page_renders_every_chart_in_a_real_browser(home, tmp_path):
    demo = run_process("--demo", "--quiet")
    assert demo.code == 0, demo.err
    page = home / "chaster_demo.html"
    assert f"report page: {page}" in demo.out
    source = page.read_text()
    assert "<script" not in source  # nothing runs; nothing is fetched
    assert re.findall(r"\b(?:src|href)\s*=", source) == []

    seen, log = _probe(page, tmp_path)
    assert seen["errors"] == []
    assert seen["requests"] == []
    assert "CONSOLE" not in log  # no console message of any level
    assert len(seen["charts"]) == CHARTS_PER_EXTENSION
    for width, height, marks in seen["charts"]:
        assert width > 800 and height > 50 and marks > 0
    text = seen["text"]
    assert "This run: 3,000 new, 0 re-read, 0 newly removed" in text
    for caption in (
        "Sessions started and ended per day",
        "Sessions running over time",
        "Outcomes by mode",
        "Outcomes by lock type",
        "Duration of ended sessions by mode",
        "Duration of ended sessions by lock type",
        "Other extensions on the same locks",
        "Config values",
        "Returning wearers",
    ):
        assert caption in text
    for axis in ("sessions per day", "day (UTC)", "duration of ended sessions, days"):
        assert axis in source

    shot = tmp_path / "page.png"
    subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--screenshot={shot}", "--window-size=1000,3400",
         page.as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    from PIL import Image

    with Image.open(shot) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000) or []
    assert len(colours) > 50  # not a blank page: text, bars and lines in many shades
    keep = os.environ.get("CHASTER_SCREENSHOT")
    if keep:  # to look at it: CHASTER_SCREENSHOT=/tmp/page.png pytest tests/test_html_report.py
        shutil.copy(shot, keep)


def test_html_setting_writes_a_page_after_each_run(make_api, home, monkeypatch, capsys):
    api = make_api(300)
    configure(monkeypatch, api)
    monkeypatch.setenv("CHASTER__HTML_REPORT", "reports/sessions.html")
    first = run_cli(capsys, "--duckdb", "out.duckdb")
    assert first.code == 0, first.err
    page = home / "reports" / "sessions.html"
    assert f"report page: {page}" in first.out
    assert "This run: 300 new, 0 re-read" in page.read_text()
    api.population.add(SLUG, 4)
    second = run_cli(capsys, "--duckdb", "out.duckdb", "--html", "other.html")
    assert second.code == 0, second.err
    assert "This run: 4 new," in (home / "other.html").read_text()  # the option wins


def test_page_reads_the_views_on_postgres(make_api, home, monkeypatch, capsys, postgres):
    api = make_api(300)
    configure(monkeypatch, api)
    monkeypatch.setenv("DESTINATION__WAREHOUSE__DESTINATION_TYPE", "postgres")
    monkeypatch.setenv("DESTINATION__WAREHOUSE__CREDENTIALS", postgres)
    result = run_cli(capsys, "--destination", "warehouse", "--html", "page.html")
    assert result.code == 0, result.err
    source = (home / "page.html").read_text()
    assert source.count("<svg") == CHARTS_PER_EXTENSION
    assert "This run: 300 new, 0 re-read" in source
    assert source.count("<polyline") == 3  # started, ended, running: drawn from analytics.daily


def test_no_page_when_the_views_could_not_be_created(make_api, home, monkeypatch, capsys):
    import duckdb

    api = make_api(100)
    configure(monkeypatch, api)
    with duckdb.connect("out.duckdb") as con:  # a user's table where a view would go
        con.execute("create schema analytics; create table analytics.daily (note varchar)")
    result = run_cli(capsys, "--duckdb", "out.duckdb", "--html", "page.html")
    assert result.code == 9, result.err
    assert not (home / "page.html").exists()
    assert "report page" not in result.out


def test_one_section_per_extension(make_api, home, monkeypatch, capsys):
    api = make_api({SLUG: 200, "other-extension": 100})
    configure(monkeypatch, api, slug=f"{SLUG},other-extension")
    result = run_cli(capsys, "--duckdb", "out.duckdb", "--html", "page.html")
    assert result.code == 0, result.err
    source = (home / "page.html").read_text()
    assert re.findall(r'<section id="([^"]+)">', source) == [SLUG, "other-extension"]
    assert source.count("<svg") == 2 * CHARTS_PER_EXTENSION
    assert "This run: 200 new," in source and "This run: 100 new," in source
