"""The report page: written after a successful run, self-contained, and drawn by a real browser.

The demo's page is opened in headless Chromium (Debian's `chromium`, installed here when
missing, as the destination tests install PostgreSQL). A small script, added to a copy of the
page only, records every chart's rendered size, every error and every network request into the
DOM, which `--dump-dom` prints.
"""

from __future__ import annotations

import fcntl
import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from chaster_sessions.html_report import (
    MAX_PERIODS,
    choose_period,
    per_period,
    period_index,
    period_label,
)
from conftest import SLUG, configure, run_cli

CHARTS_PER_EXTENSION = 8  # and one table, of the config values
LOG_CHARTS = 2  # with action logs loaded (the demo): actions per week, time added and removed
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
    """The Chromium binary, installed with apt-get when missing and allowed. The suite runs in
    parallel processes (pytest-xdist), and apt-get fails at once while another holds its lock:
    the install waits on a file lock, then looks again."""
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
    with open(Path(tempfile.gettempdir()) / "chaster-chromium-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not shutil.which("chromium"):
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


# the tests that read the demo go to one worker, so the demo is run once (--dist loadgroup)
@pytest.mark.xdist_group("demo")
def test_demo_page_renders_every_chart_in_a_real_browser(demo, tmp_path):
    folder, out = demo
    page = folder / "chaster_demo.html"
    assert f"report page: {page}" in out
    source = page.read_text()
    assert "<script" not in source  # nothing runs; nothing is fetched
    assert re.findall(r"\b(?:src|href)\s*=", source) == []

    seen, log = _probe(page, tmp_path)
    assert seen["errors"] == []
    assert seen["requests"] == []
    assert "CONSOLE" not in log  # no console message of any level
    assert len(seen["charts"]) == CHARTS_PER_EXTENSION + LOG_CHARTS
    for width, height, marks in seen["charts"]:
        assert width > 800 and height > 50 and marks > 0
    text = seen["text"]
    assert "This run: 3,000 new, 0 re-read, 0 newly removed" in text
    figures = _figures(source)
    assert list(figures) == [
        "Sessions started and ended per month",  # about three years: 36 months
        "Sessions running over time",
        "Outcomes by mode",
        "Duration of ended sessions by mode",
        "Outcomes by lock type",
        "Duration of ended sessions by lock type",
        "Other extensions on the same locks",
        "Config values by setting (the 5 most common of each)",
        "Sessions per wearer",
        "Actions per week by type",
        "Time added and removed per month",  # over 60 weeks of entries: by month
    ]
    for axis in ("sessions per month", "month (UTC)", "day (UTC)", "ended sessions, days"):
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


def _figures(source: str) -> dict[str, str]:
    """caption -> the figure's HTML, in page order."""
    found = re.findall(r"<figure><figcaption>(.*?)</figcaption>(.*?)</figure>", source, re.S)
    return {html.unescape(caption): body for caption, body in found}


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def _config_rows(table: str) -> list[tuple[str, str, int]]:
    """(setting, value, sessions) per row of the config table, the setting carried down its
    rowspan."""
    rows, setting = [], ""
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]:
        head = re.search(r'<td class="setting"[^>]*>(.*?)</td>', row)
        setting = _text(head.group(1)) if head else setting
        value = re.search(r'<td class="value">(.*?)</td><td>([\d,]+)</td>', row)
        assert value, row
        rows.append((setting, _text(value.group(1)), int(value.group(2).replace(",", ""))))
    return rows


@pytest.mark.xdist_group("demo")
def test_demo_page_reads_at_a_glance(demo):
    """Each chart answers its question without a second look: binned periods with the one not
    over yet marked, durations grouped by mode, config values told apart, the figures table's
    counts explained, and wearers under a title that fits all of them."""
    import duckdb

    folder, _ = demo
    source = (folder / "chaster_demo.html").read_text()
    figures = _figures(source)
    with duckdb.connect(str(folder / "chaster_demo.duckdb"), read_only=True) as con:

        def query(sql: str) -> list[tuple[Any, ...]]:
            return con.execute(sql).fetchall()

        first_day, last_day = query("select min(day), max(day) from analytics.daily")[0]
        ((started, ended),) = query(
            "select sum(started), sum(unlocked + deserted) from analytics.daily"
        )
        modes = query(
            "select value, median_duration_hours / 24, p90_duration_hours / 24 from "
            "analytics.outcomes where dimension = 'mode' and median_duration_hours is not null "
            "order by sessions desc, value"
        )
        config = query(
            "select setting, value, sessions from analytics.config_values "
            "order by sessions desc, setting, value"
        )
        returning, wearers = query(
            "select count(*) filter (where sessions > 1), count(*) from analytics.wearers"
        )[0]

    # started and ended: one group of two bars side by side per month, not a zig-zag per day
    chart = figures["Sessions started and ended per month"]
    periods = re.findall(r'<g class="period">(.*?)</g>', chart, re.S)
    months = (last_day.year - first_day.year) * 12 + last_day.month - first_day.month + 1
    assert 30 <= len(periods) == months <= MAX_PERIODS
    bars = [re.findall(r"<title>([^<]*): ([\d,]+)</title></rect>", p) for p in periods]
    assert all(
        [name.split(", ", 1)[1] for name, _ in group[-2:]]
        == ["started", "ended (unlocked or deserted)"]
        for group in bars
    )
    assert sum(int(group[-2][1]) for group in bars) == started == 2_840
    assert sum(int(group[-1][1]) for group in bars) == ended
    month = f"{last_day:%Y-%m}"  # the view's last day is today: its month is not over
    shaded = [f"<title>{month}: month not over yet</title>" in p for p in periods]
    assert shaded == [False] * (len(periods) - 1) + [True]
    assert f"{month}, shaded, is not over yet: its bars count only up to the last load" in chart

    # durations: one group per mode, its median and 90th percentile side by side
    def duration_groups(caption: str) -> list[tuple[str, list[str]]]:
        found = re.findall(
            r'<g class="group"><text[^>]*>([^<]+)</text>(.*?)</g>', figures[caption], re.S
        )
        return [(label, re.findall(r"<title>([^<]*)</title>", bars)) for label, bars in found]

    assert duration_groups("Duration of ended sessions by mode") == [
        (mode, [f"{mode}, median: {median:,.1f}", f"{mode}, 90th percentile: {p90:,.1f}"])
        for mode, median, p90 in modes
    ]
    assert [
        [title.split(": ")[0] for title in titles]
        for _, titles in duration_groups("Duration of ended sessions by lock type")
    ] == [["keyholder, median", "keyholder, 90th percentile"],
          ["self-lock, median", "self-lock, 90th percentile"]]  # fmt: skip
    assert "turn median" not in source and "turn p90" not in source

    # config values: grouped by setting, each setting's most common values in full
    rows = _config_rows(figures["Config values by setting (the 5 most common of each)"])
    by_setting: dict[str, list[tuple[str, int]]] = {}
    for setting, value, sessions in config:
        by_setting.setdefault(setting, []).append((value, sessions))
    shown = [(s, v, n) for s, v, n in rows if not v.endswith("other values")]
    assert len({(s, v) for s, v, _ in shown}) == len(shown)  # no two rows read alike
    assert "…" not in "".join(v for _, v, _ in shown)
    for setting in {s for s, _, _ in rows}:
        values = by_setting[setting]
        assert [(v, n) for s, v, n in shown if s == setting] == values[:5]
        rest = [(v, n) for s, v, n in rows if s == setting and v.endswith("other values")]
        assert rest == ([(f"{len(values) - 5} other values", sum(n for _, n in values[5:]))]
                        if len(values) > 5 else [])  # fmt: skip
    difficulty = [v for s, v, _ in shown if s == "difficulty"]
    assert len(difficulty) == 5
    assert all(v.startswith('[{"type":"add","weight":') for v in difficulty)

    # the figures table: what it stores, what it leaves out, and what it counts
    table = re.search(r"<table>(.*?)</table>\s*<p>(.*?)</p>", source.split("<h2>")[1], re.S)
    assert table
    assert re.findall(r"<th>([^<]+)</th>", table.group(1)) == [
        "stored", "test locks", "removed", "counted", "running", "unlocked", "deserted",
        "wearers",
    ]  # fmt: skip
    assert re.findall(r"<td>([^<]+)</td>", table.group(1))[:4] == ["3,000", "160", "0", "2,840"]
    assert _text(table.group(2)).startswith("3,000 stored, 2,840 counted excluding 160 test locks")

    # wearers: a title that a one-session wearer belongs under, and who came back
    wearer_chart = figures["Sessions per wearer"]
    assert "1 session<title>" in wearer_chart
    assert (
        f"{returning:,} of {wearers:,} wearers ({returning / wearers:.0%}) are returning wearers"
        in wearer_chart
    )
    assert "Returning wearers" not in source

    # action logs: a line per frequent type, the rest as one; hours added and removed per month
    with duckdb.connect(str(folder / "chaster_demo.duckdb"), read_only=True) as con:
        types = con.execute(
            "select type from analytics.action_types order by entries desc, type"
        ).fetchall()
        added, removed = con.execute(
            "select sum(seconds_added) / 3600, sum(seconds_removed) / 3600 "
            "from analytics.weekly_actions"
        ).fetchone()
    lines = re.findall(r"<title>([^<]+)</title></polyline>", figures["Actions per week by type"])
    assert lines == [t for (t,) in types[:5]] + [f"{len(types) - 5} other types"]
    time_bars = re.findall(
        r"<title>[^<]*, hours (added|removed): ([\d,.]+)</title></rect>",
        figures["Time added and removed per month"],
    )
    drawn = {kind: sum(float(v.replace(",", "")) for k, v in time_bars if k == kind)
             for kind in ("added", "removed")}  # fmt: skip
    assert drawn["added"] == pytest.approx(added, abs=1) and added > 1_000
    assert drawn["removed"] == pytest.approx(removed, abs=1) and removed > 1_000
    net = f"Net over the whole span: {added - removed:+,.1f} hours."
    assert net in figures["Time added and removed per month"]


@pytest.mark.parametrize(
    ("days", "period", "bars"),
    [
        (1, "day", 1),
        (60, "day", 60),  # two months: still day by day
        (61, "week", 10),
        (365, "week", 53),
        (500, "month", 18),
        (1_048, "month", 36),  # the demo's span
        (6 * 365, "quarter", 25),
        (20 * 365, "year", 21),
    ],
)
def test_the_finest_period_that_fits_is_chosen(days, period, bars):
    first = date(2024, 1, 19)
    last = date.fromordinal(first.toordinal() + days - 1)
    assert choose_period(first, last) == period
    assert period_index(last, period) - period_index(first, period) + 1 == bars <= MAX_PERIODS


def test_periods_are_labelled_by_their_first_day_and_filled_between():
    day = date(2026, 12, 1)  # a Tuesday
    labels = {p: period_label(period_index(day, p), p) for p in ("day", "week", "month")}
    assert labels == {"day": "2026-12-01", "week": "2026-11-30", "month": "2026-12"}
    assert period_label(period_index(day, "quarter"), "quarter") == "2026 Q4"
    assert period_label(period_index(day, "year"), "year") == "2026"
    daily = [
        {"day": date(2026, 9, 30), "started": 2, "unlocked": 1, "deserted": 0},
        {"day": date(2026, 12, 1), "started": 3, "unlocked": 1, "deserted": 1},
    ]
    assert [(period_label(i, "month"), v) for i, v in per_period(daily, "month")] == [
        ("2026-09", [2, 1]),
        ("2026-10", [0, 0]),
        ("2026-11", [0, 0]),
        ("2026-12", [3, 2]),
    ]


def test_html_setting_writes_a_page_after_each_run(make_api, home, monkeypatch, capsys):
    api = make_api(300)
    configure(monkeypatch, api)
    monkeypatch.setenv("CHASTER__HTML_REPORT", "reports/sessions.html")
    first = run_cli(capsys, "--duckdb", "out.duckdb")
    assert first.code == 0, first.err
    page = home / "reports" / "sessions.html"
    assert f"report page: {page}" in first.out
    assert "This run: 300 new, 0 re-read" in page.read_text()
    assert page.read_text().count("<svg") == CHARTS_PER_EXTENSION  # logs off: no log charts
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
    assert source.count("<polyline") == 1  # running, drawn from analytics.daily
    assert source.count('<g class="period">') >= 30  # started and ended, by month


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
