"""Accuracy: measured TTFT/ITL against a server that injects known delays; schedule delay.

The server (own process) waits a known TTFT before the first chunk and a known delay
between chunks, and records what it actually produced (its sleeps overshoot a little).
Targets: at concurrency 64, mean measured TTFT and ITL within 1 ms of the truth; at a
constant 500 requests/s, p99 schedule delay under 5 ms.

Usage: .venv/bin/python perf/bench_accuracy.py [--ttft-ms 50] [--itl-ms 10] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import urllib.request

from budcluster.bench.runner import (
    BenchmarkConfig,
    fast_loop_factory,
    run_benchmark_async,
    run_on_fast_loop,
)
from budcluster.bench.specs import ProfileSpec, TokenLengthSpec
from budcluster.bench.testing_server import server_process


def server_stats(url: str, reset: bool = False) -> dict[str, float]:
    request = urllib.request.Request(url + "/stats", method="POST" if reset else "GET")
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


def config(url: str, profile: ProfileSpec, seconds: float) -> BenchmarkConfig:
    return BenchmarkConfig(
        url=url,
        model="m",
        profile=profile,
        duration_s=seconds,
        warmup_requests=64,
        input_tokens=TokenLengthSpec("fixed", 8),
        output_tokens=TokenLengthSpec("fixed", 16),
    )


async def idle_loop_lag(seconds: float) -> tuple[float, float]:
    """p99 and max lateness (ms) of 2 ms sleeps on an otherwise idle loop: the machine's
    own scheduling jitter, which no client can measure below."""
    lags = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        await asyncio.sleep(0.002)
        lags.append((time.perf_counter() - start - 0.002) * 1000)
    lags.sort()
    return lags[int(len(lags) * 0.99)], lags[-1]


def raise_priority() -> str:
    try:
        os.nice(-10)
        return "nice -10"
    except OSError:
        return "default priority (not permitted to raise it)"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--ttft-ms", type=float, default=50.0)
    parser.add_argument("--itl-ms", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument(
        "--nice", action="store_true", help="Raise the priority of this script and its server."
    )
    args = parser.parse_args()
    priority = raise_priority() if args.nice else "default priority"
    loop_kind = fast_loop_factory()[1]
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {priority}")
    jitter_p99, jitter_max = run_on_fast_loop(idle_loop_lag(2.0))
    print(
        f"idle event-loop jitter on this machine: p99 {jitter_p99:.3f} ms, max {jitter_max:.3f} ms"
    )
    delays = ("--ttft-ms", str(args.ttft_ms), "--itl-ms", str(args.itl_ms), "--chunks", "16")
    with server_process(*delays, uvloop=False) as url:
        server_stats(url, reset=True)
        result = run_on_fast_loop(
            run_benchmark_async(config(url, ProfileSpec("concurrency", 64), args.seconds))
        )
        truth = server_stats(url)
        level = result.levels[0]
        ttft, itl = level.latencies_ms["ttft_ms"].mean, level.latencies_ms["itl_ms"].mean
        print(f"client event loop: {loop_kind}; server: asyncio loop, separate process")
        print(
            f"concurrency 64: {level.requests_completed} requests, "
            f"{level.requests_failed} failed, {level.request_throughput:.0f} req/s"
        )
        print(
            f"  TTFT mean: measured {ttft:.3f} ms; server produced {truth['ttft_mean_ms']:.3f} ms "
            f"(nominal {args.ttft_ms:g}); error vs produced {ttft - truth['ttft_mean_ms']:+.3f} ms "
            f"-> {verdict(abs(ttft - truth['ttft_mean_ms']) <= 1)}; "
            f"vs nominal {ttft - args.ttft_ms:+.3f} ms -> {verdict(abs(ttft - args.ttft_ms) <= 1)}"
        )
        print(
            f"  ITL mean:  measured {itl:.3f} ms; server produced {truth['itl_mean_ms']:.3f} ms "
            f"(nominal {args.itl_ms:g}); error vs produced {itl - truth['itl_mean_ms']:+.3f} ms "
            f"-> {verdict(abs(itl - truth['itl_mean_ms']) <= 1)}; "
            f"vs nominal {itl - args.itl_ms:+.3f} ms -> {verdict(abs(itl - args.itl_ms) <= 1)}"
        )
        rate_profile = ProfileSpec("rate", args.rate)
        result = run_on_fast_loop(run_benchmark_async(config(url, rate_profile, args.seconds)))
        level = result.levels[0]
        delay = level.latencies_ms["schedule_delay_ms"]
        print(
            f"constant {args.rate:g} req/s: {level.requests_completed} requests, "
            f"{level.requests_failed} failed, achieved {level.request_throughput:.1f} req/s"
        )
        print(
            f"  schedule delay: mean {delay.mean:.3f} ms, p50 {delay.p50:.3f}, p99 {delay.p99:.3f}, "
            f"max {delay.max:.3f} ms -> p99 < 5 ms {verdict(delay.p99 < 5)}"
        )


if __name__ == "__main__":
    main()
