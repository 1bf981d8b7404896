"""Minimal inline-SVG charts: histogram, line/step chart, scatter with lines.

Self-contained on purpose: the report must open offline, so there is no plotting library
and no JavaScript; every chart is a string of SVG elements. Charts are drawn on a wide
viewBox and scale to the page's width; legends sit in a row between the title and the
plot, so they never cover a line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 960, 340
LEFT, RIGHT, BOTTOM = 72, 24, 48
TITLE_Y = 22
LEGEND_ROW = 20
"""Height of one legend row; rows start below the title."""
FONT_SIZE = 13
CHAR_WIDTH = 7.2
"""Rough advance of one character at FONT_SIZE in a sans-serif font (to lay out legends)."""
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")
AXIS, GRID, MUTED = "#8a94a6", "#e6e9ef", "#5b6474"


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    points: Sequence[tuple[float, float]]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values from at or below ``low`` to at or above ``high``."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0]
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw), default=raw)
    first = math.floor(low / step)
    last = math.ceil(high / step - 1e-9)  # so the top tick is never below the data
    return [round(i * step, 10) for i in range(first, last + 1)]


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 10000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def legend_rows(names: Sequence[str], width: float = WIDTH - LEFT - RIGHT) -> list[list[int]]:
    """Indexes of ``names`` per legend row: entries side by side, wrapped at ``width``."""
    rows: list[list[int]] = [[]]
    used = 0.0
    for index, name in enumerate(names):
        entry = _legend_entry_width(name)
        if rows[-1] and used + entry > width:
            rows.append([])
            used = 0.0
        rows[-1].append(index)
        used += entry
    return rows if rows[0] else []


def _legend_entry_width(name: str) -> float:
    return 18 + len(name) * CHAR_WIDTH + 24  # swatch, text, gap to the next entry


class _Frame:
    def __init__(
        self, x_range: tuple[float, float], y_range: tuple[float, float], top: float
    ) -> None:
        self.top = top
        self.xticks = nice_ticks(*x_range)
        self.yticks = nice_ticks(*y_range)
        self.x0, self.x1 = self.xticks[0], self.xticks[-1]
        self.y0, self.y1 = self.yticks[0], self.yticks[-1]
        if self.x1 == self.x0:
            self.x1 = self.x0 + 1
        if self.y1 == self.y0:
            self.y1 = self.y0 + 1

    def x(self, value: float) -> float:
        return LEFT + (value - self.x0) / (self.x1 - self.x0) * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        return (
            HEIGHT - BOTTOM - (value - self.y0) / (self.y1 - self.y0) * (HEIGHT - self.top - BOTTOM)
        )

    def axes(self, title: str, x_label: str, y_label: str) -> list[str]:
        bottom = HEIGHT - BOTTOM
        middle_y = (self.top + bottom) / 2
        parts = [
            f'<text x="{LEFT}" y="{TITLE_Y}" font-size="15" font-weight="600" '
            f'fill="#1d2433">{escape(title)}</text>',
        ]
        for tick in self.yticks:
            y = self.y(tick)
            parts.append(
                f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
                f'stroke="{GRID}"/><text x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end" '
                f'fill="{MUTED}">{_fmt(tick)}</text>'
            )
        for tick in self.xticks:
            x = self.x(tick)
            parts.append(
                f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 5}" '
                f'stroke="{AXIS}"/><text x="{x:.1f}" y="{bottom + 19}" text-anchor="middle" '
                f'fill="{MUTED}">{_fmt(tick)}</text>'
            )
        parts += [
            f'<line x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" stroke="{AXIS}"/>',
            f'<line x1="{LEFT}" y1="{self.top}" x2="{LEFT}" y2="{bottom}" stroke="{AXIS}"/>',
            f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 8}" text-anchor="middle" '
            f'fill="#3a4252">{escape(x_label)}</text>',
            f'<text x="18" y="{middle_y:.1f}" text-anchor="middle" fill="#3a4252" '
            f'transform="rotate(-90 18 {middle_y:.1f})">{escape(y_label)}</text>',
        ]
        return parts


def _plot_top(legend_row_count: int) -> float:
    """Where the plot area starts: below the title and the legend rows."""
    return TITLE_Y + 26 + LEGEND_ROW * max(legend_row_count, 1)


def _svg(parts: list[str], label: str) -> str:
    body = "".join(parts)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(label)}" '
        f'font-family="system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, '
        f'sans-serif" font-size="{FONT_SIZE}">{body}</svg>'
    )


def _empty(title: str) -> str:
    return _svg(
        [
            f'<text x="{LEFT}" y="{TITLE_Y}" font-size="15" font-weight="600" '
            f'fill="#1d2433">{escape(title)}</text>',
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="{MUTED}">'
            "no data</text>",
        ],
        title,
    )


def histogram(values: Sequence[float], title: str, x_label: str, bins: int = 40) -> str:
    """Bar histogram; the range is clipped at the 99.5th percentile so one outlier
    does not squeeze every other bar into the first bin (the clip is stated)."""
    finite = sorted(v for v in values if math.isfinite(v))
    if not finite:
        return _empty(title)
    low = finite[0]
    high = finite[min(len(finite) - 1, int(len(finite) * 0.995))]
    clipped = len(finite) - sum(1 for v in finite if v <= high)
    if high <= low:
        high = low + max(abs(low) * 0.01, 1e-6)
    width = (high - low) / bins
    counts = [0] * bins
    for value in finite:
        if value > high:
            continue
        counts[min(int((value - low) / width), bins - 1)] += 1
    frame = _Frame((low, high), (0, max(counts)), _plot_top(1))
    parts = frame.axes(title, x_label, "requests" if "ITL" not in title else "gaps")
    for i, count in enumerate(counts):
        if count == 0:
            continue
        x_left, x_right = frame.x(low + i * width), frame.x(low + (i + 1) * width)
        y = frame.y(count)
        parts.append(
            f'<rect x="{x_left:.1f}" y="{y:.1f}" width="{max(x_right - x_left - 1, 1):.1f}" '
            f'height="{frame.y(0) - y:.1f}" fill="{PALETTE[0]}"/>'
        )
    note = f"{len(finite)} values"
    if clipped:
        note += f"; {clipped} above {_fmt(high)} not shown"
    parts.append(
        f'<text x="{WIDTH - RIGHT}" y="{TITLE_Y}" text-anchor="end" fill="{MUTED}">'
        f"{escape(note)}</text>"
    )
    return _svg(parts, title)


def _legend(series: Sequence[Series]) -> tuple[list[str], int]:
    """The legend's SVG elements and how many rows it takes."""
    rows = legend_rows([one.name for one in series])
    parts = []
    for row_number, row in enumerate(rows):
        y = TITLE_Y + 14 + LEGEND_ROW * row_number
        x = float(LEFT)
        for index in row:
            color = PALETTE[index % len(PALETTE)]
            name = series[index].name
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 2}" width="14" height="4" rx="2" fill="{color}"/>'
                f'<text x="{x + 20:.1f}" y="{y + 8}" fill="#3a4252">{escape(name)}</text>'
            )
            x += _legend_entry_width(name)
    return parts, len(rows)


def line_chart(
    series: Sequence[Series],
    title: str,
    x_label: str,
    y_label: str,
    markers: bool = False,
    y_min: float | None = None,
) -> str:
    """Lines (optionally with point markers) for each series, with a legend row."""
    points = [p for s in series for p in s.points if math.isfinite(p[0]) and math.isfinite(p[1])]
    if not points:
        return _empty(title)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    low_y = min(ys) if y_min is None else y_min
    low_x, high_x = min(xs), max(xs)
    if high_x == low_x:  # one x value (a one-level run): centre it
        pad = max(abs(low_x) * 0.1, 0.5)
        low_x, high_x = low_x - pad, high_x + pad
    legend, rows = _legend(series)
    frame = _Frame((low_x, high_x), (low_y, max(ys)), _plot_top(rows))
    parts = frame.axes(title, x_label, y_label) + legend
    for index, one in enumerate(series):
        color = PALETTE[index % len(PALETTE)]
        coords = " ".join(f"{frame.x(x):.1f},{frame.y(y):.1f}" for x, y in one.points)
        if coords:
            parts.append(
                f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2" '
                'stroke-linejoin="round"/>'
            )
        if markers or len(one.points) <= 2:
            parts += [
                f'<circle cx="{frame.x(x):.1f}" cy="{frame.y(y):.1f}" r="4" fill="{color}" '
                'stroke="#fff" stroke-width="1.5"/>'
                for x, y in one.points
            ]
    return _svg(parts, title)


def cdf_points(values: Sequence[float], max_points: int = 400) -> list[tuple[float, float]]:
    """(value, fraction <= value) pairs, thinned to at most ``max_points``."""
    ordered = sorted(values)
    if not ordered:
        return []
    step = max(1, len(ordered) // max_points)
    points = [(ordered[i], (i + 1) / len(ordered)) for i in range(0, len(ordered), step)]
    if points[-1][1] != 1.0:
        points.append((ordered[-1], 1.0))
    return points
