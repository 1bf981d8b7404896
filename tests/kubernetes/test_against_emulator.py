"""The KubernetesTarget end to end against the Kubernetes API emulator (tests/k8s_emulator).

Skipped until the emulator's fixture module exists; nothing here is stubbed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from budcluster.adapters import kubernetes as kube
from budcluster.targets.base import RolloutSpec, RuntimeState
from budcluster.targets.kubernetes import (
    KubernetesTarget,
    KubernetesTimeouts,
    namespace_for,
    release_for,
)
from tests.kubernetes.helpers import make_tp2_plan, make_tp2_rollout

emulator = pytest.importorskip("tests.k8s_emulator.fixtures")
nodes = pytest.importorskip("tests.k8s_emulator.nodes")
faults = pytest.importorskip("tests.k8s_emulator.faults")

FAST = KubernetesTimeouts(api_s=10, detect_s=60, transfer_s=60, ready_s=60)


def three_nodes() -> list[Any]:
    return [nodes.h100_mig_node(), nodes.gaudi2_node(), nodes.amx_cpu_node()]


@pytest.fixture
def k8s() -> Iterator[Any]:
    emu = emulator.start_emulator(flavour="kubernetes", nodes=[nodes.h100_node(), *three_nodes()])
    try:
        yield emu
    finally:
        emu.stop()


def target_for(emu: Any) -> KubernetesTarget:
    api = kube.api_client_from_kubeconfig(emu.kubeconfig_dict())
    return KubernetesTarget(api, timeouts=FAST)


@pytest.mark.parametrize(
    "flavour, kind", [("kubernetes", "kubernetes"), ("openshift", "openshift")]
)
def test_register_reads_version_and_platform(flavour: str, kind: str) -> None:
    emu = emulator.start_emulator(flavour=flavour, nodes=three_nodes())
    try:
        report = target_for(emu).verify_access()
    finally:
        emu.stop()
    assert report.kind == kind
    assert report.server_version and report.server_version.startswith("v1.")
    assert report.server_url == emu.url
    assert len(report.nodes) == 3


def test_detect_a_three_node_cluster() -> None:
    emu = emulator.start_emulator(flavour="kubernetes", nodes=three_nodes())
    try:
        target = target_for(emu)
        inventories = {i.node_name: i for i in target.detect_nodes()}
    finally:
        emu.stop()
    h100, gaudi, cpu = (inventories[n.name] for n in three_nodes())
    assert h100.nvidia is not None and any(g.mig_mode == "enabled" for g in h100.nvidia.gpus)
    assert gaudi.gaudi is not None and len(gaudi.gaudi.devices) == 8
    assert cpu.cpu is not None and cpu.cpu.has_amx and cpu.nvidia is None and cpu.gaudi is None
    assert all(
        any(n.startswith("kubernetes: ready=true") for n in i.notes) for i in inventories.values()
    )


def _deploy(k8s: Any, spec: RolloutSpec) -> KubernetesTarget:
    target = target_for(k8s)
    namespace, claim, _ = spec.model_path[len("pvc://") :].split("/")
    kube.apply_objects(
        target._api,
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim, "namespace": namespace},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        ],
        release="test-model",
    )
    target.roll_out(spec)
    return target


def _spec(name: str, **plan_update: Any) -> RolloutSpec:
    node = nodes.h100_node().name
    spec = make_tp2_rollout(make_tp2_plan(node), deployment_name=name)
    namespace = namespace_for("bud", "llama-70b")
    path = f"pvc://{namespace}/llama-model/llama"
    return RolloutSpec(name, spec.plan.model_copy(update=plan_update), path)


def test_deploy_tp2_onto_the_h100_node_then_tear_down(k8s: Any) -> None:
    spec = _spec("llama-70b")
    target = _deploy(k8s, spec)
    status = target.wait_until_settled("llama-70b")
    assert status.state is RuntimeState.RUNNING, status
    namespace, release = status.detail["namespace"], release_for("llama-70b")
    pods, _ = kube.list_objects(
        target._api, "Pod", namespace, label_selector=f"app.kubernetes.io/instance={release}"
    )
    assert [p["spec"]["nodeName"] for p in pods] == [nodes.h100_node().name]
    limits = pods[0]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "2"
    created = kube.list_release(target._api, release, namespace)
    assert {r.kind for r in created} >= {"Deployment", "Service", "ServiceAccount"}
    target.delete("llama-70b")
    assert (
        kube.list_release(
            target._api, release, namespace, kinds=["Deployment", "Service", "ServiceAccount"]
        )
        == []
    )
    # The model's PVC belongs to another release and stays.
    assert kube.get_object(
        target._api, kube.ObjectRef("PersistentVolumeClaim", "llama-model", namespace)
    )
    assert target.status("llama-70b").state is RuntimeState.ABSENT


def test_failed_scheduling_reason_and_rollback(k8s: Any) -> None:
    good = _spec("sched")
    target = _deploy(k8s, good)
    assert target.wait_until_settled("sched").state is RuntimeState.RUNNING
    previous = list(target.last_manifests)
    too_big = dict(good.plan.resources)
    too_big = {k: {**v, "nvidia.com/gpu": "64"} for k, v in too_big.items()}
    target.roll_out(
        RolloutSpec("sched", good.plan.model_copy(update={"resources": too_big}), good.model_path)
    )
    status = target.wait_until_settled("sched")
    assert status.state is RuntimeState.FAILED
    assert status.reason is not None and status.reason.startswith("FailedScheduling:")
    assert "nvidia.com/gpu" in status.reason
    assert target.rollback("sched", previous) is not None
    assert target.wait_until_settled("sched").state is RuntimeState.RUNNING


@pytest.mark.parametrize("fault", ["ImagePullBackOff", "CrashLoopBackOff", "OOMKilled"])
def test_pod_failures_become_the_status_reason(k8s: Any, fault: str) -> None:
    release = release_for(f"f-{fault.lower()}")
    k8s.cluster.faults.add(faults.Fault(fault, selector=f"app.kubernetes.io/instance={release}"))
    target = _deploy(k8s, _spec(f"f-{fault.lower()}"))
    status = target.wait_until_settled(f"f-{fault.lower()}")
    assert status.state is RuntimeState.FAILED
    assert status.reason is not None and status.reason.startswith(fault)
    if fault == "CrashLoopBackOff":
        assert any("emulated crash" in line for line in status.log_tail)


def test_watch_relists_after_410_gone(k8s: Any) -> None:
    api = target_for(k8s)._api
    kube.apply_objects(
        api, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "w"}}], "w"
    )
    k8s.cluster.store.set_history_size(5)
    calls: list[int] = []

    def done(maps: list[dict[str, Any]]) -> bool | None:
        calls.append(len(maps))
        if len(calls) == 1:
            # Enough writes after the list that its resourceVersion falls out of history.
            objects = [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": f"c{i}", "namespace": "w"},
                }
                for i in range(20)
            ]
            kube.apply_objects(api, objects, "w")
            return None
        return True if any(m["metadata"]["name"] == "c19" for m in maps) else None

    assert kube.wait_for(api, "ConfigMap", "w", done, timeout_s=20) is True
    assert len(calls) >= 2
