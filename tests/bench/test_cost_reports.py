"""Cost per million output tokens in summary.json, report.md, report.html and the task table."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from budcluster.bench.metrics import summarize_level
from budcluster.bench.records import RequestRecord, RunInfo
from budcluster.bench.report import summary_dict, write_report
from budcluster.bench.result import BenchmarkResult
from budcluster.bench.testing_server import ServerBehaviour, StreamingServer
from budcluster.cli.app import app
from budcluster.pricing import DeviceLine, HourlyPrice
from tasks.benchmark import level_table

runner = CliRunner()


def _records(level: int, count: int, tokens: int, first_id: int) -> list[RequestRecord]:
    # Requests scheduled 0.1 s apart, each ending 1 s after it is sent: the level's window
    # runs from the first schedule to the last end, (count - 1) x 0.1 + 1 s.
    return [
        RequestRecord(
            request_id=first_id + i,
            level=level,
            scheduled_s=i * 0.1,
            sent_s=i * 0.1,
            first_token_s=i * 0.1 + 0.2,
            end_s=i * 0.1 + 1.0,
            prompt_tokens=10,
            output_tokens=tokens,
            chunk_times_s=[i * 0.1 + 0.2, i * 0.1 + 1.0],
        )
        for i in range(count)
    ]


def _result() -> BenchmarkResult:
    # Level 0: 11 requests x 100 tokens over 2.0 s = 550 tok/s.
    # Level 1: 11 requests x 400 tokens over 2.0 s = 2200 tok/s.
    low, high = _records(0, 11, 100, 0), _records(1, 11, 400, 100)
    levels = [
        summarize_level(low, level=0, label="concurrency:1"),
        summarize_level(high, level=1, label="concurrency:8"),
    ]
    run = RunInfo(
        name="priced",
        url="http://127.0.0.1:8000",
        model="m",
        api="completions",
        profile="sweep",
        tool_version="test",
        started_at=datetime(2026, 12, 6, tzinfo=UTC),
        started_monotonic=0.0,
        status="completed",
    )
    overall = summarize_level([*low, *high], level=0, label="")
    return BenchmarkResult(run=run, levels=levels, overall=overall, records=[*low, *high])


PRICE = HourlyPrice(
    usd_per_hour=6.88,
    lines=[
        DeviceLine(
            kind="cuda",
            product="NVIDIA H100 80GB HBM3",
            count=1,
            unit="GPU",
            usd_per_device_hour=6.88,
            priced_as="H100 80GB (SXM)",
        )
    ],
    devices=1,
    provenance={"currency": "USD", "as_of": "2026-11-09", "source": "s", "table": "prices.yaml"},
)


def test_each_level_carries_its_cost() -> None:
    summary = summary_dict(_result(), PRICE)
    low, high = summary["levels"]
    assert low["output_token_throughput"] == pytest.approx(550.0)
    assert high["output_token_throughput"] == pytest.approx(2200.0)
    # $6.88/h / (550 tok/s x 3600 s) x 1e6 = $3.4747 per million; 4x the rate, 1/4 the cost.
    assert low["usd_per_million_output_tokens"] == pytest.approx(6.88 / (550 * 3600) * 1e6)
    assert high["usd_per_million_output_tokens"] == pytest.approx(6.88 / (2200 * 3600) * 1e6)
    assert summary["usd_per_million_output_tokens"] == pytest.approx(
        6.88 / (summary["output_token_throughput"] * 3600) * 1e6
    )
    assert summary["cost"]["usd_per_hour"] == 6.88
    assert summary["cost"]["provenance"]["as_of"] == "2026-11-09"


def test_without_a_price_the_cost_is_null_not_zero() -> None:
    summary = summary_dict(_result())
    assert summary["cost"] is None
    assert summary["usd_per_million_output_tokens"] is None
    assert all(level["usd_per_million_output_tokens"] is None for level in summary["levels"])


def test_reports_show_the_cost_per_level(tmp_path: Path) -> None:
    folder = write_report(_result(), tmp_path, PRICE)
    stored = json.loads((folder / "summary.json").read_text())
    assert stored["levels"][0]["usd_per_million_output_tokens"] == pytest.approx(3.4747, abs=1e-4)
    markdown = (folder / "report.md").read_text()
    assert "## Cost" in markdown
    assert "- Devices: $6.8800 per hour (1 x GPU NVIDIA H100 80GB HBM3 at $6.8800/h" in markdown
    assert "| concurrency:1 | 550.0 | $3.47 |" in markdown
    assert "| concurrency:8 | 2200.0 | $0.8687 |" in markdown
    assert "list prices as of 2026-11-09" in markdown
    html = (folder / "report.html").read_text()
    assert "<h2>Cost per million output tokens</h2>" in html
    assert "<td>concurrency:8</td><td>2200.0</td><td>$0.8687</td>" in html
    assert [row["$ per 1M output tokens"] for row in level_table(stored)] == [3.4747, 0.8687]


def test_an_unknown_price_says_why(tmp_path: Path) -> None:
    unknown = PRICE.model_copy(update={"usd_per_hour": None, "missing": "L4 is a placeholder"})
    folder = write_report(_result(), tmp_path, unknown)
    assert "- Price unknown: L4 is a placeholder" in (folder / "report.md").read_text()
    assert "Price unknown: L4 is a placeholder" in (folder / "report.html").read_text()
    unpriced = write_report(_result(), tmp_path / "none")
    assert "## Cost" not in (unpriced / "report.md").read_text()


def test_cli_prices_a_run_and_lists_the_cost_over_time(
    tmp_path: Path, server_thread: Callable[..., StreamingServer]
) -> None:
    server = server_thread(ServerBehaviour(chunks=4))
    database = f"sqlite:///{tmp_path / 'store.db'}"
    base = ["bench", "run", "--url", server.url, "--model", "m", "--requests", "8"]
    for usd in ("3.6", "7.2"):
        result = runner.invoke(
            app,
            [
                *base,
                "--report-dir", str(tmp_path / "reports" / usd),
                "--deployment-name", "chat",
                "--usd-per-hour", usd,
                "--database-url", database,
                "--json",
            ],
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        summary = json.loads(result.stdout)
        expected = float(usd) / (summary["output_token_throughput"] * 3600) * 1e6
        assert summary["usd_per_million_output_tokens"] == pytest.approx(expected)

    listed = runner.invoke(
        app, ["bench", "costs", "--deployment", "chat", "--database-url", database, "--json"]
    )
    assert listed.exit_code == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [row["usd_per_hour"] for row in rows] == [3.6, 7.2]
    for row in rows:
        assert row["usd_per_million_output_tokens"] == pytest.approx(
            row["usd_per_hour"] / (row["output_tokens_per_s"] * 3600) * 1e6
        )
    table = runner.invoke(
        app, ["bench", "costs", "--deployment", "chat", "--database-url", database]
    )
    assert "| started (UTC) | run | cluster | level |" in table.stdout
    assert "| $3.6000 |" in table.stdout and "| $7.2000 |" in table.stdout
    none = runner.invoke(
        app, ["bench", "costs", "--deployment", "nope", "--database-url", database]
    )
    assert "no benchmark runs of deployment 'nope'" in none.stdout
