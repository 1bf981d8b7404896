"""Baselines from the store, comparisons written next to the report, health records."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from budcluster.bench.records import LatencyStats, LevelSummary, RunInfo
from budcluster.catalogue.baselines import (
    compare_with_baseline,
    resolve_baseline,
    summary_from_stored,
    write_comparison,
)
from budcluster.catalogue.health import HealthObservation, record_health, unknown_nodes
from budcluster.catalogue.schema import BaselinePolicy
from budcluster.store import Store
from budcluster.store import benchmarks as bench
from budcluster.store import deployments as dep
from budcluster.store.clusters import get_cluster, register_cluster
from budcluster.store.models_catalog import ModelFile, save_model
from budcluster.store.nodes import NodeObservation, list_nodes, record_node_snapshot
from budcluster.targets.base import NodeHealth

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def _run(started: datetime, profile: str = "concurrency:4", status: str = "completed") -> RunInfo:
    return RunInfo(
        name="demo",
        url="http://127.0.0.1:8000",
        model="demo",
        api="completions",
        profile=profile,
        tool_version="t",
        started_at=started,
        started_monotonic=1.0,
        finished_at=started + timedelta(seconds=5),
        status=status,
        deployment_name="demo",
    )


def _level(ttft_p99: float, throughput: float) -> LevelSummary:
    stats = LatencyStats(
        mean=ttft_p99 / 2, std=1, min=1, p50=ttft_p99 / 2, p90=ttft_p99, p95=ttft_p99,
        p99=ttft_p99, max=ttft_p99, count=10,
    )  # fmt: skip
    return LevelSummary(
        level=0,
        label="concurrency:4",
        target_concurrency=4,
        target_rate=None,
        duration_s=5,
        requests_completed=10,
        requests_failed=0,
        request_throughput=throughput,
        output_token_throughput=throughput * 32,
        total_token_throughput=throughput * 64,
        goodput=None,
        error_rate=0.0,
        latencies_ms={"ttft_ms": stats},
    )


@pytest.fixture
def deployment_id(store: Store) -> int:
    with store.session() as session:
        cluster = register_cluster(session, name="lab", kind="hosts", provider="onprem")
        model = save_model(
            session, name="m", source_uri="/m", format="gguf", files=[ModelFile("m", 1, "a" * 64)]
        )
        return dep.create_deployment(
            session, cluster_id=cluster.id, model_id=model.id, name="demo"
        ).id


def test_previous_baseline_is_the_latest_completed_run_with_the_same_profile(
    store: Store, deployment_id: int
) -> None:
    with store.session() as session:
        older = bench.save_run(
            session, _run(T0), [_level(100, 10)], [], deployment_id=deployment_id
        )
        latest = bench.save_run(
            session,
            _run(T0 + timedelta(hours=1)),
            [_level(120, 9)],
            [],
            deployment_id=deployment_id,
        )
        # Neither a failed run nor one with another profile is a fair baseline.
        bench.save_run(
            session, _run(T0 + timedelta(hours=2), status="failed"), [_level(1, 1)], [],
            deployment_id=deployment_id,
        )  # fmt: skip
        bench.save_run(
            session, _run(T0 + timedelta(hours=3), profile="rate:2"), [_level(1, 1)], [],
            deployment_id=deployment_id,
        )  # fmt: skip
    policy = BaselinePolicy()
    with store.session() as session:
        summary, source = resolve_baseline(session, policy, deployment_id, "concurrency:4")
    assert source == f"previous run {latest}"
    assert summary is not None
    assert summary["ttft_ms"]["p99"] == 120
    assert summary["run"]["store_run_id"] == latest

    with store.session() as session:
        pinned, source = resolve_baseline(
            session, BaselinePolicy(kind="pinned", run_id=older), deployment_id, "concurrency:4"
        )
        nothing, why = resolve_baseline(session, policy, deployment_id, "sweep")
        none, _ = resolve_baseline(session, BaselinePolicy(kind="none"), deployment_id, "x")
    assert source == f"pinned run {older}"
    assert pinned is not None and pinned["request_throughput"] == 10
    assert nothing is None and "no earlier completed run" in why
    assert none is None


def test_a_pinned_report_folder_is_read_from_disk(tmp_path: Path, store: Store) -> None:
    (tmp_path / "summary.json").write_text(
        json.dumps({"request_throughput": 3.0, "levels": []}), encoding="utf-8"
    )
    with store.session() as session:
        summary, source = resolve_baseline(
            session, BaselinePolicy(kind="pinned", report=str(tmp_path)), 1, "concurrency:4"
        )
    assert summary == {"request_throughput": 3.0, "levels": []}
    assert source.startswith("pinned report")


def test_a_slower_candidate_is_a_regression_and_the_report_says_so(
    tmp_path: Path, store: Store, deployment_id: int
) -> None:
    with store.session() as session:
        run_id = bench.save_run(
            session, _run(T0), [_level(100, 10)], [], deployment_id=deployment_id
        )
        baseline = summary_from_stored(bench.load_run(session, run_id))
    same = json.loads(json.dumps(baseline))
    policy = BaselinePolicy(threshold_pct=10, thresholds="ttft_ms.p99=50%")

    steady = compare_with_baseline(baseline, same, policy, "previous run 1")
    assert not steady.regressed

    slower = json.loads(json.dumps(baseline))
    slower["ttft_ms"]["p99"] = 140  # +40 %: within its own 50 % limit
    slower["request_throughput"] = 8.5  # -15 %: beyond the default 10 %
    verdict = compare_with_baseline(baseline, slower, policy, "previous run 1")
    assert verdict.regressions == ["run:request_throughput"]

    path = write_comparison(tmp_path, "demo", verdict)
    text = path.read_text(encoding="utf-8")
    assert "**REGRESSION** in run:request_throughput" in text
    assert "previous run 1" in text
    saved = json.loads((tmp_path / "comparison.json").read_text(encoding="utf-8"))
    assert saved["regressions"] == ["run:request_throughput"]


def test_health_marks_the_cluster_and_each_node(store: Store) -> None:
    with store.session() as session:
        cluster = register_cluster(session, name="lab", kind="hosts", provider="onprem")
        for name in ("a", "b"):
            record_node_snapshot(
                session,
                cluster.id,
                NodeObservation(name, T0, {}, conditions={"Ready": {"status": "True"}}),
            )
    seen = HealthObservation("lab", True, ["a", "c"], "", T0)
    with store.session() as session:
        rows = record_health(session, seen)
    assert [(r["node"], r["reachable"], r["ready"]) for r in rows] == [
        ("a", True, True),
        ("b", False, False),
    ]
    with store.session() as session:
        assert get_cluster(session, "lab").status.value == "available"
        nodes = {n.name: n.conditions for n in list_nodes(session, cluster.id)}
    assert nodes["a"]["Reachable"]["status"] == "True"
    assert nodes["a"]["Ready"] == {"status": "True"}
    assert nodes["b"]["Reachable"]["status"] == "False"
    assert unknown_nodes(seen, nodes) == ["c"]

    down = replace(seen, reachable=False, nodes=[], detail="ssh: connection refused")
    with store.session() as session:
        record_health(session, down)
    with store.session() as session:
        cluster_row = get_cluster(session, "lab")
        assert (cluster_row.status.value, cluster_row.status_reason) == (
            "unavailable",
            "ssh: connection refused",
        )
        reasons = {n.conditions["Reachable"]["reason"] for n in list_nodes(session, cluster.id)}
    assert reasons == {"ssh: connection refused"}


def test_health_records_readiness_taints_and_pressure(store: Store) -> None:
    with store.session() as session:
        cluster = register_cluster(session, name="k8s", kind="kubernetes", provider="onprem")
        record_node_snapshot(session, cluster.id, NodeObservation("gpu-0", T0, {}))
    health = {
        "gpu-0": NodeHealth(
            "gpu-0",
            ready=False,
            schedulable=False,
            taints=["nvidia.com/gpu=present:NoSchedule"],
            pressure=["MemoryPressure"],
        )
    }
    seen = HealthObservation("k8s", True, ["gpu-0"], "", T0, health)
    with store.session() as session:
        rows = record_health(session, seen)
    assert rows[0]["ready"] is False and rows[0]["schedulable"] is False
    assert rows[0]["taints"] == "nvidia.com/gpu=present:NoSchedule"
    assert rows[0]["pressure"] == "MemoryPressure"
    with store.session() as session:
        node = list_nodes(session, cluster.id)[0]
        assert node.schedulable is False
        assert node.conditions["Ready"]["status"] == "False"
        assert node.conditions["Taints"]["value"] == ["nvidia.com/gpu=present:NoSchedule"]
        assert node.conditions["Pressure"]["value"] == ["MemoryPressure"]
