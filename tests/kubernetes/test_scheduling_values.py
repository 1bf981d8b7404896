"""Tolerations, node selectors, cordons and the collector's per-variant placement, rendered
through Helm's SDK (the helm adapter) and validated against the Kubernetes 1.31 schemas."""

from __future__ import annotations

import json
from typing import Any

from budcluster.targets.base import PodScheduling, RolloutSpec
from budcluster.targets.kubernetes import runtime_values
from budcluster.targets.kubernetes.nodes import node_state, reconcile_node
from tests.kubernetes.helpers import H100_NODE, by_kind, llama_transfer_values, render
from tests.kubernetes.test_charts import validate_all

GPU_TOLERATION = {
    "key": "nvidia.com/gpu",
    "operator": "Equal",
    "value": "present",
    "effect": "NoSchedule",
}
POOL = {"cloud.google.com/gke-nodepool": "h100-pool"}


def _pod(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return dict(by_kind(objects, kind)[0]["spec"]["template"]["spec"])


def test_the_runtime_takes_the_forms_tolerations_and_selector_beside_its_pin(
    tp2_rollout: RolloutSpec,
) -> None:
    spec = RolloutSpec(
        tp2_rollout.deployment_name,
        tp2_rollout.plan,
        tp2_rollout.model_path,
        scheduling=PodScheduling(tolerations=(GPU_TOLERATION,), node_selector=POOL),
    )
    values = runtime_values(
        spec,
        pvc_name="llama-model",
        subdir="llama",
        openshift=False,
        tolerations=[*spec.scheduling.tolerations],
        node_selector=spec.scheduling.node_selector,
    )
    objects = render("bud_runtime_container", values, release="rt-llama", namespace="bud-llama")
    validate_all(objects)
    pod = _pod(objects, "Deployment")
    assert pod["nodeSelector"] == {**POOL, "kubernetes.io/hostname": H100_NODE}
    assert pod["tolerations"] == [GPU_TOLERATION]


def test_without_them_the_runtime_renders_as_before(tp2_rollout: RolloutSpec) -> None:
    values = runtime_values(tp2_rollout, pvc_name="llama-model", subdir="llama", openshift=False)
    pod = _pod(render("bud_runtime_container", values), "Deployment")
    assert pod["nodeSelector"] == {"kubernetes.io/hostname": H100_NODE}
    assert "tolerations" not in pod


def test_the_transfer_job_goes_to_the_same_pool() -> None:
    values = llama_transfer_values(
        "registry/bud:1",
        nodeName=H100_NODE,
        nodeSelector=POOL,
        tolerations=[GPU_TOLERATION],
    )
    objects = render("model_transfer", values, release="model-llama")
    validate_all(objects)
    pod = _pod(objects, "Job")
    assert pod["nodeSelector"] == {**POOL, "kubernetes.io/hostname": H100_NODE}
    assert pod["tolerations"] == [GPU_TOLERATION]
    # Unpinned (several nodes): the pool's selector alone.
    unpinned = _pod(render("model_transfer", {**values, "nodeName": ""}), "Job")
    assert unpinned["nodeSelector"] == POOL
    bare = _pod(render("model_transfer", llama_transfer_values("registry/bud:1")), "Job")
    assert "nodeSelector" not in bare and "tolerations" not in bare


def _variants(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    objects = render("node_info_collector", {"image": "registry/bud:1", **values}, release="nic")
    validate_all(objects)
    return {
        d["metadata"]["labels"]["budcluster.io/variant"]: d["spec"]["template"]["spec"]
        for d in by_kind(objects, "DaemonSet")
    }


def test_collector_defaults_tolerate_every_taint_and_keep_their_runtime_classes() -> None:
    variants = _variants({})
    assert variants["nvidia"]["runtimeClassName"] == "nvidia"
    assert (
        "runtimeClassName" not in variants["gaudi"] and "runtimeClassName" not in variants["plain"]
    )
    for spec in variants.values():
        assert spec["tolerations"] == [{"operator": "Exists"}]
        assert "nodeSelector" not in spec
        assert set(spec["affinity"]) == {"nodeAffinity"}


def test_collector_variants_take_runtime_class_selector_affinity_and_tolerations() -> None:
    own_affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "node-role/cpu", "operator": "Exists"}]}
                ]
            }
        }
    }
    variants = _variants(
        {
            "nvidia": {
                "runtimeClassName": "",
                "nodeSelector": POOL,
                "tolerations": [GPU_TOLERATION],
            },
            "gaudi": {"runtimeClassName": "habana", "tolerations": []},
            "plain": {"affinity": own_affinity},
        }
    )
    nvidia = variants["nvidia"]
    assert "runtimeClassName" not in nvidia  # the NVIDIA runtime is the node's default
    assert nvidia["nodeSelector"] == POOL
    assert nvidia["tolerations"] == [GPU_TOLERATION]
    # The variant's own label term stays beside the selector.
    terms = nvidia["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchExpressions"][0]["operator"] == "In"
    gaudi = variants["gaudi"]
    assert gaudi["runtimeClassName"] == "habana"
    assert "tolerations" not in gaudi  # an empty list replaces the top-level one
    assert variants["plain"]["affinity"] == own_affinity
    assert variants["plain"]["tolerations"] == [{"operator": "Exists"}]


def test_reconcile_records_taints_cordon_and_labels() -> None:
    node: dict[str, Any] = {
        "metadata": {"name": "gpu-1", "labels": {"kubernetes.io/hostname": "gpu-1", **POOL}},
        "spec": {
            "unschedulable": True,
            "taints": [
                {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"},
                {"key": "spot", "effect": "PreferNoSchedule"},
            ],
        },
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    inventory = reconcile_node(
        json.dumps({"node_name": "gpu-1", "sources": []}),
        node,  # type: ignore[arg-type]
        node_state(node),  # type: ignore[arg-type]
    )
    scheduling = inventory.scheduling
    assert scheduling is not None and scheduling.unschedulable
    assert [t.describe() for t in scheduling.taints] == [
        "nvidia.com/gpu=present:NoSchedule",
        "spot:PreferNoSchedule",
    ]
    assert scheduling.labels == {"kubernetes.io/hostname": "gpu-1", **POOL}
