"""Cost per million output tokens in the store: per run and level, over time, per cluster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from budcluster.bench.records import LatencyStats, LevelSummary, RunInfo
from budcluster.hardware.inventory import NodeInventory
from budcluster.store import Store
from budcluster.store import benchmarks as bench
from budcluster.store import deployments as dep
from budcluster.store.clusters import get_cluster, register_cluster, set_cluster_status
from budcluster.store.costs import cost_history, latest_measured_cost
from budcluster.store.models_catalog import ModelFile, save_model
from budcluster.store.node_inventory import observation_from_inventory, recorded_inventories
from budcluster.store.nodes import record_node_snapshot

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _run(name: str, started: datetime, deployment: str = "chat") -> RunInfo:
    return RunInfo(
        name=name,
        url="http://10.0.0.5:8000",
        model="m",
        api="completions",
        profile="sweep",
        tool_version="test",
        started_at=started,
        started_monotonic=0.0,
        finished_at=started + timedelta(minutes=1),
        status="completed",
        deployment_name=deployment,
    )


def _levels(*rates: float) -> list[LevelSummary]:
    stats = LatencyStats(1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1)
    return [
        LevelSummary(
            level=level,
            label=f"concurrency:{2**level}",
            target_concurrency=2**level,
            target_rate=None,
            duration_s=10.0,
            requests_completed=10,
            requests_failed=0,
            request_throughput=1.0,
            output_token_throughput=rate,
            total_token_throughput=rate,
            goodput=None,
            error_rate=0.0,
            latencies_ms={"ttft_ms": stats},
        )
        for level, rate in enumerate(rates)
    ]


def _deployment(store: Store, cluster: str, model: str = "llama", name: str = "chat") -> int:
    with store.session() as session:
        cluster_row = register_cluster(session, name=cluster, kind="kubernetes", provider="onprem")
        model_row = save_model(
            session,
            name=model,
            source_uri=f"hf://{model}/{cluster}",
            format="gguf",
            files=[ModelFile("m.gguf", 10, "b" * 64)],
        )
        return dep.create_deployment(
            session, cluster_id=cluster_row.id, model_id=model_row.id, name=name
        ).id


def test_runs_keep_their_price_and_each_level_its_cost(store: Store) -> None:
    deployment_id = _deployment(store, "east")
    with store.session() as session:
        bench.save_run(
            session,
            _run("first", T0),
            _levels(500.0, 2000.0),
            [],
            deployment_id=deployment_id,
            usd_per_hour=6.88,
            price={"usd_per_hour": 6.88, "lines": []},
        )
        bench.save_run(session, _run("unpriced", T0 + timedelta(days=1)), _levels(800.0), [])
        bench.save_run(
            session,
            _run("later", T0 + timedelta(days=2)),
            _levels(1000.0),
            [],
            deployment_id=deployment_id,
            usd_per_hour=3.6,
        )
        bench.save_run(session, _run("other", T0, deployment="other"), _levels(1.0), [])
    with store.session() as session:
        points = cost_history(session, "chat")
        on_east = cost_history(session, "chat", cluster="east")
    assert [(p.run_name, p.label) for p in points] == [
        ("first", "concurrency:1"),
        ("first", "concurrency:2"),
        ("unpriced", "concurrency:1"),
        ("later", "concurrency:1"),
    ]
    # $6.88/h at 500 tok/s: 6.88 / 1.8 = $3.8222 per million; at 2000 tok/s a quarter.
    assert points[0].usd_per_million_output_tokens == pytest.approx(6.88 / 1.8)
    assert points[1].usd_per_million_output_tokens == pytest.approx(6.88 / 7.2)
    assert points[2].usd_per_hour is None and points[2].usd_per_million_output_tokens is None
    # $3.60/h at 1000 tok/s = 3.6M tokens an hour: exactly $1 per million.
    assert points[3].usd_per_million_output_tokens == pytest.approx(1.0)
    assert points[0].cluster == "east" and points[2].cluster is None
    assert [p.run_name for p in on_east] == ["first", "first", "later"]


def test_latest_measured_cost_of_a_model_on_a_cluster(store: Store) -> None:
    east = _deployment(store, "east")
    west = _deployment(store, "west", name="chat-west")
    with store.session() as session:
        bench.save_run(
            session, _run("old", T0), _levels(100.0), [], deployment_id=east, usd_per_hour=3.6
        )
        bench.save_run(
            session,
            _run("new", T0 + timedelta(days=1)),
            _levels(500.0, 2000.0, 1000.0),
            [],
            deployment_id=east,
            usd_per_hour=7.2,
        )
        # Newer still, but without a price: not a measurement of cost.
        bench.save_run(
            session, _run("unpriced", T0 + timedelta(days=2)), _levels(9.0), [], deployment_id=east
        )
    with store.session() as session:
        cost = latest_measured_cost(session, "llama", "east")
        assert latest_measured_cost(session, "llama", "west") is None
        assert latest_measured_cost(session, "other-model", "east") is None
    assert cost is not None
    # The newest priced run's cheapest level: $7.20/h at 2000 tok/s = $1 per million.
    assert (cost.run_name, cost.level_label) == ("new", "concurrency:2")
    assert cost.usd_per_million_output_tokens == pytest.approx(1.0)
    assert west  # the west deployment exists, it just has no runs


def test_recorded_inventories_of_available_clusters(store: Store) -> None:
    gpu = NodeInventory.model_validate(
        {
            "node_name": "gpu-1",
            "collected_at": "2026-11-01T12:00:00+00:00",
            "nvidia": {"gpus": [{"index": 0, "product": "NVIDIA H100 80GB HBM3"}]},
        }
    )
    with store.session() as session:
        for name in ("east", "down", "bare"):
            register_cluster(session, name=name, kind="kubernetes", provider="onprem")
        set_cluster_status(session, "east", "available")
        set_cluster_status(session, "bare", "available")
        set_cluster_status(session, "down", "unavailable")
        east = get_cluster(session, "east").id
        record_node_snapshot(session, east, observation_from_inventory(gpu))
        cordoned = observation_from_inventory(gpu, name="gpu-2")
        cordoned.schedulable = False
        record_node_snapshot(session, east, cordoned)
    with store.session() as session:
        found = recorded_inventories(session)
    assert set(found) == {"east", "bare"}
    assert found["bare"] == []
    # A cordoned node is kept, marked cordoned, for the planner to leave out and name.
    assert [inv.node_name for inv in found["east"]] == ["gpu-1", "gpu-2"]
    assert found["east"][0].nvidia is not None
    assert found["east"][0].nvidia.gpus[0].product == "NVIDIA H100 80GB HBM3"
    assert found["east"][0].scheduling is None
    assert found["east"][1].scheduling is not None
    assert found["east"][1].scheduling.unschedulable


def test_taints_and_cordon_are_recorded_and_read_back(store: Store) -> None:
    tainted = NodeInventory.model_validate(
        {
            "node_name": "gpu-t",
            "collected_at": "2026-11-01T12:00:00+00:00",
            "scheduling": {
                "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
                "unschedulable": True,
                "labels": {"pool": "gpu"},
            },
        }
    )
    observation = observation_from_inventory(tainted)
    assert observation.schedulable is False
    with store.session() as session:
        register_cluster(session, name="pool", kind="kubernetes", provider="onprem")
        set_cluster_status(session, "pool", "available")
        record_node_snapshot(session, get_cluster(session, "pool").id, observation)
    with store.session() as session:
        (found,) = recorded_inventories(session)["pool"]
    assert found.scheduling is not None
    assert [t.describe() for t in found.scheduling.taints] == ["nvidia.com/gpu=present:NoSchedule"]
    assert found.scheduling.unschedulable and found.scheduling.labels == {"pool": "gpu"}
