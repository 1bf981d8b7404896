"""``report.html``: one offline page (inline CSS, inline SVG, no script) from a summary.

The layout follows what GuideLLM's report shows first: the run's identity in a header,
the key figures as cards, then tables and full-width charts. A client-lag warning
(``lag.py``) sits above the cards, and the cards it makes untrustworthy say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from budcluster.bench import metrics
from budcluster.bench.records import RequestRecord
from budcluster.bench.report import svg
from budcluster.bench.report.cost import cost_html
from budcluster.bench.report.lag import RULE, level_client_lag

STAT_KEYS = ("mean", "std", "min", "p50", "p90", "p95", "p99", "max")
LATENCY_TITLES = {
    "ttft_ms": "TTFT",
    "tpot_ms": "TPOT",
    "itl_ms": "ITL",
    "e2e_ms": "E2E latency",
    "schedule_delay_ms": "Schedule delay",
}
_LATENCY_NAMES = {"ttft_ms": "TTFT", "tpot_ms": "TPOT", "itl_ms": "ITL", "e2e_ms": "E2E"}

STYLE = """
:root { --ink: #1d2433; --muted: #5b6474; --line: #e3e7ee; --bg: #f4f6fa; --card: #fff;
  --accent: #1f77b4; --warn-bg: #fff4e0; --warn-line: #f0a020; --warn-ink: #6b4100; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink); line-height: 1.45;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
header.top { background: #1d2433; color: #fff; padding: 28px 0 24px; }
.wrap { max-width: 1180px; margin: 0 auto; padding: 0 28px; }
.eyebrow { text-transform: uppercase; letter-spacing: .08em; font-size: 12px; color: #9fb3d1; }
header h1 { margin: 4px 0 16px; font-size: 28px; font-weight: 650; }
.meta { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr));
  gap: 10px 28px; margin: 0; }
.meta div { min-width: 0; }
.meta dt { font-size: 12px; color: #9fb3d1; text-transform: uppercase; letter-spacing: .05em; }
.meta dd { margin: 2px 0 0; font-weight: 550; overflow-wrap: anywhere; }
main.wrap { padding-top: 26px; padding-bottom: 40px; }
.warning { background: var(--warn-bg); border: 1px solid var(--warn-line);
  border-left: 6px solid var(--warn-line); border-radius: 8px; padding: 14px 18px;
  margin: 0 0 22px; color: var(--warn-ink); }
.warning strong { display: block; font-size: 16px; margin-bottom: 4px; }
.warning p { margin: 4px 0 0; }
.cards { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 14px;
  margin-bottom: 26px; }
@media (max-width: 820px) { .cards { grid-template-columns: repeat(2, minmax(0, 1fr)); } }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 14px 16px; box-shadow: 0 1px 2px rgba(20, 30, 50, .04); }
.card .label { font-size: 13px; color: var(--muted); }
.card .value { font-size: 26px; font-weight: 650; margin: 2px 0; font-variant-numeric: tabular-nums; }
.card .unit { font-size: 14px; font-weight: 500; color: var(--muted); margin-left: 3px; }
.card .sub { font-size: 13px; color: var(--muted); font-variant-numeric: tabular-nums; }
.card.flagged { border-color: var(--warn-line); background: var(--warn-bg); }
.card .flag { display: inline-block; margin-top: 6px; font-size: 12px; font-weight: 600;
  color: var(--warn-ink); background: #ffe2a8; border-radius: 4px; padding: 1px 6px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 18px 20px; margin-bottom: 20px; }
section h2 { margin: 0 0 12px; font-size: 18px; }
section p.note { color: var(--muted); font-size: 13px; margin: 10px 0 0; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 7px 12px; text-align: right; border-bottom: 1px solid var(--line);
  white-space: nowrap; }
th { white-space: normal; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted);
  background: #f8f9fc; }
th:first-child, td:first-child, .levels td:nth-child(2), .levels th:nth-child(2) {
  text-align: left; }
tbody tr:nth-child(even) { background: #fafbfd; }
tr.flagged td:first-child::after { content: " \\26A0"; color: var(--warn-line); }
.scroll { overflow-x: auto; }
table.kv td { white-space: normal; text-align: left; }
table.kv td:first-child { color: var(--muted); width: 240px; }
.chart { padding: 14px 12px 6px; }
.chart svg { display: block; width: 100%; height: auto; }
code { font-size: 13px; background: #eef1f6; padding: 1px 4px; border-radius: 4px; }
footer { color: var(--muted); font-size: 13px; }
"""


def _number(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _endpoint(run: dict[str, Any]) -> str:
    via = (run.get("settings") or {}).get("reached_via")
    return f"{run['url']} ({run['api']})" + (f", reached {via}" if via else "")


def _header(summary: dict[str, Any]) -> str:
    run = summary["run"]
    facts = [
        ("Model", run["model"]),
        ("Endpoint", _endpoint(run)),
        ("Profile", run["profile"]),
        ("Started", _when(run["started_at"])),
        ("Measured over", f"{summary['duration_s']:.2f} s"),
        ("Status", run["status"]),
    ]
    if run.get("deployment_name"):
        facts.insert(2, ("Deployment", run["deployment_name"]))
    items = "".join(
        f"<div><dt>{escape(name)}</dt><dd>{escape(str(value))}</dd></div>" for name, value in facts
    )
    return (
        '<header class="top"><div class="wrap">'
        f'<div class="eyebrow">budcluster benchmark · {escape(run["tool_version"])}</div>'
        f'<h1>{escape(run["name"])}</h1><dl class="meta">{items}</dl></div></header>'
    )


def _warning(summary: dict[str, Any]) -> str:
    lag = level_client_lag(summary)
    if lag is None:
        return ""
    return (
        '<div class="warning" role="alert"><strong>&#9888; Client lag: '
        f"{escape(', '.join(lag.untrustworthy))} not trustworthy</strong>"
        f"<p>{escape(lag.message())}</p><p>Rule: {escape(RULE)}.</p></div>"
    )


def _card(label: str, value: str, unit: str, sub: str, flagged: bool = False) -> str:
    flag = '<div class="flag">&#9888; client lag: untrustworthy</div>' if flagged else ""
    return (
        f'<div class="card{" flagged" if flagged else ""}"><div class="label">{escape(label)}'
        f'</div><div class="value">{escape(value)}<span class="unit">{escape(unit)}</span>'
        f'</div><div class="sub">{escape(sub)}</div>{flag}</div>'
    )


def _cards(summary: dict[str, Any]) -> str:
    lag = level_client_lag(summary)
    doubtful = set(lag.untrustworthy) if lag else set()
    goodput = summary["goodput"]
    cards = [
        _card(
            "Requests completed",
            str(summary["requests_completed"]),
            "",
            f"{summary['requests_failed']} failed · {100 * summary['error_rate']:.2f}% errors",
        ),
        _card(
            "Request throughput",
            _number(summary["request_throughput"]),
            "req/s",
            "goodput: n/a (no SLO)" if goodput is None else f"goodput {goodput:.2f} req/s",
        ),
        _card(
            "Output tokens",
            _number(summary["output_token_throughput"], 1),
            "tok/s",
            f"total {_number(summary['total_token_throughput'], 1)} tok/s",
        ),
    ]
    for key, name in _LATENCY_NAMES.items():
        stats = summary[key]
        cards.append(
            _card(
                f"{name} p50",
                _number(stats["p50"], 3 if stats["p50"] < 10 else 1),
                "ms",
                f"p90 {_number(stats['p90'])} · p99 {_number(stats['p99'])} ms",
                flagged=name in doubtful,
            )
        )
    delay = summary["schedule_delay_ms"]
    cards.append(
        _card(
            "Schedule delay p90",
            _number(delay["p90"], 3 if delay["p90"] < 10 else 1),
            "ms",
            "the client's own lag",
            flagged=lag is not None,
        )
    )
    return f'<div class="cards">{"".join(cards)}</div>'


def _latency_table(summary: dict[str, Any]) -> str:
    head = "".join(f"<th>{s}</th>" for s in STAT_KEYS)
    rows = "".join(
        f"<tr><td>{escape(title)}</td>"
        + "".join(f"<td>{summary[key][s]:.2f}</td>" for s in STAT_KEYS)
        + f"<td>{summary[key]['count']}</td></tr>"
        for key, title in LATENCY_TITLES.items()
    )
    return (
        '<section><h2>Latency (ms)</h2><div class="scroll"><table>'
        f"<thead><tr><th>metric</th>{head}<th>count</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></div></section>"
    )


def _levels_table(levels: Sequence[dict[str, Any]]) -> str:
    if len(levels) <= 1:
        return ""
    heads = [
        "level",
        "label",
        "req/s",
        "output tok/s",
        "TTFT p50",
        "TTFT p99",
        "TPOT p50",
        "E2E p99",
        "schedule delay p90",
        "errors",
    ]
    rows = []
    for level in levels:
        flagged = level_client_lag(level) is not None
        cells = [
            str(level["level"]),
            escape(level["label"]),
            f"{level['request_throughput']:.2f}",
            f"{level['output_token_throughput']:.1f}",
            f"{level['ttft_ms']['p50']:.1f}",
            f"{level['ttft_ms']['p99']:.1f}",
            f"{level['tpot_ms']['p50']:.2f}",
            f"{level['e2e_ms']['p99']:.1f}",
            f"{level['schedule_delay_ms']['p90']:.2f}",
            str(level["requests_failed"]),
        ]
        rows.append(
            f"<tr{' class=flagged' if flagged else ''}>"
            + "".join(f"<td>{cell}</td>" for cell in cells)
            + "</tr>"
        )
    note = (
        '<p class="note">&#9888; marks a level whose client lag makes its timings '
        "untrustworthy (see the warning's rule).</p>"
        if any("flagged" in row for row in rows)
        else ""
    )
    return (
        '<section><h2>Load levels</h2><div class="scroll"><table class="levels"><thead><tr>'
        + "".join(f"<th>{escape(h)}</th>" for h in heads)
        + f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>{note}</section>"
    )


def _when(iso: str | None) -> str:
    """An ISO timestamp as "YYYY-MM-DD HH:MM:SS UTC" (the runner stamps UTC)."""
    return f"{iso.replace('T', ' ')[:19]} UTC" if iso else "n/a"


def _limits(settings: dict[str, Any]) -> str:
    requests, duration = settings.get("max_requests"), settings.get("duration_s")
    parts = [f"{requests} requests" if requests else "", f"{duration:g} s" if duration else ""]
    return " or ".join(p for p in parts if p) or "n/a"


def _details(summary: dict[str, Any]) -> str:
    run = summary["run"]
    settings = run["settings"]
    slos = settings.get("slos_ms") or {}
    facts = [
        ("Endpoint", _endpoint(run)),
        ("Model", run["model"]),
        ("Profile", run["profile"]),
        ("Started / finished", f"{_when(run['started_at'])} / {_when(run['finished_at'])}"),
        ("Input / output tokens",
         f"{settings.get('input_tokens', 'n/a')} / {settings.get('output_tokens', 'n/a')}"),
        ("Limit per level", _limits(settings)),
        ("Warm-up requests", settings.get("warmup_requests") or 0),
        ("Tokenizer", f"{settings.get('tokenizer')} ({settings.get('tokenizer_reason')})"),
        ("Output token counts from", ", ".join(summary["output_tokens_source"]) or "n/a"),
        ("Fields dropped after the server rejected them",
         ", ".join(settings.get("dropped_fields", [])) or "none"),
        ("SLOs (ms)", ", ".join(f"{k}={v:g}" for k, v in slos.items()) or "none"),
        ("Retries", summary["retries"]),
        ("Client event loop / processes",
         f"{settings.get('event_loop', 'n/a')} / {settings.get('processes', 1)}"),
        ("Errors by kind", ", ".join(f"{k}: {v}" for k, v in summary["errors_by_kind"].items())
         or "none"),
    ]  # fmt: skip
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td>{escape(str(value))}</td></tr>" for name, value in facts
    )
    return f'<section><h2>Run details</h2><table class="kv"><tbody>{rows}</tbody></table></section>'


def _time_series(records: Sequence[RequestRecord]) -> tuple[list[svg.Series], list[svg.Series]]:
    """Completions per second and mean TTFT over time, bucketed by when requests ended.

    About 60 buckets over the run (never narrower than 10 ms), so short and long runs
    both give a readable line.
    """
    done = [r for r in records if not r.warmup and metrics.is_success(r)]
    if not done:
        return [], []
    start = min(r.scheduled_s for r in done)
    span = max(r.end_s or start for r in done) - start
    width = max(span / 60, 0.01)
    buckets: dict[int, list[float]] = {}
    for r in done:
        assert r.end_s is not None
        buckets.setdefault(int((r.end_s - start) / width), []).append(metrics.ttft_ms(r) or 0.0)
    indexes = range(min(buckets), max(buckets) + 1)
    rate = [((i + 0.5) * width, len(buckets.get(i, [])) / width) for i in indexes]
    ttft = [((i + 0.5) * width, sum(b) / len(b)) for i in indexes if (b := buckets.get(i))]
    return [svg.Series("completed requests per second", rate)], [svg.Series("mean TTFT (ms)", ttft)]


def charts(summary: dict[str, Any], records: Sequence[RequestRecord]) -> list[str]:
    done = [r for r in records if not r.warmup and metrics.is_success(r)]
    ttfts = [v for r in done if (v := metrics.ttft_ms(r)) is not None]
    e2es = [v for r in done if (v := metrics.e2e_ms(r)) is not None]
    tpots = [v for r in done if (v := metrics.tpot_ms(r)) is not None]
    itls = [v for r in done for v in metrics.itls_ms(r)]
    rate_series, ttft_series = _time_series(records)
    # Left to right by throughput: a sweep runs its saturating level second.
    levels = sorted(summary["levels"], key=lambda level: level["request_throughput"])
    sweep = [
        svg.Series(f"{name} {stat}", [(lv["request_throughput"], lv[key][stat]) for lv in levels])
        for key, name in (("ttft_ms", "TTFT"), ("e2e_ms", "E2E"))
        for stat in ("p50", "p99")
    ]
    return [
        svg.histogram(ttfts, "TTFT distribution", "TTFT (ms)"),
        svg.histogram(itls, "ITL distribution (gaps between chunks)", "ITL (ms)"),
        svg.line_chart(
            [
                svg.Series("TTFT", svg.cdf_points(ttfts)),
                svg.Series("TPOT", svg.cdf_points(tpots)),
                svg.Series("E2E", svg.cdf_points(e2es)),
            ],
            "Latency CDF",
            "latency (ms)",
            "fraction of requests",
            y_min=0.0,
        ),
        svg.line_chart(
            rate_series, "Completions over the run", "seconds into run", "req/s", y_min=0.0
        ),
        svg.line_chart(ttft_series, "TTFT over the run", "seconds into run", "ms", y_min=0.0),
        svg.line_chart(
            sweep,
            "Throughput vs latency (one point per level)",
            "request throughput (req/s)",
            "latency (ms)",
            markers=True,
            y_min=0.0,
        ),
    ]


def render_html(summary: dict[str, Any], records: Sequence[RequestRecord]) -> str:
    run = summary["run"]
    plots = "".join(
        f'<section class="chart">{chart}</section>' for chart in charts(summary, records)
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Benchmark {escape(run["name"])}</title>
<style>{STYLE}</style></head><body>
{_header(summary)}
<main class="wrap">
{_warning(summary)}
{_cards(summary)}
{_latency_table(summary)}
{_levels_table(summary["levels"])}
{cost_html(summary)}
{plots}
{_details(summary)}
<footer><p>Metric names follow vLLM (<code>vllm bench serve</code>): TTFT = first token - sent;
E2E = end - sent; TPOT = (E2E - TTFT) / (output tokens - 1) per request; ITL is every gap
between streamed chunks (a chunk may carry several tokens); schedule delay = sent - when the
profile wanted the request sent, the client's own lag.</p></footer>
</main></body></html>
"""
