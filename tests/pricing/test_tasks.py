"""The pricing and placement tasks as plain functions on a migrated SQLite store, and the
deploy-model flow's ``cluster: auto`` branch with its steps stubbed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from budcluster.hardware.inventory import NodeInventory
from budcluster.job_requests import DeployModelRequest
from budcluster.modelfacts import load_model_facts
from budcluster.planning import PlanRequest, plan
from budcluster.settings import get_settings
from budcluster.store import Store
from budcluster.store import deployments as dep
from budcluster.store.clusters import get_cluster, register_cluster, set_cluster_status
from budcluster.store.migrate import upgrade
from budcluster.store.models_catalog import ModelFile, save_model
from budcluster.store.node_inventory import observation_from_inventory
from budcluster.store.nodes import record_node_snapshot
from tasks._store import results_store

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"


def _gpu_node(name: str, product: str, mib: int) -> NodeInventory:
    return NodeInventory.model_validate(
        {
            "node_name": name,
            "collected_at": "2026-12-01T00:00:00+00:00",
            "nvidia": {"gpus": [{"index": 0, "product": product, "memory_total_mib": mib}]},
        }
    )


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'budcluster.db'}"
    monkeypatch.setenv("BUDCLUSTER_DATABASE_URL", url)
    monkeypatch.delenv("BUDCLUSTER_PRICE_TABLE", raising=False)
    get_settings.cache_clear()
    results_store.cache_clear()
    upgrade(url)
    yield url
    results_store().dispose()
    get_settings.cache_clear()
    results_store.cache_clear()


def _register(store: Store, name: str, node: NodeInventory) -> int:
    with store.session() as session:
        cluster = register_cluster(session, name=name, kind="kubernetes", provider="onprem")
        set_cluster_status(session, name, "available")
        record_node_snapshot(session, cluster.id, observation_from_inventory(node))
        return cluster.id


def test_place_model_plans_on_recorded_inventories_and_uses_measured_costs(
    store_url: str,
) -> None:
    from budcluster.store import benchmarks as bench
    from tasks.pricing import deployment_price, place_model
    from tests.store.test_costs import T0, _levels, _run

    store = results_store()
    _register(store, "east-h100", _gpu_node("h100-1", "NVIDIA H100 80GB HBM3", 81559))
    west = _register(store, "west-a100", _gpu_node("a100-1", "NVIDIA A100-SXM4-80GB", 81920))
    facts = load_model_facts(MODELS / "Llama-3.1-8B-Instruct")

    decision = place_model.fn(facts, PlanRequest(max_model_len=8192), "llama")
    assert (decision.chosen, decision.basis) == ("west-a100", "device-hour")

    # Both clusters measured: the H100 makes tokens cheaper, so it wins on measured cost.
    # ($6.88/h at 4000 tok/s = $0.4778 per 1M; $3.43/h at 1000 tok/s = $0.9528 per 1M.)
    a100_plan = decision.plan
    with store.session() as session:
        model = save_model(
            session,
            name="llama",
            source_uri="/models/llama",
            format="hf-safetensors",
            files=[ModelFile("a", 1, "c" * 64)],
        )
        east = get_cluster(session, "east-h100").id
        for cluster_id, name, rate, usd in ((east, "e", 4000.0, 6.88), (west, "w", 1000.0, 3.43)):
            row = dep.create_deployment(
                session, cluster_id=cluster_id, model_id=model.id, name=name
            )
            row.plan = a100_plan.model_dump(mode="json")
            bench.save_run(
                session,
                _run(f"run-{name}", T0, deployment=name),
                _levels(rate),
                [],
                deployment_id=row.id,
                usd_per_hour=usd,
            )
    decision = place_model.fn(facts, PlanRequest(max_model_len=8192), "llama")
    assert (decision.chosen, decision.basis) == ("east-h100", "measured")
    assert decision.ranked[0].measured is not None
    assert "run 'run-e'" in decision.ranked[0].measured

    price = deployment_price.fn("west-a100", "w")
    assert price is not None and price.usd_per_hour == pytest.approx(3.4309)


def test_a_broken_price_table_leaves_the_price_unknown_not_the_run_failed(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks.pricing import price_plan

    broken = tmp_path / "prices.yaml"
    broken.write_text("as_of: yesterday\n")
    monkeypatch.setenv("BUDCLUSTER_PRICE_TABLE", str(broken))
    get_settings.cache_clear()
    chosen = plan(
        load_model_facts(MODELS / "Llama-3.1-8B-Instruct"),
        [_gpu_node("a100-1", "NVIDIA A100-SXM4-80GB", 81920)],
    )
    price = price_plan.fn(chosen, "west")
    assert price.usd_per_hour is None
    assert f"price table {broken}: as_of" in (price.missing or "")


def test_plan_artifact_carries_the_ranked_alternatives(monkeypatch: pytest.MonkeyPatch) -> None:
    import tasks.planning as planning_tasks
    from budcluster.planning.placement import ClusterOption, rank_clusters

    published: dict[str, Any] = {}
    monkeypatch.setattr(
        planning_tasks, "create_markdown_artifact", lambda **kw: published.update(kw)
    )
    chosen = plan(
        load_model_facts(MODELS / "Llama-3.1-8B-Instruct"),
        [_gpu_node("a100-1", "NVIDIA A100-SXM4-80GB", 81920)],
    )
    decision = rank_clusters(
        [
            ClusterOption(cluster="west", plan=chosen, usd_per_replica_hour=3.43),
            ClusterOption(cluster="edge", unfit="too small"),
        ]
    )
    markdown = planning_tasks.publish_plan_artifact.fn(chosen, decision)
    assert markdown == published["markdown"]
    assert "# Runtime plan: Llama-3.1-8B-Instruct" in markdown
    assert "## Placement across clusters" in markdown
    assert "| 2 | edge | no |" in markdown and "does not fit (too small)" in markdown


def test_deploy_model_auto_places_then_deploys_on_the_chosen_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import flows.deploy_model as flow_module
    from budcluster.planning.placement import ClusterOption, PlacementDecision, rank_clusters

    chosen = plan(
        load_model_facts(MODELS / "Llama-3.1-8B-Instruct"),
        [_gpu_node("a100-1", "NVIDIA A100-SXM4-80GB", 81920)],
    )
    decision = rank_clusters([ClusterOption(cluster="west", plan=chosen, usd_per_replica_hour=1)])
    calls: list[tuple[str, Any]] = []

    @contextmanager
    def slot(cluster: str, deployment: str, *, wait: bool) -> Iterator[None]:
        calls.append(("slot", (cluster, deployment)))
        yield

    monkeypatch.setattr(flow_module, "model_source", lambda model: model.uri)
    monkeypatch.setattr(flow_module, "locate_model_metadata", lambda source: source)
    monkeypatch.setattr(flow_module, "read_model_facts", lambda path: ("facts", path))

    def place(facts: Any, request: PlanRequest, name: str) -> PlacementDecision:
        calls.append(("place", (facts, name)))
        return decision

    monkeypatch.setattr(flow_module, "place_model", place)
    monkeypatch.setattr(flow_module, "exclusive_rollout", slot)
    monkeypatch.setattr(
        flow_module,
        "_deploy",
        lambda request, placement, facts: {
            "cluster": request.cluster,
            "placement": placement,
            "facts": facts,
        },
    )
    request = DeployModelRequest.model_validate(
        {"name": "chat", "cluster": "auto", "model": {"uri": "/models/llama"}}
    )
    outcome = flow_module.deploy_model.fn(request)
    # The deploy plans on the facts placement read: one metadata read per run.
    assert outcome == {
        "cluster": "west",
        "placement": decision,
        "facts": ("facts", "/models/llama"),
    }
    assert calls == [("place", (("facts", "/models/llama"), "llama")), ("slot", ("west", "chat"))]
