"""A real benchmark result saved to the results store and read back, on SQLite and Postgres."""

from __future__ import annotations

import pytest

from budcluster.bench.runner import BenchmarkConfig, run_benchmark_async
from budcluster.bench.specs import TokenLengthSpec, parse_profile
from budcluster.bench.testing_server import ServerBehaviour, StreamingServer
from budcluster.store import Store
from budcluster.store.benchmark_results import save_result
from budcluster.store.benchmarks import list_runs_for_endpoint, load_run


async def test_run_round_trips_through_the_store(store: Store) -> None:
    behaviour = ServerBehaviour(chunks=3, ttft_s=0.002, status=200)
    async with StreamingServer(behaviour) as server:
        config = BenchmarkConfig(
            url=server.url,
            model="m",
            profile=parse_profile("sweep:1"),
            max_requests=6,
            warmup_requests=2,
            input_tokens=TokenLengthSpec("fixed", 3),
            output_tokens=TokenLengthSpec("fixed", 3),
            name="round-trip",
            deployment_name="dep-a",
        )
        config.profile = type(config.profile)("sweep", 1, max_concurrency=2)
        result = await run_benchmark_async(config)
    # One failed request too, so error fields make the trip.
    result.records[-1].error_kind, result.records[-1].error = "http_5xx", "HTTP 503: tab\there"

    run_id = save_result(result, store)

    with store.session() as session:
        stored = load_run(session, run_id)
        headers = list_runs_for_endpoint(session, server.url)
    assert [h.run_id for h in headers] == [run_id]
    assert stored.info.name == "round-trip"
    assert stored.info.deployment_name == "dep-a"
    assert stored.info.settings["tokenizer"] == result.run.settings["tokenizer"]
    assert [s.label for s in stored.summaries] == [s.label for s in result.levels]
    assert len(stored.summaries) == 3
    for saved, original in zip(stored.summaries, result.levels, strict=True):
        assert saved.requests_completed == original.requests_completed
        assert saved.latencies_ms["ttft_ms"].p99 == pytest.approx(
            original.latencies_ms["ttft_ms"].p99
        )
    by_id = {r.request_id: r for r in result.records}
    assert len(stored.requests) == len(result.records) == 20
    for back in stored.requests:
        original = by_id[back.request_id]
        assert back.level == original.level
        assert back.warmup == original.warmup
        assert back.sent_s == pytest.approx(original.sent_s)
        assert back.chunk_times_s == pytest.approx(original.chunk_times_s)
        assert back.output_tokens == original.output_tokens
        assert back.error == original.error
