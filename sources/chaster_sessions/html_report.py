"""The report page: one self-contained HTML file about each extension's sessions.

Written after a successful run (`--html PATH`, or `[chaster] html_report` / `CHASTER__HTML_REPORT`).
It reads only the `analytics` views (and dlt's load log for freshness), so it works wherever the
views exist. Charts are inline SVG (`svg.py`): the page needs no script and no network, so it
opens from a file, an e-mail attachment or a CI artifact.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any

from .record import RunRecord
from .svg import bar_chart, column_chart, grouped_bar_chart, line_chart

COLORS = {"started": "#2b6cb0", "ended": "#dd6b20", "running": "#3182ce"}
OUTCOME_SEGMENTS = (("running", "#3182ce"), ("unlocked", "#38a169"), ("deserted", "#e53e3e"))
DURATION_SERIES = (("median", "#805ad5"), ("90th percentile", "#d69e2e"))
# the periods the started/ended chart bins days into, finest first, and the most bars it draws
PERIODS = ("day", "week", "month", "quarter", "year")
MAX_PERIODS = 60
PERIOD_AXES = {
    "day": "day (UTC)",
    "week": "week (UTC), by its Monday",
    "month": "month (UTC)",
    "quarter": "quarter (UTC)",
    "year": "year (UTC)",
}
ACTION_TYPES_SHOWN = 5  # the most frequent types get a line each; the rest share one
ACTION_COLORS = ("#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#d69e2e", "#e53e3e", "#718096")
TIME_SERIES = (("hours added", "#2f855a"), ("hours removed", "#c53030"))
CONFIG_SETTINGS = 12  # settings shown, the most used first
CONFIG_VALUES_PER_SETTING = 5  # values shown per setting, the most common first
LONG_VALUE = 160  # characters; a longer value is folded into a <details> element

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 920px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-top: 2px solid #ddd; padding-top: 0.8em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
td, th { border: 1px solid #ddd; padding: 0.25em 0.7em; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1.2em 0; } figcaption { font-weight: 600; margin-bottom: 0.3em; }
.meta, .note { color: #555; } .note { margin: 0.2em 0 0; font-size: 0.9em; }
td.value code { white-space: pre-wrap; overflow-wrap: anywhere; }
.value { text-align: left; max-width: 34em; } td.setting { vertical-align: top; }
td.bar { text-align: left; width: 130px; } td.bar span { display: inline-block; height: 0.8em; }
"""


def _time(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "never"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(_cell(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, datetime):
        return _time(value)
    return "" if value is None else str(value)


def _figure(caption: str, svg: str, note: str = "") -> str:
    note_html = f'<p class="note">{escape(note)}</p>' if note else ""
    return f"<figure><figcaption>{escape(caption)}</figcaption>{svg}{note_html}</figure>"


def period_index(day: date, period: str) -> int:
    """A number per period that `day` falls in, consecutive from one period to the next. Weeks
    start on Monday (date.fromordinal(1) is a Monday)."""
    if period == "day":
        return day.toordinal()
    if period == "week":
        return (day.toordinal() - 1) // 7
    if period == "month":
        return day.year * 12 + day.month - 1
    if period == "quarter":
        return day.year * 4 + (day.month - 1) // 3
    return day.year


def period_label(index: int, period: str) -> str:
    """How the axis names the period `index` (of `period_index`)."""
    if period == "day":
        return date.fromordinal(index).isoformat()
    if period == "week":
        return date.fromordinal(index * 7 + 1).isoformat()
    if period == "month":
        return f"{index // 12}-{index % 12 + 1:02d}"
    if period == "quarter":
        return f"{index // 4} Q{index % 4 + 1}"
    return str(index)


def choose_period(first: date, last: date, periods: Sequence[str] = PERIODS) -> str:
    """The finest of `periods` that shows the days `first` to `last` in at most MAX_PERIODS
    bars: a daily chart of three years is a thousand zig-zags, a monthly one reads at a glance."""
    for period in periods:
        if period_index(last, period) - period_index(first, period) < MAX_PERIODS:
            return period
    return PERIODS[-1]


def per_period(daily: list[dict[str, Any]], period: str) -> list[tuple[int, list[float]]]:
    """(period index, [started, ended]) for every period from the first day to the last."""
    sums: dict[int, list[float]] = defaultdict(lambda: [0, 0])
    for row in daily:
        counts = sums[period_index(row["day"], period)]
        counts[0] += row["started"]
        counts[1] += row["unlocked"] + row["deserted"]
    return [(i, sums[i]) for i in range(min(sums), max(sums) + 1)] if sums else []


def _started_and_ended(daily: list[dict[str, Any]], today: date, last_load: datetime | None) -> str:
    """The chart of sessions started and ended per period. The view's last day is today, which
    is not over: the period holding it is drawn lighter, and a note says up to when it counts."""
    days = [r["day"] for r in daily]
    period = choose_period(min(days), max(days)) if days else "day"
    bins = per_period(daily, period)
    still_going = bool(bins) and bins[-1][0] == period_index(today, period)
    label = period_label(bins[-1][0], period) if bins else ""
    note = (
        f"{label}, shaded, is not over yet: its bars count only up to the last load, "
        f"{_time(last_load)}."
        if still_going
        else ""
    )
    chart = column_chart(
        [(period_label(i, period), values) for i, values in bins],
        (("started", COLORS["started"]), ("ended (unlocked or deserted)", COLORS["ended"])),
        f"sessions per {period}",
        PERIOD_AXES[period],
        f"sessions started and ended per {period}",
        partial=f"{period} not over yet" if still_going else "",
    )
    return _figure(f"Sessions started and ended per {period}", chart, note)


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _actions_per_week(weekly: list[dict[str, Any]], today: date) -> str:
    """Entries per week, one line per type (the most frequent ones; the rest as one line), every
    week from the first to the last with entries, a week without any at 0."""
    totals: dict[str, int] = defaultdict(int)
    for row in weekly:
        totals[row["type"]] += row["entries"]
    ranked = sorted(totals, key=lambda t: (-totals[t], t))
    shown, rest = ranked[:ACTION_TYPES_SHOWN], set(ranked[ACTION_TYPES_SHOWN:])
    names = shown + ([f"{len(rest)} other types"] if rest else [])
    counts: dict[str, dict[date, int]] = {name: defaultdict(int) for name in names}
    for row in weekly:
        counts[names[-1] if row["type"] in rest else row["type"]][row["week"]] += row["entries"]
    weeks = [r["week"] for r in weekly]
    every_week = [
        min(weeks) + timedelta(weeks=n) for n in range((max(weeks) - min(weeks)).days // 7 + 1)
    ]
    series = [
        (name, ACTION_COLORS[i % len(ACTION_COLORS)], [(w, counts[name][w]) for w in every_week])
        for i, name in enumerate(names)
    ]
    chart = line_chart(
        series,
        "entries per week",
        "action log entries per week by type",
        x_label=PERIOD_AXES["week"],
    )
    note = (
        f"The week of {every_week[-1]} is not over yet: it counts only up to the last load."
        if every_week[-1] == _monday(today)
        else ""
    )
    return _figure("Actions per week by type", chart, note)


def _time_added_and_removed(
    weekly: list[dict[str, Any]], today: date, last_load: datetime | None
) -> str:
    """Hours added and removed per week (or per month, ... when the weeks are too many to
    draw, each week in the period of its Monday), from the time_changed entries; the period not
    over yet is drawn lighter."""
    weeks = [r["week"] for r in weekly]
    period = choose_period(min(weeks), max(weeks), PERIODS[1:])
    sums: dict[int, list[float]] = defaultdict(lambda: [0, 0])
    for row in weekly:
        added_removed = sums[period_index(row["week"], period)]
        added_removed[0] += row["seconds_added"] / 3600
        added_removed[1] += row["seconds_removed"] / 3600
    bins = [(i, sums[i]) for i in range(min(sums), max(sums) + 1)]
    # a week is binned by its Monday: the period holding this week's Monday is not over
    still_going = bins[-1][0] == period_index(_monday(today), period)
    chart = column_chart(
        [(period_label(i, period), values) for i, values in bins],
        TIME_SERIES,
        f"hours per {period}",
        PERIOD_AXES[period],
        f"time added and removed per {period}",
        partial=f"{period} not over yet" if still_going else "",
    )
    net = sum(a - r for _, (a, r) in bins)
    note = f"Net over the whole span: {net:+,.1f} hours."
    if still_going:
        note += f" The shaded {period} counts only up to the last load, {_time(last_load)}."
    return _figure(f"Time added and removed per {period}", chart, note)


def _actions(weekly: list[dict[str, Any]], today: date, last_load: datetime | None) -> str:
    """The action-log charts; nothing when no log was loaded (setting `action_logs` off)."""
    if not weekly:
        return ""
    return _actions_per_week(weekly, today) + _time_added_and_removed(weekly, today, last_load)


def _figures_table(overview: dict[str, Any]) -> str:
    """The extension's figures. The run's summary counts every stored session; the views leave
    test locks and removed sessions out, so the table shows both and what lies between."""
    counted = overview.get("sessions") or 0
    test_locks, removed = overview.get("test_locks") or 0, overview.get("removed") or 0
    stored = counted + test_locks + removed
    of_counted = ("running", "unlocked", "deserted", "wearers")
    table = _table(
        ["stored", "test locks", "removed", "counted", *of_counted],
        [[stored, test_locks, removed, counted, *(overview.get(k) for k in of_counted)]],
    )
    left_out = [f"{test_locks:,} test lock{'s' if test_locks != 1 else ''}"]
    if removed:
        left_out.append(f"{removed:,} the API no longer has")
    return table + (
        f"<p>{stored:,} stored, {counted:,} counted excluding "
        f"{escape(' and '.join(left_out))}: running, unlocked, deserted, wearers and every chart "
        "below count only these.</p>"
    )


def _value(value: str) -> str:
    """A config value in full, wrapped; a long one folded, its summary naming its length and a
    fingerprint so that two long values that start alike are told apart before opening them."""
    if len(value) <= LONG_VALUE:
        return f"<code>{escape(value)}</code>"
    mark = hashlib.sha256(value.encode()).hexdigest()[:6]
    return (
        f"<details><summary><code>{escape(value[:80])}…</code> ({len(value):,} characters, "
        f"#{mark})</summary><code>{escape(value)}</code></details>"
    )


def _config_table(rows: list[dict[str, Any]]) -> str:
    """Config values grouped by setting, the most used settings first, each with its most common
    values in full. A bar beside each count shows its size against the largest."""
    by_setting: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:  # the view's order: sessions desc
        by_setting[row["setting"]].append(row)
    if not by_setting:
        return "<p>no data yet</p>"
    settings = sorted(by_setting, key=lambda s: (-sum(r["sessions"] for r in by_setting[s]), s))
    widest = max(r["sessions"] for r in rows)
    body = []
    for setting in settings[:CONFIG_SETTINGS]:
        values = by_setting[setting]
        shown = values[:CONFIG_VALUES_PER_SETTING]
        cells = [
            (_value(r["value"]), r["sessions"], r["share_of_sessions"], "#2c7a7b") for r in shown
        ]
        rest = values[CONFIG_VALUES_PER_SETTING:]
        if rest:
            others = sum(r["sessions"] for r in rest)
            share = sum(r["share_of_sessions"] for r in rest)
            cells.append((f"<em>{len(rest):,} other values</em>", others, share, "#a0aec0"))
        for i, (value, sessions, share, color) in enumerate(cells):
            head = (
                f'<td class="setting" rowspan="{len(cells)}"><code>{escape(setting)}</code></td>'
                if i == 0
                else ""
            )
            bar = f'<span style="width:{120 * sessions / widest:.0f}px;background:{color}"></span>'
            body.append(
                f'<tr>{head}<td class="value">{value}</td><td>{sessions:,}</td>'
                f'<td>{share:.0%}</td><td class="bar">{bar}</td></tr>'
            )
    more = len(settings) - CONFIG_SETTINGS
    note = (
        f'<p class="note">{more:,} more settings are in <code>analytics.config_values</code>.</p>'
        if more > 0
        else ""
    )
    return (
        '<table><tr><th>setting</th><th class="value">value</th><th>sessions</th>'
        "<th>% of sessions</th><th></th></tr>"
        f"{''.join(body)}</table>{note}"
    )


def _wearers(rows: list[dict[str, Any]]) -> str:
    """Wearers by their number of sessions; the note says how many came back."""
    buckets = {r["sessions"]: r["wearers"] for r in rows}
    wearers = sum(buckets.values())
    returning = wearers - buckets.get(1, 0)
    note = (
        f"{returning:,} of {wearers:,} wearers ({returning / wearers:.0%}) are returning "
        "wearers: they started two sessions or more."
        if wearers
        else ""
    )
    chart = bar_chart(
        [
            (f"{n}{' or more' if n == 5 else ''} session{'s' if n > 1 else ''}", [buckets[n]])
            for n in sorted(buckets)
        ],
        (("wearers", "#b7791f"),),
        "wearers",
        "wearers by number of sessions",
    )
    return _figure("Sessions per wearer", chart, note)


def _this_run(figures: dict[str, Any]) -> str:
    """What this run did for the extension; nothing when it did not load it."""
    if not figures:
        return ""
    return (
        "<p>This run: "
        + escape(
            f"{figures['new']:,} new, {figures['updated']:,} re-read, "
            f"{figures['newly_removed']:,} newly removed, {figures['requests']:,} requests"
        )
        + "</p>"
    )


def _running(daily: list[dict[str, Any]]) -> str:
    running = [(r["day"], r["running_at_end_of_day"]) for r in daily]
    return _figure(
        "Sessions running over time",
        line_chart(
            [("running at end of day", COLORS["running"], running)],
            "sessions running",
            "sessions running at the end of each day",
        ),
    )


def _outcomes_and_durations(outcomes: list[dict[str, Any]], dimension: str, label: str) -> str:
    """How the sessions of each value of `dimension` ended, and how long the ended ones ran."""
    rows = [r for r in outcomes if r["dimension"] == dimension]
    ended = _figure(
        f"Outcomes by {label}",
        bar_chart(
            [(r["value"], [r["running"], r["unlocked"], r["deserted"]]) for r in rows],
            OUTCOME_SEGMENTS,
            "sessions",
            f"outcomes by {label}",
        ),
    )
    durations = [
        (r["value"], [r["median_duration_hours"] / 24, r["p90_duration_hours"] / 24])
        for r in rows
        if r["median_duration_hours"] is not None
    ]
    lasted = _figure(
        f"Duration of ended sessions by {label}",
        grouped_bar_chart(
            durations,
            DURATION_SERIES,
            "duration of ended sessions, days",
            f"duration by {label}",
        ),
    )
    return ended + lasted


def _co_extensions(rows: list[dict[str, Any]]) -> str:
    return _figure(
        "Other extensions on the same locks",
        bar_chart(
            [
                (
                    f"{r['other_name'] or r['other_extension']} ({r['share_of_sessions']:.0%})",
                    [r["sessions"]],
                )
                for r in rows
            ],
            (("sessions", "#4a5568"),),
            "your sessions whose lock also has it",
            "co-extensions",
        ),
    )


def _section(
    slug: str,
    views: dict[str, list[dict[str, Any]]],
    figures: dict[str, Any],
    today: date,
    last_load: datetime | None,
) -> str:
    """One extension's part of the page, in the order a reader scans it: its figures, this
    run, sessions over time, how they ended, what else the locks run, config, wearers, and
    what happened in the sessions (with action logs loaded)."""
    return "".join(
        [
            f'<section id="{escape(slug)}"><h2>{escape(slug)}</h2>',
            _figures_table(views["overview"][0] if views["overview"] else {}),
            _this_run(figures),
            _started_and_ended(views["daily"], today, last_load),
            _running(views["daily"]),
            _outcomes_and_durations(views["outcomes"], "mode", "mode"),
            _outcomes_and_durations(views["outcomes"], "lock_type", "lock type"),
            _co_extensions(views["co_extensions"]),
            f"<figure><figcaption>Config values by setting (the {CONFIG_VALUES_PER_SETTING} "
            f"most common of each)</figcaption>{_config_table(views['config_values'])}</figure>",
            _wearers(views["wearers"]),
            _actions(views["weekly_actions"], today, last_load),
            "</section>",
        ]
    )


def render(views: dict[str, Any], record: RunRecord, made_at: datetime) -> str:
    """The page's HTML, from the views (`destination.read_views`) and the run's record."""
    figures, requests = record.extensions, record.requests
    slugs = sorted(set(views["extensions"]) | set(figures))
    today = made_at.astimezone(UTC).date()
    sections = "".join(
        _section(
            slug,
            views["extensions"].get(slug, defaultdict(list)),
            figures.get(slug, {}),
            today,
            views["last_load"],
        )
        for slug in slugs
    )
    run = (
        f"requests: {requests.requests:,} ({requests.search_requests:,} search, "
        f"{requests.get_requests:,} get), {requests.retries:,} retries, "
        f"{requests.rate_limited:,} rate-limited"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Chaster sessions: {escape(', '.join(slugs))}</title><style>{STYLE}</style>"
        "</head><body><h1>Chaster sessions</h1>"
        f'<p class="meta">Made {_time(made_at)}. Data as of the last successful load: '
        f"{_time(views['last_load'])}. {escape(run)}. Test locks and sessions the API no "
        "longer has are left out of every chart. Days are UTC days.</p>"
        f"{sections}</body></html>\n"
    )


def write_html(path: Path, views: dict[str, Any], record: RunRecord) -> None:
    """Write the page of `views` and `record` to `path`."""
    page = render(views, record, datetime.now(UTC))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
