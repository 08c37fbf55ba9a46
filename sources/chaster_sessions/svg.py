"""Charts as inline SVG text, for the HTML report: no script, no network, no plotting library.

Every chart has labelled axes with their unit, tick values, and dates on time axes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date
from html import escape

WIDTH = 880
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 34, 46
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """0 and evenly spaced round values (1, 2 or 5 x 10^k apart) up to at least `top`."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [step * i for i in range(math.ceil(top / step - 1e-9) + 1)]


def _number(value: float) -> str:
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def _legend(series: Sequence[tuple[str, str]], x: float, partial: str = "") -> str:
    """Swatches for `series` (name, colour); with `partial`, one more, lighter and dashed, that
    names what a lighter bar means."""
    parts = []
    for name, color in series:
        parts.append(
            f'<rect x="{x:.0f}" y="8" width="12" height="12" fill="{color}"/>'
            f'<text x="{x + 16:.0f}" y="18">{escape(name)}</text>'
        )
        x += 24 + 7 * len(name)
    if partial:
        parts.append(
            f'<rect x="{x:.0f}" y="8" width="12" height="12" fill="{SHADE}" stroke="#999" '
            f'stroke-dasharray="3 2"/><text x="{x + 16:.0f}" y="18">{escape(partial)}</text>'
        )
    return "".join(parts)


# a period that is not over yet: shaded behind (seen even when its bars are still at 0), and
# its bars lighter with a dashed outline
SHADE = "#ececec"
_LIGHTER = 'fill="{color}" fill-opacity="0.4" stroke="{color}" stroke-dasharray="3 2"'


def _frame(height: int, body: str, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}" {FONT}>'
        f"<title>{escape(title)}</title>{body}</svg>"
    )


def line_chart(
    series: Sequence[tuple[str, str, Sequence[tuple[date, float]]]],
    y_label: str,
    title: str,
    height: int = 280,
    x_label: str = "day (UTC)",
) -> str:
    """Lines over days: `series` is (name, colour, [(day, value), ...]). The x axis is dated."""
    days = sorted({d for _, _, points in series for d, _ in points})
    if not days:
        return _frame(60, '<text x="10" y="30">no data yet</text>', title)
    first, last = days[0], days[-1]
    span = max((last - first).days, 1)
    top = max((v for _, _, points in series for _, v in points), default=0) or 1
    ticks = nice_ticks(top)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, height - TOP - BOTTOM

    def x(day: date) -> float:
        return LEFT + plot_w * (day - first).days / span

    def y(value: float) -> float:
        return TOP + plot_h * (1 - value / ticks[-1])

    body = [_axes(ticks, y, y_label, height, x_label)]
    for i in range(6):  # dated ticks along the x axis; the outer labels stay inside
        day = date.fromordinal(first.toordinal() + round(span * i / 5))
        anchor = "start" if i == 0 else "end" if i == 5 else "middle"
        body.append(
            f'<line x1="{x(day):.1f}" y1="{height - BOTTOM}" x2="{x(day):.1f}" '
            f'y2="{height - BOTTOM + 5}" stroke="#555"/>'
            f'<text x="{x(day):.1f}" y="{height - BOTTOM + 18}" text-anchor="{anchor}">'
            f"{day.isoformat()}</text>"
        )
    for name, color, points in series:
        path = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in sorted(points))
        body.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="1" points="{path}">'
            f"<title>{escape(name)}</title></polyline>"
        )
    body.append(_legend([(n, c) for n, c, _ in series], LEFT))
    return _frame(height, "".join(body), title)


def _axes(
    ticks: list[float], y: Callable[[float], float], y_label: str, height: int, x_label: str
) -> str:
    """Gridlines and values of the y axis, both axis lines, and both axis labels."""
    parts = []
    for tick in ticks:
        ty = y(tick)
        parts.append(
            f'<line x1="{LEFT}" y1="{ty:.1f}" x2="{WIDTH - RIGHT}" y2="{ty:.1f}" stroke="#e3e3e3"/>'
            f'<text x="{LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end">{_number(tick)}</text>'
        )
    parts.append(
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{height - BOTTOM}" stroke="#555"/>'
        f'<line x1="{LEFT}" y1="{height - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{height - BOTTOM}" '
        f'stroke="#555"/>'
        f'<text transform="translate(16 {(TOP + height - BOTTOM) / 2:.0f}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2:.0f}" y="{height - 6}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
    )
    return "".join(parts)


def _value_axis(
    ticks: list[float], x: Callable[[float], float], left: int, height: int, x_label: str
) -> str:
    """The bottom value axis of a horizontal bar chart: gridlines, values, both axis lines and
    the label."""
    parts = [
        f'<line x1="{x(tick):.1f}" y1="{TOP}" x2="{x(tick):.1f}" y2="{height - BOTTOM}" '
        f'stroke="#e3e3e3"/><text x="{x(tick):.1f}" y="{height - BOTTOM + 16}" '
        f'text-anchor="middle">{_number(tick)}</text>'
        for tick in ticks
    ]
    parts.append(
        f'<line x1="{left}" y1="{height - BOTTOM}" x2="{WIDTH - RIGHT - 50}" '
        f'y2="{height - BOTTOM}" stroke="#555"/><line x1="{left}" y1="{TOP}" x2="{left}" '
        f'y2="{height - BOTTOM}" stroke="#555"/>'
        f'<text x="{(left + WIDTH - RIGHT) / 2:.0f}" y="{height - 8}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
    )
    return "".join(parts)


def bar_chart(
    rows: Sequence[tuple[str, Sequence[float]]],
    segments: Sequence[tuple[str, str]],
    x_label: str,
    title: str,
    label_width: int = 220,
) -> str:
    """Horizontal bars, one per row, stacked from `segments` (name, colour); each bar ends with
    its total. The value axis is at the bottom, labelled `x_label` (with its unit)."""
    if not rows:
        return _frame(60, '<text x="10" y="30">no data yet</text>', title)
    bar, gap = 18, 8
    height = TOP + len(rows) * (bar + gap) + BOTTOM
    left = label_width
    plot_w = WIDTH - left - RIGHT - 50
    ticks = nice_ticks(max(sum(values) for _, values in rows) or 1)

    def x(value: float) -> float:
        return left + plot_w * value / ticks[-1]

    body = [_value_axis(ticks, x, left, height, x_label)]
    for i, (label, values) in enumerate(rows):
        top = TOP + i * (bar + gap)
        shown = label if len(label) <= 42 else label[:41] + "…"
        body.append(
            f'<text x="{left - 8}" y="{top + 13}" text-anchor="end">{escape(shown)}'
            f"<title>{escape(label)}</title></text>"
        )
        start = 0.0
        for value, (name, color) in zip(values, segments, strict=True):
            if value:
                body.append(
                    f'<rect x="{x(start):.1f}" y="{top}" width="{x(start + value) - x(start):.1f}" '
                    f'height="{bar}" fill="{color}"><title>{escape(name)}: {_number(value)}'
                    f"</title></rect>"
                )
            start += value
        body.append(f'<text x="{x(start) + 6:.1f}" y="{top + 13}">{_number(start)}</text>')
    if len(segments) > 1:
        body.append(_legend(segments, left))
    return _frame(height, "".join(body), title)


def column_chart(
    periods: Sequence[tuple[str, Sequence[float]]],
    series: Sequence[tuple[str, str]],
    y_label: str,
    x_label: str,
    title: str,
    partial: str = "",
    height: int = 300,
) -> str:
    """Vertical bars over periods: one group per period (label, values), one bar per series
    (name, colour) side by side, so no series hides another. With `partial` (what the legend
    calls it), the last period is not over yet and its bars are drawn lighter."""
    if not periods:
        return _frame(60, '<text x="10" y="30">no data yet</text>', title)
    ticks = nice_ticks(max(max(values) for _, values in periods) or 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, height - TOP - BOTTOM
    slot = plot_w / len(periods)
    bar = max(slot * 0.8 / len(series), 1.0)

    def y(value: float) -> float:
        return TOP + plot_h * (1 - value / ticks[-1])

    body = [_axes(ticks, y, y_label, height, x_label)]
    longest = max(len(label) for label, _ in periods)
    every = math.ceil(len(periods) * (7 * longest + 16) / plot_w)  # labels that do not overlap
    for i, (label, values) in enumerate(periods):
        left = LEFT + i * slot + slot * 0.1
        lighter = partial and i == len(periods) - 1
        bars = []
        if lighter:
            bars.append(
                f'<rect x="{LEFT + i * slot:.1f}" y="{TOP}" width="{slot:.1f}" '
                f'height="{plot_h}" fill="{SHADE}"><title>{escape(label)}: {escape(partial)}'
                "</title></rect>"
            )
        for j, (value, (name, color)) in enumerate(zip(values, series, strict=True)):
            fill = _LIGHTER.format(color=color) if lighter else f'fill="{color}"'
            bars.append(
                f'<rect x="{left + j * bar:.1f}" y="{y(value):.1f}" width="{bar:.1f}" '
                f'height="{y(0) - y(value):.1f}" {fill}>'
                f"<title>{escape(label)}, {escape(name)}: {_number(value)}</title></rect>"
            )
        body.append(f'<g class="period">{"".join(bars)}</g>')
        if i % every == 0:
            middle = LEFT + (i + 0.5) * slot
            body.append(
                f'<line x1="{middle:.1f}" y1="{height - BOTTOM}" x2="{middle:.1f}" '
                f'y2="{height - BOTTOM + 5}" stroke="#555"/>'
                f'<text x="{middle:.1f}" y="{height - BOTTOM + 18}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    body.append(_legend(series, LEFT, partial))
    return _frame(height, "".join(body), title)


def grouped_bar_chart(
    groups: Sequence[tuple[str, Sequence[float]]],
    series: Sequence[tuple[str, str]],
    x_label: str,
    title: str,
    label_width: int = 220,
) -> str:
    """Horizontal bars in groups: one label per group (label, values), then one bar per series
    (name, colour) under each other, each ending with its value."""
    if not groups:
        return _frame(60, '<text x="10" y="30">no data yet</text>', title)
    bar, gap = 14, 12
    group_h = bar * len(series) + gap
    height = TOP + len(groups) * group_h + BOTTOM
    left = label_width
    plot_w = WIDTH - left - RIGHT - 50
    ticks = nice_ticks(max(max(values) for _, values in groups) or 1)

    def x(value: float) -> float:
        return left + plot_w * value / ticks[-1]

    body = [_value_axis(ticks, x, left, height, x_label)]
    for i, (label, values) in enumerate(groups):
        top = TOP + i * group_h
        bars = [
            f'<text x="{left - 8}" y="{top + bar * len(series) / 2 + 4:.0f}" text-anchor="end">'
            f"{escape(label)}</text>"
        ]
        for j, (value, (name, color)) in enumerate(zip(values, series, strict=True)):
            row = top + j * bar
            bars.append(
                f'<rect x="{left}" y="{row}" width="{x(value) - left:.1f}" height="{bar - 2}" '
                f'fill="{color}"><title>{escape(label)}, {escape(name)}: {_number(value)}'
                f'</title></rect><text x="{x(value) + 6:.1f}" y="{row + 11}">'
                f"{_number(value)}</text>"
            )
        body.append(f'<g class="group">{"".join(bars)}</g>')
    body.append(_legend(series, left))
    return _frame(height, "".join(body), title)
