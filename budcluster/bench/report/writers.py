"""Write a run's report folder: summary.json, requests.csv, report.md, report.html."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from budcluster.bench import metrics
from budcluster.bench.records import RequestRecord
from budcluster.bench.report import svg
from budcluster.bench.report.summary import summary_dict
from budcluster.bench.runner import BenchmarkResult

CSV_COLUMNS = (
    "request_id",
    "level",
    "warmup",
    "scheduled_s",
    "sent_s",
    "first_token_s",
    "end_s",
    "schedule_delay_ms",
    "ttft_ms",
    "tpot_ms",
    "e2e_ms",
    "itl_mean_ms",
    "chunks",
    "prompt_tokens",
    "output_tokens",
    "output_tokens_source",
    "retries",
    "error_kind",
    "error",
)
_STAT_KEYS = ("mean", "std", "min", "p50", "p90", "p95", "p99", "max")
_LATENCY_TITLES = {
    "ttft_ms": "TTFT",
    "tpot_ms": "TPOT",
    "itl_ms": "ITL",
    "e2e_ms": "E2E latency",
    "schedule_delay_ms": "Schedule delay",
}


def report_dir_name(result: BenchmarkResult) -> str:
    stamp = result.run.started_at.strftime("%Y%m%dT%H%M%SZ")
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", result.run.name).strip("-") or "bench"
    return f"{stamp}_{name}"


def write_report(result: BenchmarkResult, reports_dir: Path) -> Path:
    """Create ``<reports_dir>/<UTC timestamp>_<name>/`` with the four files; return it."""
    folder = reports_dir / report_dir_name(result)
    folder.mkdir(parents=True, exist_ok=True)
    summary = summary_dict(result)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    write_requests_csv(result.records, folder / "requests.csv")
    (folder / "report.md").write_text(render_markdown(summary), encoding="utf-8")
    (folder / "report.html").write_text(render_html(summary, result.records), encoding="utf-8")
    return folder


def _number(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def request_row(record: RequestRecord) -> dict[str, Any]:
    gaps = metrics.itls_ms(record)
    return {
        "request_id": record.request_id,
        "level": record.level,
        "warmup": record.warmup,
        "scheduled_s": _number(record.scheduled_s, 6),
        "sent_s": _number(record.sent_s, 6),
        "first_token_s": _number(record.first_token_s, 6),
        "end_s": _number(record.end_s, 6),
        "schedule_delay_ms": _number(metrics.schedule_delay_ms(record)),
        "ttft_ms": _number(metrics.ttft_ms(record)),
        "tpot_ms": _number(metrics.tpot_ms(record)),
        "e2e_ms": _number(metrics.e2e_ms(record)),
        "itl_mean_ms": _number(sum(gaps) / len(gaps)) if gaps else "",
        "chunks": len(record.chunk_times_s),
        "prompt_tokens": "" if record.prompt_tokens is None else record.prompt_tokens,
        "output_tokens": "" if record.output_tokens is None else record.output_tokens,
        "output_tokens_source": record.output_tokens_source if record.output_tokens else "",
        "retries": record.retries,
        "error_kind": record.error_kind or "",
        "error": record.error or "",
    }


def write_requests_csv(records: Sequence[RequestRecord], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for record in sorted(records, key=lambda r: r.request_id):
            writer.writerow(request_row(record))


def _latency_table_md(level: dict[str, Any]) -> list[str]:
    lines = [
        "| metric (ms) | " + " | ".join(_STAT_KEYS) + " | count |",
        "|---|" + "---:|" * (len(_STAT_KEYS) + 1),
    ]
    for key, title in _LATENCY_TITLES.items():
        stats = level[key]
        cells = " | ".join(f"{stats[s]:.2f}" for s in _STAT_KEYS)
        lines.append(f"| {title} | {cells} | {stats['count']} |")
    return lines


def _throughput_lines(level: dict[str, Any]) -> list[str]:
    goodput = level["goodput"]
    return [
        f"- Requests: {level['requests_completed']} completed, {level['requests_failed']} failed "
        f"(error rate {100 * level['error_rate']:.2f}%), {level['retries']} retries",
        f"- Request throughput: {level['request_throughput']:.2f} req/s",
        f"- Output token throughput: {level['output_token_throughput']:.1f} tok/s",
        f"- Total token throughput: {level['total_token_throughput']:.1f} tok/s",
        f"- Goodput: {'n/a (no --slo)' if goodput is None else f'{goodput:.2f} req/s'}",
        f"- Measured over {level['duration_s']:.2f} s",
    ]


def render_markdown(summary: dict[str, Any]) -> str:
    run = summary["run"]
    settings = run["settings"]
    lines = [
        f"# Benchmark {run['name']}",
        "",
        f"- Endpoint: `{run['url']}` ({run['api']}), model `{run['model']}`",
        f"- Profile: {run['profile']}; started {run['started_at']}; status {run['status']}",
        f"- Tokenizer: {settings.get('tokenizer')} ({settings.get('tokenizer_reason')})",
        f"- Output token counts from: {', '.join(summary['output_tokens_source']) or 'n/a'}",
        f"- Fields dropped after the server rejected them: "
        f"{', '.join(settings.get('dropped_fields', [])) or 'none'}",
        "",
        "## Whole run",
        "",
        *_throughput_lines(summary),
        "",
        *_latency_table_md(summary),
        "",
    ]
    if summary["errors_by_kind"]:
        lines += [
            "Errors by kind: "
            + ", ".join(f"{k}: {v}" for k, v in summary["errors_by_kind"].items()),
            "",
        ]
    if len(summary["levels"]) > 1:
        lines += [
            "## Levels",
            "",
            "| level | label | req/s | output tok/s | TTFT p50 | TTFT p99 | TPOT p50 | "
            "E2E p99 | errors |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for level in summary["levels"]:
            lines.append(
                f"| {level['level']} | {level['label']} | {level['request_throughput']:.2f} | "
                f"{level['output_token_throughput']:.1f} | {level['ttft_ms']['p50']:.1f} | "
                f"{level['ttft_ms']['p99']:.1f} | {level['tpot_ms']['p50']:.2f} | "
                f"{level['e2e_ms']['p99']:.1f} | {level['requests_failed']} |"
            )
        lines.append("")
    lines += [
        "Metric names follow vLLM (`vllm bench serve`): TPOT is per request "
        "(E2E - TTFT) / (output tokens - 1); ITL is every gap between streamed chunks.",
        "",
    ]
    return "\n".join(lines)


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


def render_html(summary: dict[str, Any], records: Sequence[RequestRecord]) -> str:
    done = [r for r in records if not r.warmup and metrics.is_success(r)]
    ttfts = [v for r in done if (v := metrics.ttft_ms(r)) is not None]
    e2es = [v for r in done if (v := metrics.e2e_ms(r)) is not None]
    tpots = [v for r in done if (v := metrics.tpot_ms(r)) is not None]
    itls = [v for r in done for v in metrics.itls_ms(r)]
    rate_series, ttft_series = _time_series(records)
    levels = summary["levels"]
    sweep = [
        svg.Series(f"{stat} {name}", [(lv["request_throughput"], lv[key][stat]) for lv in levels])
        for key, name in (("ttft_ms", "TTFT"), ("e2e_ms", "E2E"))
        for stat in ("p50", "p99")
    ]
    charts = [
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
    markdown_like = render_markdown(summary)
    run = summary["run"]
    rows = "".join(
        f"<tr><td>{escape(title)}</td>"
        + "".join(f"<td>{summary[key][s]:.2f}</td>" for s in _STAT_KEYS)
        + f"<td>{summary[key]['count']}</td></tr>"
        for key, title in _LATENCY_TITLES.items()
    )
    facts = "".join(
        f"<li>{escape(line.removeprefix('- ').replace('`', ''))}</li>"
        for line in markdown_like.splitlines()
        if line.startswith("- ")
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Benchmark {escape(run["name"])}</title>
<style>
body {{ font-family: sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 12px; }}
.charts svg {{ border: 1px solid #ddd; background: #fff; }}
</style></head><body>
<h1>Benchmark {escape(run["name"])}</h1>
<ul>{facts}</ul>
<table><tr><th>metric (ms)</th>{"".join(f"<th>{s}</th>" for s in _STAT_KEYS)}<th>count</th></tr>{rows}</table>
<div class="charts">{"".join(charts)}</div>
<p>Metric names follow vLLM: TPOT = (E2E - TTFT) / (output tokens - 1) per request; ITL is
every gap between streamed chunks (a chunk may carry several tokens).</p>
</body></html>
"""
