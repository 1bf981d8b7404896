"""Ceiling: our client's request rate vs a bare aiohttp loop, same server, same run.

The server (zero latency, 16-chunk streams) runs in its own process on uvloop. Both
clients run on the same event loop kind, at the same concurrency, for the same time,
alternating so that drift on the machine hits both. The bare loop does only the
streaming: post, read the body to EOF, nothing parsed or recorded.

Usage: .venv/bin/python perf/bench_ceiling.py [--concurrency 64] [--seconds 5] [--rounds 2]
Target: ratio >= 0.8.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import aiohttp

from budcluster.bench.runner import (
    BenchmarkConfig,
    fast_loop_factory,
    run_benchmark_async,
    run_on_fast_loop,
)
from budcluster.bench.specs import ProfileSpec, TokenLengthSpec
from budcluster.bench.testing_server import server_process

BODY = (
    b'{"model":"m","prompt":"hello world","max_tokens":16,"stream":true,'
    b'"stream_options":{"include_usage":true}}'
)


async def bare_loop(url: str, concurrency: int, seconds: float) -> float:
    """Requests/s of the simplest streaming loop aiohttp allows."""
    headers = {"Content-Type": "application/json"}
    done = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        stop = time.perf_counter() + seconds

        async def stream() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                async with session.post(url + "/v1/completions", data=BODY, headers=headers) as r:
                    async for _ in r.content.iter_any():
                        pass
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(stream() for _ in range(concurrency)))
        return done / (time.perf_counter() - start)


async def our_client(url: str, concurrency: int, seconds: float) -> tuple[float, int]:
    config = BenchmarkConfig(
        url=url,
        model="m",
        profile=ProfileSpec("concurrency", concurrency),
        duration_s=seconds,
        input_tokens=TokenLengthSpec("fixed", 2),
        output_tokens=TokenLengthSpec("fixed", 16),
    )
    result = await run_benchmark_async(config)
    level = result.levels[0]
    return level.request_throughput, level.requests_failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--nice", action="store_true", help="Raise the priority of this script and its server."
    )
    args = parser.parse_args()
    if args.nice:
        try:
            os.nice(-10)
            print("priority: nice -10 (server inherits it)")
        except OSError:
            print("priority: default (not permitted to raise it)")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    loop_kind = fast_loop_factory()[1]

    with server_process("--chunks", "16") as url:
        run_on_fast_loop(bare_loop(url, args.concurrency, 1.0))  # warm the server and the caches
        bare, ours = [], []
        for round_index in range(args.rounds):
            bare.append(run_on_fast_loop(bare_loop(url, args.concurrency, args.seconds)))
            rate, failed = run_on_fast_loop(our_client(url, args.concurrency, args.seconds))
            ours.append(rate)
            print(
                f"round {round_index + 1}: bare aiohttp {bare[-1]:8.0f} req/s   "
                f"budcluster client {rate:8.0f} req/s   failed {failed}"
            )
    ratios = sorted(o / b for o, b in zip(ours, bare, strict=True))
    print(f"per-round ratios: {', '.join(f'{r:.2f}' for r in ratios)}")
    bare_mean, ours_mean = sum(bare) / len(bare), sum(ours) / len(ours)
    ratio = ours_mean / bare_mean
    print(f"median per-round ratio: {ratios[len(ratios) // 2]:.2f}")
    print(f"event loop: {loop_kind}; concurrency {args.concurrency}; 16-chunk streams")
    print(f"bare aiohttp loop: {bare_mean:.0f} req/s")
    print(f"budcluster client: {ours_mean:.0f} req/s")
    print(f"ratio: {ratio:.2f} (target >= 0.80) -> {'PASS' if ratio >= 0.8 else 'FAIL'}")


if __name__ == "__main__":
    main()
