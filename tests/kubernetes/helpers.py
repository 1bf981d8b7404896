"""Shared pieces of the Kubernetes backend tests: a real TP-2 CUDA plan, chart rendering."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from budcluster.adapters.helm import render_chart
from budcluster.hardware.inventory import NodeInventory
from budcluster.modelfacts import load_model_facts
from budcluster.planning import PlanRequest, plan
from budcluster.planning.models import RuntimePlan
from budcluster.targets.base import RolloutSpec

REPO = Path(__file__).resolve().parents[2]
CHARTS = REPO / "charts"
MODELS = REPO / "tests" / "fixtures" / "models"
H100_NODE = "h100-node"


def h100_inventory(node: str = H100_NODE, count: int = 8) -> NodeInventory:
    return NodeInventory.model_validate(
        {
            "node_name": node,
            "nvidia": {
                "gpus": [
                    {
                        "index": i,
                        "product": "NVIDIA H100 80GB HBM3",
                        "memory_total_mib": 81559,
                        "mig_mode": "disabled",
                    }
                    for i in range(count)
                ]
            },
            "memory": {"total_mib": 2 * 1024 * 1024},
        }
    )


def make_tp2_plan(node: str = H100_NODE) -> RuntimePlan:
    """Llama 3.1 70B with one 8k sequence on 8x H100: the planner's answer is TP 2."""
    result = plan(
        load_model_facts(MODELS / "Llama-3.1-70B-Instruct"),
        [h100_inventory(node)],
        PlanRequest(max_model_len=8192, concurrency=1, replicas=1),
    )
    assert result.tensor_parallel_size == 2
    return result


def make_tp2_rollout(tp2_plan: RuntimePlan, deployment_name: str = "llama-70b-h100") -> RolloutSpec:
    return RolloutSpec(
        deployment_name=deployment_name,
        plan=tp2_plan,
        model_path="pvc://bud-llama-3-1-70b-instruct-0123abcd/model-llama-model/llama",
    )


def render(
    chart: str, values: dict[str, Any], release: str = "rel", namespace: str = "bud-test"
) -> list[dict[str, Any]]:
    return render_chart(CHARTS / chart, values, release, namespace)


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]
