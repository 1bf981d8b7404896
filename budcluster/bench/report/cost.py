"""Cost per million output tokens in a run's summary, report.md and report.html.

The summary gains a ``cost`` block (the hourly price of the deployment's devices, line by
line, with the price table's source and date; None when the run had no price) and, on the
whole run and on every level, ``usd_per_million_output_tokens`` (None when unknown).
"""

from __future__ import annotations

from html import escape
from typing import Any

from budcluster.pricing import HourlyPrice, usd_per_million_output_tokens

COST_KEY = "usd_per_million_output_tokens"


def add_cost(summary: dict[str, Any], price: HourlyPrice | None) -> dict[str, Any]:
    """Put the price and the cost at each load level into ``summary`` (in place)."""
    usd_per_hour = price.usd_per_hour if price else None
    summary["cost"] = price.as_record() if price else None
    if price:
        # The words the reports print, kept with the numbers they describe.
        summary["cost"]["devices_text"] = "; ".join(line.text() for line in price.lines)
        summary["cost"]["source_text"] = price.source_text()
    for level in (summary, *summary["levels"]):
        level[COST_KEY] = usd_per_million_output_tokens(
            usd_per_hour, level["output_token_throughput"]
        )
    return summary


def _money(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"${value:,.2f}" if value >= 1 else f"${value:.4f}"


def cost_markdown(summary: dict[str, Any]) -> list[str]:
    cost = summary.get("cost")
    if not cost:
        return []
    lines = ["## Cost", ""]
    if cost["usd_per_hour"] is None:
        lines += [f"- Price unknown: {cost['missing']}", ""]
        return lines
    lines += [
        f"- Devices: ${cost['usd_per_hour']:.4f} per hour ({cost['devices_text']})",
        f"- Cost per million output tokens (whole run): {_money(summary.get(COST_KEY))}",
        f"- Prices: {cost['source_text']}",
        "",
    ]
    if len(summary["levels"]) > 1:
        lines += ["| level | output tok/s | $ per 1M output tokens |", "|---|---:|---:|"]
        lines += [
            f"| {level['label']} | {level['output_token_throughput']:.1f} | "
            f"{_money(level.get(COST_KEY))} |"
            for level in summary["levels"]
        ]
        lines.append("")
    return lines


def cost_html(summary: dict[str, Any]) -> str:
    """A section with the price and the cost per level; empty when the run had no price."""
    cost = summary.get("cost")
    if not cost:
        return ""
    if cost["usd_per_hour"] is None:
        return (
            "<section><h2>Cost per million output tokens</h2>"
            f'<p class="note">Price unknown: {escape(str(cost["missing"]))}</p></section>'
        )
    rows = "".join(
        f"<tr><td>{escape(level['label'] or 'whole run')}</td>"
        f"<td>{level['output_token_throughput']:.1f}</td>"
        f"<td>{escape(_money(level.get(COST_KEY)))}</td></tr>"
        for level in summary["levels"]
    )
    return (
        "<section><h2>Cost per million output tokens</h2>"
        f"<p>Whole run: <strong>{escape(_money(summary.get(COST_KEY)))}</strong> per million "
        f"output tokens; devices ${cost['usd_per_hour']:.4f} per hour: "
        f"{escape(cost['devices_text'])}.</p>"
        '<div class="scroll"><table class="levels"><thead><tr><th>level</th>'
        "<th>output tok/s</th><th>$ per 1M output tokens</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></div>"
        f'<p class="note">{escape(cost["source_text"])}. Cost = price per hour / '
        "(output tokens per second x 3600) x 1,000,000.</p></section>"
    )
