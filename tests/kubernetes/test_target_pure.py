"""The KubernetesTarget's pure pieces: names, node facts, runtime state and reasons."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from budcluster.hardware.nvidia_text import parse_nvidia_smi_capture
from budcluster.targets.base import ClusterTarget, RuntimeState
from budcluster.targets.kubernetes import (
    KubernetesTarget,
    KubernetesTargetError,
    namespace_for,
    node_state,
    parse_pvc_path,
    reconcile_node,
    release_for,
    runtime_state,
)
from tests.planning.conftest import hardware_fixtures_dir

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@pytest.mark.parametrize(
    "name",
    ["llama", "Llama-3.1-70B-Instruct", "org/Model_Name@main", "x" * 300, "---", "Ünïcode mödel"],
)
def test_namespace_names_are_dns_labels_within_63(name: str) -> None:
    namespace = namespace_for("bud", name)
    assert len(namespace) <= 63 and DNS_LABEL.match(namespace), namespace
    assert namespace.startswith("bud-")
    release = release_for(name)
    assert len(release) <= 53 and DNS_LABEL.match(release)


def test_names_that_truncate_alike_stay_unique() -> None:
    long_a, long_b = "m" * 80 + "-a", "m" * 80 + "-b"
    assert namespace_for("bud", long_a) != namespace_for("bud", long_b)
    assert namespace_for("bud", "Llama.3") != namespace_for("bud", "llama-3")
    assert namespace_for("bud", "llama") == namespace_for("bud", "llama")


def test_a_prefix_that_is_not_a_dns_label_is_refused() -> None:
    with pytest.raises(ValueError, match="DNS-1123"):
        namespace_for("Bud_", "llama")
    with pytest.raises(ValueError, match="no room"):
        namespace_for("b" * 60, "llama")


def test_pvc_paths() -> None:
    assert parse_pvc_path("pvc://ns/claim/dir") == ("ns", "claim", "dir")
    assert parse_pvc_path("pvc://ns/claim") == ("ns", "claim", "")
    with pytest.raises(KubernetesTargetError, match="pvc://<namespace>/<claim>"):
        parse_pvc_path("/models/llama")


def test_target_satisfies_the_interface() -> None:
    from kubernetes import client

    assert isinstance(KubernetesTarget(client.ApiClient()), ClusterTarget)


def test_the_target_gives_its_client_the_api_retry_deadline_of_its_timeouts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kubernetes import client

    from budcluster.adapters import kubernetes as kube
    from budcluster.settings import Settings
    from budcluster.targets.kubernetes import KubernetesTimeouts

    untouched, default, configured = client.ApiClient(), client.ApiClient(), client.ApiClient()
    KubernetesTarget(default)
    KubernetesTarget(configured, timeouts=KubernetesTimeouts(api_retry_s=4.5))
    assert kube.retry_deadline_s(untouched) == 60.0
    assert kube.retry_deadline_s(default) == 60.0
    assert kube.retry_deadline_s(configured) == 4.5
    with pytest.raises(ValueError, match="positive number of seconds"):
        kube.set_retry_deadline(untouched, 0)
    monkeypatch.setenv("BUDCLUSTER_KUBERNETES_API_RETRY_S", "7")
    assert Settings().kubernetes_api_retry_s == 7.0
    monkeypatch.setenv("BUDCLUSTER_KUBERNETES_API_RETRY_S", "0")
    with pytest.raises(ValueError, match="kubernetes_api_retry_s"):
        Settings()


def _node(labels: dict[str, str], **status: object) -> dict[str, object]:
    return {
        "metadata": {"name": labels.get("kubernetes.io/hostname", "n"), "labels": labels},
        "spec": status.pop("spec", {}),
        "status": status,
    }


def test_node_state_reads_readiness_taints_and_pressure() -> None:
    node = _node(
        {"kubernetes.io/hostname": "n1"},
        spec={
            "unschedulable": True,
            "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
        },
        conditions=[
            {"type": "Ready", "status": "True"},
            {"type": "MemoryPressure", "status": "True"},
            {"type": "DiskPressure", "status": "False"},
        ],
        allocatable={"nvidia.com/gpu": "8", "cpu": "64"},
    )
    state = node_state(node)
    assert state.ready and not state.schedulable
    assert state.taints == ["nvidia.com/gpu=present:NoSchedule"]
    assert state.pressure == ["MemoryPressure"]
    assert "kubernetes: allocatable nvidia.com/gpu=8" in state.notes()


def test_reconcile_fills_gaps_from_real_gfd_labels_and_flags_allocatable() -> None:
    path = (
        hardware_fixtures_dir()
        / "k8s-node-labels"
        / "nfd-gfd_h100-80gb-hbm3_amd-epyc-milan_mig-node-labels.json"
    )
    labels = json.loads(Path(path).read_text())
    node = _node(
        labels,
        conditions=[{"type": "Ready", "status": "True"}],
        allocatable={"nvidia.com/gpu": "4"},
    )
    collector = {
        "node_name": labels["kubernetes.io/hostname"],
        "memory": {"total_mib": 1024},
        "sources": [],
    }
    inventory = reconcile_node(json.dumps(collector), node, node_state(node))
    assert inventory.node_name == labels["kubernetes.io/hostname"]
    assert inventory.memory is not None and inventory.memory.total_mib == 1024
    assert (
        inventory.nvidia is not None and inventory.nvidia.gpus[0].product == "NVIDIA-H100-80GB-HBM3"
    )
    assert any(
        "allocatable nvidia.com/gpu=4 but the node reports 1 GPUs" in n for n in inventory.notes
    )
    assert "kubernetes: ready=true schedulable=true" in inventory.notes


def test_reconcile_takes_advertised_gpus_from_agreeing_labels() -> None:
    hw = hardware_fixtures_dir()
    labels = json.loads(
        (
            hw / "k8s-node-labels" / "nfd-gfd_h100-80gb-hbm3_amd-epyc-milan_mig-node-labels.json"
        ).read_text()
    )
    labels["nvidia.com/gpu.count"] = "8"
    node = _node(
        labels,
        conditions=[{"type": "Ready", "status": "True"}],
        allocatable={"nvidia.com/gpu": "8"},
    )
    collector = parse_nvidia_smi_capture(
        (
            hw / "nvidia-smi-captures" / "linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt"
        ).read_text(),
        "nvidia-smi",
    )
    inventory = reconcile_node(json.dumps(collector), node, node_state(node))
    assert inventory.nvidia is not None and len(inventory.nvidia.gpus) == 8
    assert any(n.startswith("kubernetes: GPUs 1-7 come from node labels") for n in inventory.notes)
    # The counts now agree, so there is no mismatch to flag.
    assert not any("but the node reports" in n for n in inventory.notes)


def test_reconcile_without_a_report_says_so() -> None:
    node = _node({"kubernetes.io/hostname": "n"}, conditions=[])
    inventory = reconcile_node(None, node, node_state(node))
    assert "kubernetes: no collector report for this node; labels only" in inventory.notes


DEPLOYMENT = {"spec": {"replicas": 1}, "status": {}}


def _pod(phase: str = "Pending", scheduled: bool = False, **container: object) -> dict[str, object]:
    return {
        "metadata": {"name": "p-1"},
        "status": {
            "phase": phase,
            "conditions": [{"type": "PodScheduled", "status": "True" if scheduled else "False"}],
            "containerStatuses": [container] if container else [],
        },
    }


def test_runtime_state_reasons() -> None:
    assert runtime_state(None, [], []) == (RuntimeState.ABSENT, None)
    done = {
        "metadata": {"generation": 2},
        "spec": {"replicas": 1},
        "status": {
            "observedGeneration": 2,
            "replicas": 1,
            "updatedReplicas": 1,
            "readyReplicas": 1,
            "availableReplicas": 1,
        },
    }
    assert runtime_state(done, [], []) == (RuntimeState.RUNNING, None)
    # During an update the old revision's pod is ready, but the new one is not rolled out.
    updating = {**done, "status": {**done["status"], "replicas": 2}}
    assert runtime_state(updating, [], [])[0] is RuntimeState.STARTING
    unobserved = {**done, "metadata": {"generation": 3}}
    assert runtime_state(unobserved, [], [])[0] is RuntimeState.STARTING
    deadline = {
        **updating,
        "status": {
            **updating["status"],
            "conditions": [
                {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
            ],
        },
    }
    assert runtime_state(deadline, [], [])[1].startswith("ProgressDeadlineExceeded")  # type: ignore[union-attr]
    pulling = _pod("Pending", True, state={"waiting": {"reason": "ErrImagePull"}})
    assert runtime_state(DEPLOYMENT, [pulling], [])[0] is RuntimeState.STARTING  # still retrying
    event = {
        "type": "Warning",
        "reason": "FailedScheduling",
        "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
    }
    state, reason = runtime_state(DEPLOYMENT, [_pod()], [event])
    assert state is RuntimeState.FAILED and reason == f"FailedScheduling: {event['message']}"
    pull = _pod(
        "Pending",
        True,
        state={"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}},
    )
    state, reason = runtime_state(DEPLOYMENT, [pull], [])
    assert (
        state is RuntimeState.FAILED
        and reason is not None
        and reason.startswith("ImagePullBackOff: pod p-1")
    )
    crash = _pod(
        "Running",
        True,
        state={"waiting": {"reason": "CrashLoopBackOff"}},
        lastState={"terminated": {"reason": "Error"}},
    )
    assert runtime_state(DEPLOYMENT, [crash], [])[1].startswith("CrashLoopBackOff")  # type: ignore[union-attr]
    oom = _pod(
        "Running",
        True,
        state={"waiting": {"reason": "CrashLoopBackOff"}},
        lastState={"terminated": {"reason": "OOMKilled"}},
    )
    assert runtime_state(DEPLOYMENT, [oom], [])[1].startswith("OOMKilled")  # type: ignore[union-attr]
    starting = runtime_state(DEPLOYMENT, [_pod("Running", True, state={"running": {}})], [event])
    assert starting == (RuntimeState.STARTING, "0/1 replicas ready")


def test_a_controller_directory_is_refused_as_a_kubernetes_model_source() -> None:
    from kubernetes.client import ApiClient

    from budcluster.targets.base import ModelSourceSpec
    from budcluster.targets.kubernetes import KubernetesTarget, KubernetesTargetError

    target = KubernetesTarget(ApiClient())
    for uri in ("/data/models/x", "file:///data/models/x"):
        with pytest.raises(KubernetesTargetError, match="a pod cannot read"):
            target.stage_model(ModelSourceSpec(uri), "x", ["node-1"])
