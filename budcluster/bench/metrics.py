"""Metric arithmetic over request records: pure functions, no I/O, no clock.

Names and definitions follow vLLM's ``vllm bench serve`` (see docs/benchmarks.md):

* TTFT = first_token_s - sent_s
* E2E = end_s - sent_s
* TPOT = (E2E - TTFT) / (output_tokens - 1), per request with more than one output token
* ITL = every gap between consecutive text-carrying chunks (a chunk may hold several tokens)
* schedule delay = sent_s - scheduled_s

Percentiles interpolate linearly between closest ranks (numpy's default, as vLLM uses);
std is the population standard deviation (numpy's default).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Sequence

from budcluster.bench.records import LatencyStats, LevelSummary, RequestRecord

LATENCY_KEYS = ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms", "schedule_delay_ms")


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of already sorted values, linear interpolation."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    rank = (len(sorted_values) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = rank - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction


def latency_stats(values: Iterable[float]) -> LatencyStats:
    """Mean, std, min, p50/p90/p95/p99 and max; all NaN-free zeros with count 0 when empty."""
    ordered = sorted(values)
    if not ordered:
        return LatencyStats(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0)
    count = len(ordered)
    mean = math.fsum(ordered) / count
    variance = math.fsum((v - mean) ** 2 for v in ordered) / count
    return LatencyStats(
        mean=mean,
        std=math.sqrt(variance),
        min=ordered[0],
        p50=percentile(ordered, 50),
        p90=percentile(ordered, 90),
        p95=percentile(ordered, 95),
        p99=percentile(ordered, 99),
        max=ordered[-1],
        count=count,
    )


def is_success(record: RequestRecord) -> bool:
    return record.error_kind is None and record.end_s is not None and record.sent_s is not None


def ttft_ms(record: RequestRecord) -> float | None:
    if record.first_token_s is None or record.sent_s is None:
        return None
    return (record.first_token_s - record.sent_s) * 1000


def e2e_ms(record: RequestRecord) -> float | None:
    if record.end_s is None or record.sent_s is None:
        return None
    return (record.end_s - record.sent_s) * 1000


def tpot_ms(record: RequestRecord) -> float | None:
    """(E2E - TTFT) / (N - 1); undefined for fewer than two output tokens."""
    first, e2e = ttft_ms(record), e2e_ms(record)
    tokens = record.output_tokens
    if first is None or e2e is None or tokens is None or tokens < 2:
        return None
    return (e2e - first) / (tokens - 1)


def itls_ms(record: RequestRecord) -> list[float]:
    times = record.chunk_times_s
    return [(later - earlier) * 1000 for earlier, later in itertools.pairwise(times)]


def schedule_delay_ms(record: RequestRecord) -> float | None:
    if record.sent_s is None:
        return None
    return (record.sent_s - record.scheduled_s) * 1000


def meets_slos(record: RequestRecord, slos_ms: dict[str, float]) -> bool:
    """True when every SLO given (ttft, tpot, e2e in ms) holds; a missing TPOT passes."""
    measured = {"ttft": ttft_ms(record), "tpot": tpot_ms(record), "e2e": e2e_ms(record)}
    for name, limit in slos_ms.items():
        value = measured[name]
        if value is None:
            if name == "tpot":
                continue  # one-token answers have no TPOT; they cannot violate it
            return False
        if value > limit:
            return False
    return True


def measured_window_s(records: Sequence[RequestRecord]) -> float:
    """From the first scheduled send to the last response end (or send, if none ended)."""
    if not records:
        return 0.0
    start = min(r.scheduled_s for r in records)
    ends = [r.end_s for r in records if r.end_s is not None]
    ends += [r.sent_s for r in records if r.sent_s is not None]
    return max(ends, default=start) - start


def summarize_level(
    records: Sequence[RequestRecord],
    *,
    level: int = 0,
    label: str = "",
    target_concurrency: int | None = None,
    target_rate: float | None = None,
    duration_s: float | None = None,
    slos_ms: dict[str, float] | None = None,
) -> LevelSummary:
    """Aggregate one load level. Warm-up records are left out; failures are counted."""
    measured = [r for r in records if not r.warmup]
    window = measured_window_s(measured) if duration_s is None else duration_s
    done = [r for r in measured if is_success(r)]
    failed = [r for r in measured if not is_success(r)]
    output_tokens = sum(r.output_tokens or 0 for r in done)
    prompt_tokens = sum(r.prompt_tokens or 0 for r in done)

    def rate(amount: float) -> float:
        return amount / window if window > 0 else 0.0

    latencies = {
        "ttft_ms": latency_stats(v for r in done if (v := ttft_ms(r)) is not None),
        "tpot_ms": latency_stats(v for r in done if (v := tpot_ms(r)) is not None),
        "itl_ms": latency_stats(v for r in done for v in itls_ms(r)),
        "e2e_ms": latency_stats(v for r in done if (v := e2e_ms(r)) is not None),
        "schedule_delay_ms": latency_stats(
            v for r in measured if (v := schedule_delay_ms(r)) is not None
        ),
    }
    goodput = None
    if slos_ms:
        goodput = rate(sum(1 for r in done if meets_slos(r, slos_ms)))
    errors = Counter(r.error_kind or "incomplete" for r in failed)
    return LevelSummary(
        level=level,
        label=label,
        target_concurrency=target_concurrency,
        target_rate=target_rate,
        duration_s=window,
        requests_completed=len(done),
        requests_failed=len(failed),
        request_throughput=rate(len(done)),
        output_token_throughput=rate(output_tokens),
        total_token_throughput=rate(output_tokens + prompt_tokens),
        goodput=goodput,
        error_rate=len(failed) / len(measured) if measured else 0.0,
        latencies_ms=latencies,
        errors_by_kind=dict(sorted(errors.items())),
        retries=sum(r.retries for r in measured),
    )
