"""Placement across clusters: fits, then lowest cost per 1M tokens, then fewest devices."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from budcluster.catalogue.schema import CatalogueEntry
from budcluster.hardware.inventory import NodeInventory
from budcluster.job_requests import DeployModelRequest, RegisterClusterRequest
from budcluster.modelfacts import load_model_facts
from budcluster.planning import NoFeasiblePlan, PlanRequest, plan
from budcluster.planning.placement import (
    ClusterOption,
    MeasuredEstimate,
    placement_markdown,
    plan_on_clusters,
    rank_clusters,
)
from budcluster.pricing import load_price_table

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"


def _gpus(name: str, product: str, mib: int, count: int = 1) -> NodeInventory:
    gpus = [{"index": i, "product": product, "memory_total_mib": mib} for i in range(count)]
    return NodeInventory.model_validate({"node_name": name, "nvidia": {"gpus": gpus}})


def _gaudi2(name: str) -> NodeInventory:
    cards = [{"index": 0, "model": "HL-225", "generation": "Gaudi2", "memory_total_mib": 98304}]
    return NodeInventory.model_validate({"node_name": name, "gaudi": {"devices": cards}})


INVENTORIES = {
    "east-h100": [_gpus("h100-1", "NVIDIA H100 80GB HBM3", 81559)],
    "west-a100": [_gpus("a100-1", "NVIDIA A100-SXM4-80GB", 81920)],
    "lab-gaudi": [_gaudi2("gaudi-1")],
    "edge-t4": [_gpus("t4-1", "Tesla T4", 15360)],
    "empty": [],
}


def _options(measured: dict[str, MeasuredEstimate] | None = None) -> list[ClusterOption]:
    facts = load_model_facts(MODELS / "Llama-3.1-8B-Instruct")
    return plan_on_clusters(
        facts, INVENTORIES, PlanRequest(max_model_len=8192), load_price_table(), measured
    )


def test_ranks_by_fit_then_device_hour_price_when_nothing_was_measured() -> None:
    decision = rank_clusters(_options())
    assert decision.chosen == "west-a100" and decision.basis == "device-hour"
    ranked = [(o.rank, o.cluster, o.fits, o.estimate) for o in decision.ranked]
    # A100 80GB $3.4309/h < H100 $6.88/h; Gaudi2 fits but is a placeholder (unknown
    # price, after every priced cluster); 8B bf16 (14.96 GiB) does not fit a 15 GiB T4.
    assert ranked == [
        (1, "west-a100", True, pytest.approx(3.4309)),
        (2, "east-h100", True, pytest.approx(6.88)),
        (3, "lab-gaudi", True, None),
        (4, "edge-t4", False, None),
        (5, "empty", False, None),
    ]
    why = {o.cluster: o.why for o in decision.ranked}
    assert why["west-a100"].startswith("chosen: fits; $3.4309/h")
    assert why["east-h100"] == "not chosen: fits, but $6.8800/h vs $3.4309/h"
    assert "price is unknown (price unknown: Gaudi2 is a placeholder" in why["lab-gaudi"]
    assert why["edge-t4"].startswith("not chosen: does not fit (Llama-3.1-8B-Instruct")
    assert why["empty"] == "not chosen: does not fit (no node recorded; run detect-nodes on it)"
    assert decision.plan.device_product == "NVIDIA A100-SXM4-80GB"


def test_measured_costs_decide_when_every_fitting_cluster_has_one() -> None:
    measured = {
        "east-h100": MeasuredEstimate(usd_per_million_output_tokens=0.90, source="run a"),
        "west-a100": MeasuredEstimate(usd_per_million_output_tokens=1.10, source="run b"),
        "lab-gaudi": MeasuredEstimate(usd_per_million_output_tokens=0.95, source="run c"),
    }
    decision = rank_clusters(_options(measured))
    # The H100 costs more per hour but makes tokens faster: cheaper per token.
    assert decision.basis == "measured" and decision.chosen == "east-h100"
    assert [o.cluster for o in decision.ranked[:3]] == ["east-h100", "lab-gaudi", "west-a100"]
    assert decision.ranked[2].why == (
        "not chosen: fits, but $1.1000 per 1M output tokens vs $0.9000 per 1M output tokens"
    )


def test_a_partial_measurement_falls_back_to_the_proxy_for_all() -> None:
    measured = {"east-h100": MeasuredEstimate(usd_per_million_output_tokens=0.01, source="x")}
    decision = rank_clusters(_options(measured))
    assert decision.basis == "device-hour" and decision.chosen == "west-a100"
    h100 = next(o for o in decision.ranked if o.cluster == "east-h100")
    assert h100.measured == "$0.0100 per 1M output tokens (x)"


def test_equal_cost_goes_to_fewer_devices_then_the_name() -> None:
    eight_b = plan(
        load_model_facts(MODELS / "Llama-3.1-8B-Instruct"),
        [_gpus("n", "NVIDIA H100 80GB HBM3", 81559)],
        PlanRequest(replicas=1),
    )
    two_gpus = eight_b.model_copy(update={"tensor_parallel_size": 2})
    options = [
        ClusterOption(cluster="b", plan=eight_b, usd_per_replica_hour=5.0),
        ClusterOption(cluster="a", plan=two_gpus, usd_per_replica_hour=5.0),
        ClusterOption(cluster="c", plan=eight_b, usd_per_replica_hour=5.0),
    ]
    decision = rank_clusters(options)
    assert [o.cluster for o in decision.ranked] == ["b", "c", "a"]
    assert decision.ranked[1].why == "not chosen: ties with b on cost and devices; the name decides"
    assert decision.ranked[2].why == "not chosen: same cost, but 2 devices per replica vs 1"


def test_nothing_fits_anywhere() -> None:
    with pytest.raises(NoFeasiblePlan, match=r"fits no registered cluster .*edge-t4: "):
        rank_clusters([o for o in _options() if o.cluster in {"edge-t4", "empty"}])


def test_markdown_lists_every_alternative_with_its_reason() -> None:
    text = placement_markdown(rank_clusters(_options()))
    assert "Chosen: **west-a100**" in text
    assert "Compared on: hourly price of one replica's devices (proxy" in text
    assert (
        "| 1 | west-a100 | yes | vllm on cuda (NVIDIA A100-SXM4-80GB), TP 1 x 1 replica(s) | 1 | "
        "$3.4309/h |  | chosen: fits; $3.4309/h; 1 device(s) per replica |"
    ) in text
    assert "| 4 | edge-t4 | no |" in text


def test_the_form_takes_auto_and_no_cluster_may_be_named_so() -> None:
    request = DeployModelRequest.model_validate(
        {"name": "chat", "cluster": "auto", "model": {"uri": "/models/m"}}
    )
    assert request.places_automatically()
    placed = request.on_cluster("west-a100")
    assert placed.cluster == "west-a100" and not placed.places_automatically()
    with pytest.raises(ValidationError, match="cluster name 'auto' is reserved"):
        RegisterClusterRequest(name="auto", credentials_block="b")
    with pytest.raises(ValidationError, match="cluster 'auto' is for deploy-model runs only"):
        CatalogueEntry.model_validate({"name": "chat", "cluster": "auto", "model": {"uri": "/m"}})
