"""Metric arithmetic on hand-computed request timelines."""

from __future__ import annotations

import math

import pytest

from budcluster.bench import metrics
from budcluster.bench.records import RequestRecord


def timeline(
    request_id: int,
    scheduled: float,
    sent: float,
    chunks: list[float],
    tokens: int,
    prompt_tokens: int = 10,
) -> RequestRecord:
    return RequestRecord(
        request_id=request_id,
        level=0,
        scheduled_s=scheduled,
        sent_s=sent,
        first_token_s=chunks[0],
        end_s=chunks[-1],
        prompt_tokens=prompt_tokens,
        output_tokens=tokens,
        chunk_times_s=chunks,
    )


def test_per_request_metrics_of_a_hand_made_timeline() -> None:
    # Sent at 1.000 s (scheduled 0.998), first chunk at 1.100, then chunks at 1.120 and
    # 1.160: TTFT 100 ms, E2E 160 ms; 4 tokens in 3 chunks (one two-token chunk).
    record = timeline(0, 0.998, 1.0, [1.1, 1.12, 1.16], tokens=4)
    assert metrics.ttft_ms(record) == pytest.approx(100.0)
    assert metrics.e2e_ms(record) == pytest.approx(160.0)
    # TPOT uses tokens: (160 - 100) / (4 - 1) = 20 ms.
    assert metrics.tpot_ms(record) == pytest.approx(20.0)
    # ITL uses chunk gaps: 20 ms and 40 ms.
    assert metrics.itls_ms(record) == pytest.approx([20.0, 40.0])
    assert metrics.schedule_delay_ms(record) == pytest.approx(2.0)


def test_tpot_is_undefined_for_one_token() -> None:
    record = timeline(0, 0.0, 0.0, [0.05], tokens=1)
    assert metrics.tpot_ms(record) is None
    assert metrics.itls_ms(record) == []


def test_percentiles_interpolate_linearly_like_numpy() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    # rank = (n-1) * q/100: p50 -> rank 2 -> 3.0; p90 -> rank 3.6 -> 4 + 0.6*6 = 7.6
    assert metrics.percentile(values, 50) == pytest.approx(3.0)
    assert metrics.percentile(values, 90) == pytest.approx(7.6)
    assert metrics.percentile(values, 99) == pytest.approx(4 + 0.96 * 6)
    assert metrics.percentile(values, 0) == 1.0
    assert metrics.percentile(values, 100) == 10.0


def test_latency_stats_mean_and_population_std() -> None:
    stats = metrics.latency_stats([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    assert stats.mean == pytest.approx(5.0)
    assert stats.std == pytest.approx(2.0)  # the textbook population-std example
    assert (stats.min, stats.max, stats.count) == (2.0, 9.0, 8)
    assert stats.p50 == pytest.approx(4.5)


def test_level_summary_of_three_requests_one_failed_one_warmup() -> None:
    a = timeline(0, 0.0, 0.0, [0.1, 0.2, 0.3], tokens=3, prompt_tokens=5)
    b = timeline(1, 0.5, 0.5, [0.55, 0.65, 0.75, 1.0], tokens=5, prompt_tokens=7)
    failed = RequestRecord(2, 0, scheduled_s=0.6, sent_s=0.6, end_s=0.7, error_kind="http_5xx")
    warm = timeline(3, -5.0, -5.0, [-4.9, -4.0], tokens=2)
    warm.warmup = True
    summary = metrics.summarize_level([a, b, failed, warm], label="concurrency:2")

    # Window: first scheduled (0.0) to the last end (1.0); warm-up left out.
    assert summary.duration_s == pytest.approx(1.0)
    assert summary.requests_completed == 2
    assert summary.requests_failed == 1
    assert summary.error_rate == pytest.approx(1 / 3)
    assert summary.errors_by_kind == {"http_5xx": 1}
    assert summary.request_throughput == pytest.approx(2.0)
    assert summary.output_token_throughput == pytest.approx(8.0)
    assert summary.total_token_throughput == pytest.approx(20.0)
    lat = summary.latencies_ms
    assert lat["ttft_ms"].mean == pytest.approx((100 + 50) / 2)
    # TPOT a: (300-100)/2 = 100; b: (500-50)/4 = 112.5
    assert lat["tpot_ms"].mean == pytest.approx((100 + 112.5) / 2)
    # ITL gaps: a: 100, 100; b: 100, 100, 250
    assert lat["itl_ms"].count == 5
    assert lat["itl_ms"].mean == pytest.approx(650 / 5)
    assert lat["itl_ms"].max == pytest.approx(250)
    assert lat["e2e_ms"].max == pytest.approx(500)
    # Schedule delay is counted for every measured request that was sent, failed ones too.
    assert lat["schedule_delay_ms"].count == 3
    assert summary.goodput is None


def test_goodput_counts_requests_meeting_every_slo() -> None:
    fast = timeline(0, 0.0, 0.0, [0.1, 0.12, 0.14], tokens=3)  # TTFT 100, TPOT 20
    slow_start = timeline(1, 0.0, 0.0, [0.3, 0.32, 0.34], tokens=3)  # TTFT 300
    slow_decode = timeline(2, 0.0, 0.0, [0.1, 0.2, 0.3], tokens=3)  # TPOT 100
    one_token = timeline(3, 0.0, 0.0, [0.05], tokens=1)  # no TPOT: cannot violate it
    records = [fast, slow_start, slow_decode, one_token]
    summary = metrics.summarize_level(records, duration_s=2.0, slos_ms={"ttft": 200, "tpot": 50})
    assert summary.goodput == pytest.approx(2 / 2.0)
    assert metrics.meets_slos(slow_start, {"e2e": 400})
    assert not metrics.meets_slos(slow_start, {"e2e": 300})


def test_empty_level_has_zero_rates_not_nan() -> None:
    summary = metrics.summarize_level([])
    assert summary.request_throughput == 0.0
    assert summary.latencies_ms["ttft_ms"].count == 0
    assert not math.isnan(summary.latencies_ms["ttft_ms"].mean)
