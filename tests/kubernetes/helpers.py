"""Shared pieces of the Kubernetes backend tests: a real TP-2 CUDA plan, chart rendering, and
a target on the emulator with the model's volume in place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes.client import ApiClient

from budcluster.adapters import kubernetes as kube
from budcluster.adapters.helm import render_chart
from budcluster.hardware.inventory import NodeInventory
from budcluster.modelfacts import load_model_facts
from budcluster.planning import PlanRequest, plan
from budcluster.planning.models import RuntimePlan
from budcluster.targets.base import RolloutSpec
from budcluster.targets.kubernetes import (
    KubernetesTarget,
    KubernetesTimeouts,
    namespace_for,
    transfer_values,
)
from tests.k8s_emulator.emulator import Emulator
from tests.k8s_emulator.nodes import h100_node

REPO = Path(__file__).resolve().parents[2]
CHARTS = REPO / "charts"
MODELS = REPO / "tests" / "fixtures" / "models"
H100_NODE = "h100-node"

MODEL_NAMESPACE = namespace_for("bud", "llama-70b")
MODEL_PVC = "llama-model"
MODEL_PATH = f"pvc://{MODEL_NAMESPACE}/{MODEL_PVC}/llama"
# Short waits for the runtime and its endpoint: the emulator answers in milliseconds.
ENDPOINT_TIMEOUTS = KubernetesTimeouts(api_s=10, ready_s=20, resync_s=1, endpoint_poll_s=0.1)


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


def target_for(emu: Emulator, timeouts: KubernetesTimeouts) -> KubernetesTarget:
    return KubernetesTarget(
        kube.api_client_from_kubeconfig(emu.kubeconfig_dict()), timeouts=timeouts
    )


def apply_model_volume(api: ApiClient, namespace: str = MODEL_NAMESPACE) -> None:
    """The namespace and PVC that staging the model would have left (release model-llama)."""
    kube.apply_objects(
        api,
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": MODEL_PVC, "namespace": namespace},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        ],
        release="model-llama",
    )


def target_with_model_volume(
    emu: Emulator, timeouts: KubernetesTimeouts = ENDPOINT_TIMEOUTS
) -> KubernetesTarget:
    target = target_for(emu, timeouts)
    apply_model_volume(target._api)
    return target


def model_rollout(name: str, **plan_update: Any) -> RolloutSpec:
    """The TP-2 rollout on the emulator's H100 node, named ``name``, from the model volume."""
    return RolloutSpec(
        name, make_tp2_plan(h100_node().name).model_copy(update=plan_update), MODEL_PATH
    )


def llama_transfer_values(image: str, **overrides: Any) -> dict[str, Any]:
    """Values of the model_transfer chart: Llama 3.1 8B from S3 into PVC ``llama-model``."""
    values = transfer_values(
        image=image,
        model_name="Llama-3.1-8B",
        source_uri="s3://models/llama",
        model_bytes=16_060_522_496,
        s3_secret="llama-s3",
        node_name=None,
        pvc_name=MODEL_PVC,
    )
    values.update(overrides)
    return values
