"""Benchmark runs: the round trip of the engine's records, atomic saves, listings."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from budcluster.bench.records import LatencyStats, LevelSummary, RequestRecord, RunInfo
from budcluster.store import Conflict, NotFound, Store
from budcluster.store import benchmarks as bench
from budcluster.store import deployments as dep
from budcluster.store.clusters import register_cluster
from budcluster.store.models import BenchmarkRequest, BenchmarkRun, BenchmarkSummary
from budcluster.store.models_catalog import ModelFile, save_model
from budcluster.store.validation import InvalidValue

STARTED = datetime(2026, 6, 1, 9, 30, 0, 250000, tzinfo=UTC)


def _run(name: str = "sweep-1", started: datetime = STARTED) -> RunInfo:
    return RunInfo(
        name=name,
        url="http://10.0.0.5:8000/v1",
        model="Qwen/Qwen2.5-0.5B-Instruct",
        api="openai-chat",
        profile="concurrency:1,4,16",
        tool_version="budcluster-bench 0.1.0",
        started_at=started,
        started_monotonic=81234.567891234,
        finished_at=started + timedelta(minutes=3),
        status="completed",
        deployment_name="qwen-small",
        settings={"prompt_tokens": {"mean": 512}, "slo": {"ttft_ms": 500}, "seed": 7},
    )


def _stats(scale: float) -> LatencyStats:
    return LatencyStats(
        mean=10.5 * scale,
        std=1.25,
        min=8.0,
        p50=10.0 * scale,
        p90=12.0,
        p95=13.0,
        p99=15.5,
        max=20.0,
        count=100,
    )


def _summaries() -> list[LevelSummary]:
    return [
        LevelSummary(
            level=level,
            label=f"concurrency:{concurrency}",
            target_concurrency=concurrency,
            target_rate=None,
            duration_s=60.0,
            requests_completed=100 - level,
            requests_failed=level,
            request_throughput=1.6667 * concurrency,
            output_token_throughput=213.3,
            total_token_throughput=1033.7,
            goodput=None if level == 0 else 0.97,
            error_rate=level / 100,
            latencies_ms={"ttft_ms": _stats(1.0), "e2e_ms": _stats(3.0)},
            errors_by_kind={"timeout": level} if level else {},
            retries=level,
        )
        for level, concurrency in enumerate((1, 4, 16))
    ]


def _requests(count: int, seed: int = 3) -> list[RequestRecord]:
    rng = random.Random(seed)
    records = []
    for i in range(count):
        scheduled = i * 0.01 + rng.random() / 3
        if i % 10 == 9:  # a failure: never got a token
            records.append(
                RequestRecord(
                    request_id=i,
                    level=i % 3,
                    scheduled_s=scheduled,
                    sent_s=scheduled + 0.0001,
                    error_kind="http_5xx",
                    error='503 Service Unavailable\n\t{"detail": "C:\\\\queue full"} \u00e9\u4e2d',
                    retries=2,
                )
            )
            continue
        chunks = [scheduled + 0.05 + k * 0.0123456789 for k in range(rng.randint(0, 6))]
        records.append(
            RequestRecord(
                request_id=i,
                level=i % 3,
                scheduled_s=scheduled,
                sent_s=scheduled + rng.random() / 1000,
                first_token_s=chunks[0] if chunks else None,
                end_s=scheduled + 0.5 + rng.random(),
                prompt_tokens=rng.randint(1, 4096),
                output_tokens=len(chunks),
                output_tokens_source=rng.choice(["usage", "tokenizer", "chunks"]),
                chunk_times_s=chunks,
                warmup=i < 2,
            )
        )
    return records


def _deployment(store: Store) -> int:
    with store.session() as session:
        cluster = register_cluster(session, name="c", kind="kubernetes", provider="onprem")
        model = save_model(
            session,
            name="m",
            source_uri="hf://m",
            format="gguf",
            files=[ModelFile("m.gguf", 10, "b" * 64)],
        )
        return dep.create_deployment(
            session, cluster_id=cluster.id, model_id=model.id, name="qwen-small"
        ).id


def test_round_trip_returns_the_same_records(store: Store) -> None:
    deployment_id = _deployment(store)
    run, summaries, requests = _run(), _summaries(), _requests(500)
    with store.session() as session:
        run_id = bench.save_run(session, run, summaries, requests, deployment_id=deployment_id)
    with store.session() as session:
        stored = bench.load_run(session, run_id)
    assert stored.run_id == run_id
    assert stored.deployment_id == deployment_id
    assert stored.info == run
    assert stored.summaries == summaries
    # Exact equality, floats included: times are stored as doubles without rounding.
    assert stored.requests == requests


def test_requests_come_back_in_request_id_order(store: Store) -> None:
    requests = _requests(50)
    shuffled = requests[:]
    random.Random(1).shuffle(shuffled)
    with store.session() as session:
        run_id = bench.save_run(session, _run(), [], shuffled)
    with store.session() as session:
        assert bench.load_run(session, run_id).requests == requests


def test_a_failed_save_leaves_nothing_behind(store: Store) -> None:
    requests = _requests(20)
    requests.append(RequestRecord(request_id=5, level=0, scheduled_s=1.0))  # duplicate id
    with (
        pytest.raises(Conflict, match="request ids and levels are unique per run"),
        store.session() as session,
    ):
        bench.save_run(session, _run(), _summaries(), requests)
    with store.session() as session:
        for table in (BenchmarkRun, BenchmarkSummary, BenchmarkRequest):
            assert session.scalar(select(func.count()).select_from(table)) == 0, table


def test_runs_are_listed_per_deployment_and_outlive_it(store: Store) -> None:
    deployment_id = _deployment(store)
    with store.session() as session:
        later = bench.save_run(
            session, _run("b", STARTED + timedelta(hours=1)), [], [], deployment_id=deployment_id
        )
        earlier = bench.save_run(session, _run("a"), [], _requests(3), deployment_id=deployment_id)
        bench.save_run(session, _run("unlinked"), [], [])
    with store.session() as session:
        headers = bench.list_runs_for_deployment(session, deployment_id)
        assert [(h.run_id, h.info.name) for h in headers] == [(earlier, "a"), (later, "b")]
        assert len(bench.list_runs_for_endpoint(session, "http://10.0.0.5:8000/v1")) == 3
        session.delete(dep.get_deployment(session, deployment_id))
    with store.session() as session:
        stored = bench.load_run(session, earlier)
        assert stored.deployment_id is None
        assert len(stored.requests) == 3


def test_non_finite_and_naive_values_are_refused_by_field(store: Store) -> None:
    bad = _requests(3)
    bad[1].chunk_times_s = [0.1, float("nan")]
    with pytest.raises(InvalidValue, match="request 1 chunk_times_s"), store.session() as s:
        bench.save_run(s, _run(), [], bad)
    bad = _requests(3)
    bad[2].end_s = float("inf")
    with pytest.raises(InvalidValue, match="request 2 has a non-finite time"), store.session() as s:
        bench.save_run(s, _run(), [], bad)
    naive = _run()
    naive.started_at = datetime(2026, 1, 1)
    with pytest.raises(InvalidValue, match="run started_at"), store.session() as s:
        bench.save_run(s, naive, [], [])


def test_loading_an_unknown_run_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="no benchmark run with id 42"), store.session() as s:
        bench.load_run(s, 42)


def test_large_runs_span_several_copy_batches(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench, "COPY_BATCH_ROWS", 7)
    requests = _requests(100)
    with store.session() as session:
        run_id = bench.save_run(session, _run(), [], requests)
    with store.session() as session:
        assert bench.load_run(session, run_id).requests == requests
