"""Staging LoRA adapters into a model's volume, against the API emulator: an adapter needs
the model's claim first, a controller directory is refused, the adapter's Job leaves its S3
key Secret behind no more than the model's does, a restage never shrinks a live claim, and
on a tainted pool the adapter's Job takes the model's tolerations and node selector."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from budcluster.adapters import kubernetes as kube
from budcluster.targets.base import ModelSourceSpec, PodScheduling
from budcluster.targets.kubernetes import (
    KubernetesTargetError,
    KubernetesTimeouts,
    model_release_for,
    namespace_for,
)
from budcluster.targets.kubernetes.names import adapter_job_for
from tests.k8s_emulator.emulator import Emulator
from tests.k8s_emulator.fixtures import emulator_factory  # noqa: F401  (pytest fixture)
from tests.k8s_emulator.nodes import Taint, amx_cpu_node, h100_node
from tests.kubernetes.helpers import target_for

FAST = KubernetesTimeouts(api_s=10, detect_s=20, transfer_s=20, ready_s=20, resync_s=1)
KEYS = {"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret"}
NODE = h100_node().name


@pytest.fixture
def k8s(emulator_factory: Callable[..., Emulator]) -> Emulator:  # noqa: F811
    return emulator_factory(flavour="kubernetes", nodes=[h100_node()])


def test_an_adapter_needs_the_model_volume_first(k8s: Emulator) -> None:
    target = target_for(k8s, FAST)
    with pytest.raises(KubernetesTargetError, match=r"has no volume .* stage the model first"):
        target.stage_adapter(ModelSourceSpec("s3://a/tone", KEYS), "lora-tone-1", "llama", [NODE])
    with pytest.raises(KubernetesTargetError, match="adapter uri '/ctl/tone' is a directory"):
        target.stage_adapter(ModelSourceSpec("/ctl/tone"), "lora-tone-1", "llama", [NODE])
    assert not k8s.objects("jobs", "batch")


def test_an_adapter_job_copies_into_the_model_claim_and_leaves_no_secret(k8s: Emulator) -> None:
    target = target_for(k8s, FAST)
    model = target.stage_model(ModelSourceSpec("s3://models/llama", KEYS), "llama", [NODE])
    staged = target.stage_adapter(
        ModelSourceSpec("s3://models/tone", KEYS), "lora-tone-1", "llama", [NODE]
    )
    namespace, release = namespace_for("bud", "llama"), model_release_for("llama")
    assert model.path == f"pvc://{namespace}/{release}-model/llama"
    assert staged.path == f"pvc://{namespace}/{release}-model/lora-tone-1"
    assert [j["metadata"]["name"] for j in k8s.objects("jobs", "batch", namespace)] == sorted(
        [f"{release}-transfer", adapter_job_for(release, "lora-tone-1")]
    )
    assert len(k8s.objects("persistentvolumeclaims", "", namespace)) == 1
    assert not [
        s for s in k8s.objects("secrets", "", namespace) if "-source" in s["metadata"]["name"]
    ]


def _claim_size(k8s: Emulator, namespace: str) -> str:
    (claim,) = k8s.objects("persistentvolumeclaims", "", namespace)
    return str(claim["spec"]["resources"]["requests"]["storage"])


def test_a_restage_keeps_a_live_claim_that_holds_enough(k8s: Emulator) -> None:
    target = target_for(k8s, FAST)
    namespace, release = namespace_for("bud", "llama"), model_release_for("llama")
    source = ModelSourceSpec("s3://models/llama", KEYS)
    # The bucket cannot be listed here: 0 bytes, so the chart asks for its 1024 MiB floor.
    target.stage_model(source, "llama", [NODE])
    assert _claim_size(k8s, namespace) == "1024Mi"
    api = kube.api_client_from_kubeconfig(k8s.kubeconfig_dict())
    claim = kube.ObjectRef("PersistentVolumeClaim", f"{release}-model", namespace)
    live = kube.get_object(api, claim)
    assert live is not None
    live["spec"]["resources"]["requests"]["storage"] = "4Gi"
    kube.apply_objects(api, [live], release)
    target.stage_model(source, "llama", [NODE])
    assert _claim_size(k8s, namespace) == "4Gi"
    live = kube.get_object(api, claim)
    assert live is not None
    live["spec"]["resources"]["requests"]["storage"] = "10Mi"
    kube.apply_objects(api, [live], release)
    target.stage_model(source, "llama", [NODE])
    assert _claim_size(k8s, namespace) == "1024Mi"


GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def test_on_a_tainted_pool_the_adapter_job_goes_where_the_model_job_went(
    emulator_factory: Callable[..., Emulator],  # noqa: F811
) -> None:
    gpu = h100_node()
    gpu.taints = [Taint("nvidia.com/gpu", "NoSchedule", "present")]
    k8s = emulator_factory(flavour="kubernetes", nodes=[gpu, amx_cpu_node()])
    target = target_for(k8s, FAST)
    placed = PodScheduling(
        tolerations=(GPU_TOLERATION,), node_selector={"nvidia.com/gpu.present": "true"}
    )
    target.stage_model(ModelSourceSpec("s3://models/llama"), "llama", [gpu.name], None, placed)
    target.stage_adapter(
        ModelSourceSpec("s3://models/tone"), "lora-tone-1", "llama", [gpu.name], None, placed
    )
    namespace, release = namespace_for("bud", "llama"), model_release_for("llama")
    jobs = {j["metadata"]["name"]: j for j in k8s.objects("jobs", "batch", namespace)}
    assert sorted(jobs) == sorted([f"{release}-transfer", adapter_job_for(release, "lora-tone-1")])
    for name, job in jobs.items():
        spec = job["spec"]["template"]["spec"]
        assert spec["tolerations"] == [GPU_TOLERATION], name
        assert spec["nodeSelector"] == {
            "nvidia.com/gpu.present": "true",
            "kubernetes.io/hostname": gpu.name,
        }, name
        (pod,) = [
            p
            for p in k8s.objects("pods", "", namespace)
            if p["metadata"]["labels"].get("batch.kubernetes.io/job-name") == name
        ]
        assert pod["spec"]["nodeName"] == gpu.name, name


def test_an_adapter_job_without_the_toleration_never_leaves_pending(
    emulator_factory: Callable[..., Emulator],  # noqa: F811
) -> None:
    """Why the adapter's Job must take the model's scheduling: pinned to the tainted node
    that holds the model's volume, without the toleration it is never scheduled."""
    gpu = h100_node()
    gpu.taints = [Taint("nvidia.com/gpu", "NoSchedule", "present")]
    k8s = emulator_factory(flavour="kubernetes", nodes=[gpu])
    placed = PodScheduling(tolerations=(GPU_TOLERATION,))
    target_for(k8s, FAST).stage_model(
        ModelSourceSpec("s3://models/llama"), "llama", [gpu.name], None, placed
    )
    short = KubernetesTimeouts(api_s=10, detect_s=20, transfer_s=3, ready_s=20, resync_s=1)
    with pytest.raises(KubernetesTargetError):
        target_for(k8s, short).stage_adapter(
            ModelSourceSpec("s3://models/tone"), "lora-tone-1", "llama", [gpu.name]
        )
    namespace, release = namespace_for("bud", "llama"), model_release_for("llama")
    (pod,) = [
        p
        for p in k8s.objects("pods", "", namespace)
        if p["metadata"]["labels"].get("batch.kubernetes.io/job-name")
        == adapter_job_for(release, "lora-tone-1")
    ]
    assert pod["status"]["phase"] == "Pending" and not pod["spec"].get("nodeName")
