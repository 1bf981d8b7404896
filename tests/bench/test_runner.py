"""The runner: limits, warm-up, rate schedules, sweeps, multi-process load."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from budcluster.bench.runner import BenchmarkConfig, run_benchmark, run_benchmark_async
from budcluster.bench.specs import TokenLengthSpec, parse_profile
from budcluster.bench.testing_server import ServerBehaviour, StreamingServer
from budcluster.errors import ConfigurationError


def config(url: str, profile: str, **kw: object) -> BenchmarkConfig:
    return BenchmarkConfig(
        url=url,
        model="m",
        profile=parse_profile(profile),
        input_tokens=TokenLengthSpec("fixed", 4),
        output_tokens=TokenLengthSpec("fixed", 4),
        **kw,  # type: ignore[arg-type]
    )


async def test_request_limit_and_warmup() -> None:
    async with StreamingServer(ServerBehaviour(chunks=3)) as server:
        result = await run_benchmark_async(
            config(server.url, "concurrency:4", max_requests=20, warmup_requests=5)
        )
        assert server.stats.requests == 25
    measured = [r for r in result.records if not r.warmup]
    assert len(measured) == 20
    assert sum(r.warmup for r in result.records) == 5
    assert result.overall.requests_completed == 20
    assert len({r.request_id for r in result.records}) == 25
    assert result.run.status == "completed"
    assert result.run.settings["output_tokens_source"] == ["usage"]
    assert "fallback" in str(result.run.settings["tokenizer"])


async def test_concurrency_never_exceeds_the_target() -> None:
    async with StreamingServer(ServerBehaviour(chunks=2, ttft_s=0.01)) as server:
        result = await run_benchmark_async(config(server.url, "concurrency:3", max_requests=15))
    events = sorted(
        [(r.sent_s, 1) for r in result.records] + [(r.end_s, -1) for r in result.records]  # type: ignore[misc]
    )
    in_flight = peak = 0
    for _, step in events:
        in_flight += step
        peak = max(peak, in_flight)
    assert peak == 3


async def test_duration_limit_stops_scheduling() -> None:
    async with StreamingServer(ServerBehaviour(chunks=2, ttft_s=0.005)) as server:
        result = await run_benchmark_async(config(server.url, "concurrency:2", duration_s=0.3))
    last_scheduled = max(r.scheduled_s for r in result.records)
    first_scheduled = min(r.scheduled_s for r in result.records)
    assert last_scheduled - first_scheduled < 0.3
    assert result.overall.requests_completed > 10


async def test_constant_rate_sends_on_schedule() -> None:
    async with StreamingServer(ServerBehaviour(chunks=2)) as server:
        result = await run_benchmark_async(config(server.url, "rate:100", max_requests=30))
    scheduled = sorted(r.scheduled_s for r in result.records)
    gaps = [b - a for a, b in itertools.pairwise(scheduled)]
    assert gaps == pytest.approx([0.01] * 29, abs=1e-9)
    delays = result.overall.latencies_ms["schedule_delay_ms"]
    assert delays.count == 30
    assert delays.min >= 0.0


async def test_rate_with_max_concurrency_shows_queueing_as_schedule_delay() -> None:
    profile = parse_profile("rate:200")
    profile = type(profile)(profile.kind, profile.value, max_concurrency=1)
    async with StreamingServer(ServerBehaviour(chunks=2, ttft_s=0.02)) as server:
        cfg = config(server.url, "rate:200", max_requests=6)
        cfg.profile = profile
        result = await run_benchmark_async(cfg)
    # One slot, 20 ms per request, 5 ms between arrivals: the last waits ~75 ms.
    assert result.overall.latencies_ms["schedule_delay_ms"].max > 50


async def test_sweep_runs_sync_saturation_then_interpolated_rates() -> None:
    async with StreamingServer(ServerBehaviour(chunks=2, ttft_s=0.005)) as server:
        cfg = config(server.url, "sweep:2", max_requests=12)
        cfg.profile = type(cfg.profile)("sweep", 2, max_concurrency=4)
        result = await run_benchmark_async(cfg)
    labels = [level.label for level in result.levels]
    assert labels[0] == "synchronous"
    assert labels[1].startswith("throughput")
    assert len(result.levels) == 4
    low, high = result.levels[0].request_throughput, result.levels[1].request_throughput
    rates = [level.target_rate for level in result.levels[2:]]
    assert all(r is not None and min(low, high) < r < max(low, high) for r in rates)
    assert result.overall.level == -1
    assert result.overall.requests_completed == 48


async def test_failed_requests_are_counted() -> None:
    async with StreamingServer(ServerBehaviour(status=503)) as server:
        result = await run_benchmark_async(config(server.url, "concurrency:2", max_requests=4))
    assert result.overall.requests_failed == 4
    assert result.overall.errors_by_kind == {"http_5xx": 4}
    assert result.run.status == "failed"


def test_config_errors_name_the_option() -> None:
    with pytest.raises(ConfigurationError, match="--duration S or --requests N"):
        config("http://x", "concurrency:1").validate()
    with pytest.raises(ConfigurationError, match="--api"):
        config("http://x", "concurrency:1", api="embeddings", max_requests=1).validate()
    with pytest.raises(ConfigurationError, match="--processes"):
        config("http://x", "sweep", processes=2, max_requests=1).validate()


def test_multiprocess_load_generation(server_thread: Callable[..., StreamingServer]) -> None:
    server = server_thread(ServerBehaviour(chunks=2))
    result = run_benchmark(config(server.url, "concurrency:4", max_requests=21, processes=2))
    assert result.overall.requests_completed == 21
    assert len({r.request_id for r in result.records}) == 21
    assert result.run.settings["processes"] == 2
    # Both workers share the parent's clock origin: all times are near zero, not hours.
    assert max(r.end_s for r in result.records) < 60  # type: ignore[type-var]


def test_sharegpt_and_prompts_file(
    tmp_path: Path, server_thread: Callable[..., StreamingServer]
) -> None:
    server = server_thread(ServerBehaviour(chunks=2))
    sharegpt = tmp_path / "sharegpt.json"
    sharegpt.write_text(
        json.dumps(
            [
                {
                    "conversations": [
                        {"from": "human", "value": "one two three"},
                        {"from": "gpt", "value": "a b"},
                    ]
                },
                {"conversations": [{"from": "gpt", "value": "no human turn"}]},
                {"bad": 1},
            ]
        )
    )
    result = run_benchmark(config(server.url, "concurrency:1", max_requests=2, dataset=sharegpt))
    assert result.overall.requests_completed == 2
    assert all(r.prompt_tokens == 8 for r in result.records)  # server usage wins
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("first prompt\n\nsecond prompt\n")
    result = run_benchmark(
        config(server.url, "concurrency:1", max_requests=3, prompts_file=prompts)
    )
    assert result.overall.requests_completed == 3
