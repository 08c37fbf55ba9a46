"""The report page: one self-contained HTML file about each extension's sessions.

Written after a successful run (`--html PATH`, or `[chaster] html_report` / `CHASTER__HTML_REPORT`).
It reads only the `analytics` views (and dlt's load log for freshness), so it works wherever the
views exist. Charts are inline SVG (`svg.py`): the page needs no script and no network, so it
opens from a file, an e-mail attachment or a CI artifact.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any

import dlt

from .db import connection
from .report import per_slug
from .runner import LoadResult
from .svg import bar_chart, line_chart

COLORS = {"started": "#2b6cb0", "ended": "#c05621", "running": "#3182ce"}
OUTCOME_SEGMENTS = (("running", "#3182ce"), ("unlocked", "#38a169"), ("deserted", "#e53e3e"))
TOP_CONFIG_VALUES = 15

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 920px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-top: 2px solid #ddd; padding-top: 0.8em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
td, th { border: 1px solid #ddd; padding: 0.25em 0.7em; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1.2em 0; } figcaption { font-weight: 600; margin-bottom: 0.3em; }
.meta { color: #555; }
"""


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def _rows(pipeline: dlt.Pipeline, sql: str) -> list[dict[str, Any]]:
    with connection(pipeline) as client, client.execute_query(sql) as cursor:
        names = [d[0] for d in cursor.description]
        return [
            {n: _plain(v) for n, v in zip(names, row, strict=True)} for row in cursor.fetchall()
        ]


def read_views(pipeline: dlt.Pipeline) -> dict[str, Any]:
    """What the page shows, per extension, from the views; and the last successful load."""
    by_extension: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    queries = {
        "overview": "select * from analytics.overview",
        "daily": "select * from analytics.daily order by extension, day",
        "outcomes": "select * from analytics.outcomes order by extension, sessions desc, value",
        "co_extensions": "select * from analytics.co_extensions "
        "order by extension, sessions desc, other_extension",
        "config_values": "select * from analytics.config_values "
        "order by extension, sessions desc, setting, value",
        "wearers": "select extension, least(sessions, 5) as sessions, count(*) as wearers "
        "from analytics.wearers group by extension, least(sessions, 5) "
        "order by extension, sessions",
    }
    for view, sql in queries.items():
        for row in _rows(pipeline, sql):
            by_extension[row["extension"]][view].append(row)
    with connection(pipeline) as client:
        loads = client.make_qualified_table_name("_dlt_loads")
    # status 0: the load completed
    latest = f"select max(inserted_at) as at from {loads} where status = 0"  # noqa: S608
    last_load = _rows(pipeline, latest)
    return {"extensions": by_extension, "last_load": last_load[0]["at"] if last_load else None}


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


def _figure(caption: str, svg: str) -> str:
    return f"<figure><figcaption>{escape(caption)}</figcaption>{svg}</figure>"


def _section(slug: str, views: dict[str, list[dict[str, Any]]], figures: dict[str, Any]) -> str:
    parts = [f'<section id="{escape(slug)}"><h2>{escape(slug)}</h2>']
    overview = views["overview"][0] if views["overview"] else {}
    parts.append(
        _table(
            ["sessions", "running", "unlocked", "deserted", "wearers", "test locks", "removed"],
            [
                [
                    overview.get(k)
                    for k in (
                        "sessions",
                        "running",
                        "unlocked",
                        "deserted",
                        "wearers",
                        "test_locks",
                        "removed",
                    )
                ]
            ],
        )
    )
    if figures:
        parts.append(
            "<p>This run: "
            + escape(
                f"{figures['new']:,} new, {figures['updated']:,} re-read, "
                f"{figures['newly_removed']:,} newly removed, {figures['requests']:,} requests"
            )
            + "</p>"
        )
    daily = views["daily"]
    started = [(r["day"], r["started"]) for r in daily]
    ended = [(r["day"], r["unlocked"] + r["deserted"]) for r in daily]
    running = [(r["day"], r["running_at_end_of_day"]) for r in daily]
    parts.append(
        _figure(
            "Sessions started and ended per day",
            line_chart(
                [("started", COLORS["started"], started), ("ended", COLORS["ended"], ended)],
                "sessions per day",
                "sessions started and ended per day",
            ),
        )
    )
    parts.append(
        _figure(
            "Sessions running over time",
            line_chart(
                [("running at end of day", COLORS["running"], running)],
                "sessions running",
                "sessions running at the end of each day",
            ),
        )
    )
    for dimension, label in (("mode", "mode"), ("lock_type", "lock type")):
        rows = [r for r in views["outcomes"] if r["dimension"] == dimension]
        parts.append(
            _figure(
                f"Outcomes by {label}",
                bar_chart(
                    [(r["value"], [r["running"], r["unlocked"], r["deserted"]]) for r in rows],
                    OUTCOME_SEGMENTS,
                    "sessions",
                    f"outcomes by {label}",
                ),
            )
        )
        durations = []
        for r in rows:
            if r["median_duration_hours"] is not None:
                durations.append((f"{r['value']} median", [r["median_duration_hours"] / 24, 0]))
                durations.append((f"{r['value']} p90", [0, r["p90_duration_hours"] / 24]))
        parts.append(
            _figure(
                f"Duration of ended sessions by {label}",
                bar_chart(
                    durations,
                    (("median", "#805ad5"), ("90th percentile", "#d69e2e")),
                    "duration of ended sessions, days",
                    f"duration by {label}",
                ),
            )
        )
    parts.append(
        _figure(
            "Other extensions on the same locks",
            bar_chart(
                [
                    (
                        f"{r['other_name'] or r['other_extension']} ({r['share_of_sessions']:.0%})",
                        [r["sessions"]],
                    )
                    for r in views["co_extensions"]
                ],
                (("sessions", "#4a5568"),),
                "your sessions whose lock also has it",
                "co-extensions",
            ),
        )
    )
    top = views["config_values"][:TOP_CONFIG_VALUES]
    parts.append(
        _figure(
            f"Config values (the {TOP_CONFIG_VALUES} most common)",
            bar_chart(
                [(f"{r['setting']} = {r['value']}", [r["sessions"]]) for r in top],
                (("sessions", "#2c7a7b"),),
                "sessions with this value",
                "config values",
                label_width=330,
            ),
        )
    )
    buckets = {r["sessions"]: r["wearers"] for r in views["wearers"]}
    parts.append(
        _figure(
            "Returning wearers",
            bar_chart(
                [
                    (
                        f"{n}{' or more' if n == 5 else ''} session{'s' if n > 1 else ''}",
                        [buckets[n]],
                    )
                    for n in sorted(buckets)
                ],
                (("wearers", "#b7791f"),),
                "wearers",
                "wearers by number of sessions",
            ),
        )
    )
    parts.append("</section>")
    return "".join(parts)


def render(views: dict[str, Any], result: LoadResult, made_at: datetime) -> str:
    """The page's HTML."""
    stats = result.stats
    figures = per_slug(stats, result.before, result.after)
    slugs = sorted(set(views["extensions"]) | set(figures))
    sections = "".join(
        _section(slug, views["extensions"].get(slug, defaultdict(list)), figures.get(slug, {}))
        for slug in slugs
    )
    run = (
        f"requests: {stats.requests:,} ({stats.search_requests:,} search, "
        f"{stats.get_requests:,} get), {stats.retries:,} retries, "
        f"{stats.rate_limited:,} rate-limited"
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


def write_html(path: Path, result: LoadResult) -> None:
    """Read the views of `result.pipeline` and write the page to `path`."""
    page = render(read_views(result.pipeline), result, datetime.now(UTC))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
