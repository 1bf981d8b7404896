"""The client-lag flag: a run whose client ran late against what it timed says so."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from budcluster.bench.metrics import summarize_level
from budcluster.bench.records import RequestRecord, RunInfo
from budcluster.bench.report import summary_dict, write_report
from budcluster.bench.report.lag import LAG_FRACTION, assess_client_lag, level_client_lag
from budcluster.bench.report.svg import Series, legend_rows, line_chart, nice_ticks
from budcluster.bench.report.writers import render_markdown
from budcluster.bench.result import BenchmarkResult


def test_small_lag_is_not_flagged() -> None:
    p50s = {"tpot_ms": 20.0, "ttft_ms": 80.0, "e2e_ms": 700.0}
    assert assess_client_lag(0.4, p50s) is None
    assert assess_client_lag(LAG_FRACTION * 20.0, p50s) is None  # at the limit: still fine


def test_large_lag_is_flagged_naming_the_figures_per_token_first() -> None:
    # The demo's run: schedule delay p90 26 ms, tokens bunched (TPOT p50 0.003 ms).
    lag = assess_client_lag(26.0, {"tpot_ms": 0.003, "ttft_ms": 12.0, "e2e_ms": 30.0})
    assert lag is not None
    assert lag.untrustworthy == ("ITL", "TPOT", "TTFT", "E2E")
    assert [value for _, _, value in lag.exceeded] == [0.003, 18.0, 12.0, 30.0]
    message = lag.message()
    assert "schedule delay p90 26 ms" in message
    assert "one token (TPOT p50) 0.003 ms for ITL" in message
    assert "the decode (E2E p50 - TTFT p50) 18 ms for TPOT" in message
    assert "E2E p50 30 ms for E2E" in message
    assert "per-token timings (ITL, TPOT) first, then TTFT, E2E" in message


def test_lag_against_single_gaps_only_flags_itl() -> None:
    # A fast model timed by a busy client: 0.7 ms of lag against 0.3 ms tokens spoils the
    # gaps, but TPOT averages a 9 ms decode and TTFT/E2E are long enough.
    lag = assess_client_lag(0.7, {"tpot_ms": 0.3, "ttft_ms": 3.0, "e2e_ms": 12.0})
    assert lag is not None
    assert lag.untrustworthy == ("ITL",)
    assert "stamped chunks late" in lag.message() and "bunches" not in lag.message()
    assert "TPOT" not in lag.message().split("untrustworthy:")[1]


def test_lag_against_the_per_token_figures_leaves_ttft_and_e2e_alone() -> None:
    lag = assess_client_lag(30.0, {"tpot_ms": 5.0, "ttft_ms": 140.0, "e2e_ms": 240.0})
    assert lag is not None
    assert lag.untrustworthy == ("ITL", "TPOT")
    assert "for TTFT" not in lag.message() and "for E2E" not in lag.message()


def test_unmeasured_figures_are_not_judged() -> None:
    # One-token answers have no TPOT (so no ITL span or decode); only E2E can be judged.
    assert assess_client_lag(5.0, {"tpot_ms": None, "ttft_ms": 40.0, "e2e_ms": 100.0}) is None
    level = {
        "schedule_delay_ms": {"p90": 5.0, "count": 0},
        "tpot_ms": {"p50": 0.001, "count": 10},
    }
    assert level_client_lag(level) is None


def _records(lag_s: float, bunched: bool) -> list[RequestRecord]:
    """64 requests of 32 tokens, 1 ms apart unless ``bunched`` (all read at once)."""
    records = []
    for i in range(64):
        scheduled = i * 0.05
        sent = scheduled + lag_s
        first = sent + 0.010
        chunks = [first + (0.0 if bunched else 0.001 * k) for k in range(32)]
        end = chunks[-1]
        records.append(RequestRecord(i, 0, scheduled, sent, first, end, 32, 32, "usage", chunks))
    return records


def _result(records: list[RequestRecord]) -> BenchmarkResult:
    overall = summarize_level(records, label="concurrency:4", target_concurrency=4)
    run = RunInfo(
        name="lag",
        url="http://127.0.0.1:8000",
        model="m",
        api="completions",
        profile="concurrency:4",
        tool_version="test",
        started_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        started_monotonic=0.0,
        status="completed",
    )
    return BenchmarkResult(run, [overall], overall, records)


@pytest.mark.parametrize(("lag_s", "bunched"), [(0.0001, False), (0.026, True)])
def test_summary_markdown_and_html_carry_the_flag_only_when_it_applies(
    tmp_path: Path, lag_s: float, bunched: bool
) -> None:
    result = _result(_records(lag_s, bunched))
    summary = summary_dict(result)
    markdown = render_markdown(summary)
    html = (write_report(result, tmp_path) / "report.html").read_text()
    if not bunched:
        assert summary["client_lag"] is None
        assert "Client lag" not in markdown and 'class="warning"' not in html
        return
    assert summary["client_lag"]["untrustworthy"][:2] == ["ITL", "TPOT"]
    assert summary["client_lag"]["schedule_delay_p90_ms"] == pytest.approx(26.0)
    assert "> **Warning.** Client lag: schedule delay p90 26 ms" in markdown
    assert 'class="warning"' in html and "Client lag: ITL, TPOT" in html
    assert html.count("client lag: untrustworthy") >= 2  # the TPOT and ITL cards


def test_top_tick_covers_the_data() -> None:
    for low, high in [(0, 21.2), (20.38, 22.66), (0.003, 80.9), (0, 1)]:
        ticks = nice_ticks(low, high)
        assert ticks[0] <= low and ticks[-1] >= high


def test_legend_sits_above_the_plot_and_wraps() -> None:
    names = [f"a long series name number {i}" for i in range(8)]
    rows = legend_rows(names)
    assert len(rows) > 1 and sorted(i for row in rows for i in row) == list(range(8))
    chart = line_chart([Series(n, [(0, 0), (1, i)]) for i, n in enumerate(names)], "t", "x", "y")
    legend_ys = [float(y) for y in re.findall(r'<rect x="[\d.]+" y="([\d.]+)" width="14"', chart)]
    plot_top = min(float(y) for y in re.findall(r'<circle cx="[\d.]+" cy="([\d.]+)"', chart))
    assert legend_ys and max(legend_ys) + 10 < plot_top
