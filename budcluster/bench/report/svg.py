"""Minimal inline-SVG charts: histogram, line/step chart, scatter with lines.

Self-contained on purpose: the report must open offline, so there is no plotting library
and no JavaScript; every chart is a string of SVG elements.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 640, 320
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 28, 44
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    points: Sequence[tuple[float, float]]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0]
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw), default=raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 0.5:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 10000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


class _Frame:
    def __init__(self, x_range: tuple[float, float], y_range: tuple[float, float]) -> None:
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
        return HEIGHT - BOTTOM - (value - self.y0) / (self.y1 - self.y0) * (HEIGHT - TOP - BOTTOM)

    def axes(self, title: str, x_label: str, y_label: str) -> list[str]:
        parts = [
            f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-weight="bold">'
            f"{escape(title)}</text>",
            f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" '
            f'y2="{HEIGHT - BOTTOM}" stroke="#333"/>',
            f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="#333"/>',
            f'<text x="{WIDTH / 2}" y="{HEIGHT - 6}" text-anchor="middle">{escape(x_label)}</text>',
            f'<text x="14" y="{HEIGHT / 2}" text-anchor="middle" '
            f'transform="rotate(-90 14 {HEIGHT / 2})">{escape(y_label)}</text>',
        ]
        for tick in self.xticks:
            x = self.x(tick)
            parts.append(
                f'<line x1="{x:.1f}" y1="{HEIGHT - BOTTOM}" x2="{x:.1f}" '
                f'y2="{HEIGHT - BOTTOM + 4}" stroke="#333"/>'
                f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
                f"{_fmt(tick)}</text>"
            )
        for tick in self.yticks:
            y = self.y(tick)
            parts.append(
                f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
                f'stroke="#eee"/><text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                f"{_fmt(tick)}</text>"
            )
        return parts


def _svg(parts: list[str], label: str) -> str:
    body = "".join(parts)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(label)}" '
        f'font-family="sans-serif" font-size="11">{body}</svg>'
    )


def _empty(title: str) -> str:
    return _svg(
        [
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
            f"{escape(title)}: no data</text>"
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
    frame = _Frame((low, high), (0, max(counts)))
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
    if clipped:
        parts.append(
            f'<text x="{WIDTH - RIGHT}" y="{TOP + 10}" text-anchor="end" fill="#666">'
            f"{clipped} values above {_fmt(high)} not shown</text>"
        )
    return _svg(parts, title)


def line_chart(
    series: Sequence[Series],
    title: str,
    x_label: str,
    y_label: str,
    markers: bool = False,
    y_min: float | None = None,
) -> str:
    """Lines (optionally with point markers) for each series, with a legend."""
    points = [p for s in series for p in s.points if math.isfinite(p[0]) and math.isfinite(p[1])]
    if not points:
        return _empty(title)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    low_y = min(ys) if y_min is None else y_min
    frame = _Frame((min(xs), max(xs)), (low_y, max(ys)))
    parts = frame.axes(title, x_label, y_label)
    for index, one in enumerate(series):
        color = PALETTE[index % len(PALETTE)]
        coords = " ".join(f"{frame.x(x):.1f},{frame.y(y):.1f}" for x, y in one.points)
        if coords:
            parts.append(
                f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="1.5"/>'
            )
        if markers or len(one.points) <= 2:
            parts += [
                f'<circle cx="{frame.x(x):.1f}" cy="{frame.y(y):.1f}" r="3" fill="{color}"/>'
                for x, y in one.points
            ]
        legend_y = TOP + 4 + 14 * index
        legend_x = WIDTH - RIGHT - 190  # top right: lines mostly start bottom left
        parts.append(
            f'<rect x="{legend_x}" y="{legend_y}" width="10" height="10" fill="{color}"/>'
            f'<text x="{legend_x + 14}" y="{legend_y + 9}">{escape(one.name)}</text>'
        )
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
