"""Write a run's report folder: summary.json, requests.csv, report.md, report.html."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from budcluster.bench import metrics
from budcluster.bench.records import RequestRecord
from budcluster.bench.report.cost import cost_markdown
from budcluster.bench.report.lag import RULE, level_client_lag
from budcluster.bench.report.page import LATENCY_TITLES, STAT_KEYS, render_html
from budcluster.bench.report.summary import summary_dict
from budcluster.bench.result import BenchmarkResult
from budcluster.pricing import HourlyPrice

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


def report_dir_name(result: BenchmarkResult) -> str:
    stamp = result.run.started_at.strftime("%Y%m%dT%H%M%SZ")
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", result.run.name).strip("-") or "bench"
    return f"{stamp}_{name}"


def write_report(
    result: BenchmarkResult, reports_dir: Path, price: HourlyPrice | None = None
) -> Path:
    """Create ``<reports_dir>/<UTC timestamp>_<name>/`` with the four files; return it.

    ``price``: what the deployment's devices cost per hour, for the cost per million
    output tokens at each level.
    """
    folder = reports_dir / report_dir_name(result)
    folder.mkdir(parents=True, exist_ok=True)
    summary = summary_dict(result, price)
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
        "| metric (ms) | " + " | ".join(STAT_KEYS) + " | count |",
        "|---|" + "---:|" * (len(STAT_KEYS) + 1),
    ]
    for key, title in LATENCY_TITLES.items():
        stats = level[key]
        cells = " | ".join(f"{stats[s]:.2f}" for s in STAT_KEYS)
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


def _lag_warning_md(summary: dict[str, Any]) -> list[str]:
    lag = level_client_lag(summary)
    if lag is None:
        return []
    return [f"> **Warning.** {lag.message()}", f"> (Rule: {RULE}.)", ""]


def render_markdown(summary: dict[str, Any]) -> str:
    run = summary["run"]
    settings = run["settings"]
    lines = [
        f"# Benchmark {run['name']}",
        "",
        f"- Endpoint: `{run['url']}` ({run['api']}), model `{run['model']}`"
        + (f", reached {settings['reached_via']}" if settings.get("reached_via") else ""),
        f"- Profile: {run['profile']}; started {run['started_at']}; status {run['status']}",
        f"- Tokenizer: {settings.get('tokenizer')} ({settings.get('tokenizer_reason')})",
        f"- Output token counts from: {', '.join(summary['output_tokens_source']) or 'n/a'}",
        f"- Fields dropped after the server rejected them: "
        f"{', '.join(settings.get('dropped_fields', [])) or 'none'}",
        "",
        *_lag_warning_md(summary),
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
    lines += cost_markdown(summary)
    lines += [
        "Metric names follow vLLM (`vllm bench serve`): TPOT is per request "
        "(E2E - TTFT) / (output tokens - 1); ITL is every gap between streamed chunks.",
        "",
    ]
    return "\n".join(lines)
