"""The KubernetesTarget end to end against the Kubernetes API emulator (tests/k8s_emulator).

Every case of issue #7's "Done means": register both flavours, detect the 3-node cluster,
deploy a TP-2 model onto the right node with the right resources, watch it become ready,
tear it down exactly, and the failure paths (FailedScheduling, ImagePullBackOff,
CrashLoopBackOff, OOMKilled, watch 410) with rollback or delete. Nothing is stubbed: the
target talks HTTP to the emulator through the official client.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from budcluster.adapters import kubernetes as kube
from budcluster.targets.base import RolloutSpec, RuntimeState
from budcluster.targets.kubernetes import (
    KubernetesTarget,
    KubernetesTargetError,
    KubernetesTimeouts,
    release_for,
)
from tests.k8s_emulator.emulator import Emulator
from tests.k8s_emulator.fixtures import emulator_factory  # noqa: F401  (pytest fixture)
from tests.k8s_emulator.nodes import amx_cpu_node, gaudi2_node, h100_mig_node, h100_node
from tests.kubernetes.helpers import (
    MODEL_NAMESPACE,
    model_rollout,
    target_for,
    target_with_model_volume,
)

FAST = KubernetesTimeouts(api_s=10, detect_s=20, transfer_s=20, ready_s=20, resync_s=1)
INSTANCE = "app.kubernetes.io/instance"
Factory = Callable[..., Emulator]


def three_nodes() -> list[Any]:
    return [h100_mig_node(), gaudi2_node(), amx_cpu_node()]


@pytest.fixture
def k8s(emulator_factory: Factory) -> Emulator:  # noqa: F811
    """The 3-node cluster plus an 8-GPU H100 node (the MIG node has no whole GPU)."""
    return emulator_factory(flavour="kubernetes", nodes=[h100_node(), *three_nodes()])


# --- register ---------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["kubernetes", "openshift"])
def test_register_reads_version_and_platform(emulator_factory: Factory, flavour: str) -> None:  # noqa: F811
    emu = emulator_factory(flavour=flavour, nodes=three_nodes())
    target = target_for(emu, FAST)
    report = target.verify_access()
    assert report.kind == flavour
    assert report.server_version == "v1.31.4"
    assert report.server_url == emu.url
    assert report.nodes == sorted(n.name for n in three_nodes())
    health = target.node_health()
    assert set(health) == set(report.nodes)
    assert all(s.ready and s.schedulable and not s.pressure for s in health.values())


# --- detect -----------------------------------------------------------------------------------


def test_detect_a_three_node_cluster(emulator_factory: Factory) -> None:  # noqa: F811
    emu = emulator_factory(flavour="kubernetes", nodes=three_nodes())
    target = target_for(emu, FAST)
    inventories = {i.node_name: i for i in target.detect_nodes()}
    h100, gaudi, cpu = (inventories[n.name] for n in three_nodes())

    assert h100.nvidia is not None and len(h100.nvidia.gpus) == 1
    assert h100.nvidia.gpus[0].mig_mode == "enabled"
    assert "H100" in (h100.nvidia.gpus[0].product or "")
    assert len(h100.nvidia.gpus[0].mig_devices) == 4
    assert gaudi.gaudi is not None and len(gaudi.gaudi.devices) == 8 and gaudi.nvidia is None
    assert cpu.cpu is not None and cpu.cpu.has_amx and cpu.nvidia is None and cpu.gaudi is None
    for inventory in inventories.values():
        assert "kubernetes: ready=true schedulable=true" in inventory.notes
    assert "kubernetes: allocatable habana.ai/gaudi=8" in gaudi.notes
    # Allocatable was read and reconciled: the MIG node advertises no whole GPU.
    assert "kubernetes: allocatable nvidia.com/gpu=0" in h100.notes

    # The collector ran as the right DaemonSet variant on each node.
    pods = {p["spec"]["nodeName"]: p for p in emu.objects("pods", namespace="bud-system")}
    assert set(pods) == set(inventories)
    assert pods[h100.node_name]["spec"].get("runtimeClassName") == "nvidia"
    assert pods[cpu.node_name]["spec"].get("runtimeClassName") is None
    gaudi_env = {
        e["name"] for c in pods[gaudi.node_name]["spec"]["containers"] for e in c.get("env", [])
    }
    assert "HABANA_VISIBLE_DEVICES" in gaudi_env


# --- stage a model ----------------------------------------------------------------------------


def test_stage_model_follows_the_transfer_job(k8s: Emulator) -> None:
    from budcluster.targets.base import ModelSourceSpec, TransferProgress

    target = target_for(k8s, FAST)
    seen: list[TransferProgress] = []
    source = ModelSourceSpec(
        "s3://models/llama",
        {"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret"},
    )
    staged = target.stage_model(source, "llama-70b", [h100_node().name], seen.append)

    namespace = MODEL_NAMESPACE
    assert staged.path.startswith(f"pvc://{namespace}/")
    assert staged.bytes == 1_073_741_824 and staged.files == 4 and staged.manifest_sha256
    # Progress was followed as the Job wrote it: 0 %, 50 %, 100 %.
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and 0.5 in fractions
    # The S3 keys' Secret served the Job and is gone once it finished.
    secret = k8s.objects("secrets", namespace=namespace)
    assert not [s["metadata"]["name"] for s in secret if "source" in s["metadata"]["name"]]
    pvcs = k8s.objects("persistentvolumeclaims", namespace=namespace)
    assert [p["status"]["phase"] for p in pvcs] == ["Bound"]

    # A rerun replaces the finished Job (its template is immutable) and completes again.
    again = target.stage_model(source, "llama-70b", [h100_node().name])
    assert again.path == staged.path


def test_a_failed_transfer_job_is_an_error(k8s: Emulator) -> None:
    from budcluster.targets.base import ModelSourceSpec

    k8s.inject_fault("JobFailed", selector="app.kubernetes.io/name=model-transfer")
    with pytest.raises(KubernetesTargetError, match="source unreachable"):
        target_for(k8s, FAST).stage_model(ModelSourceSpec("s3://models/x"), "broken", [])


# --- deploy, ready, teardown --------------------------------------------------------------------


def _deployed(k8s: Emulator, spec: RolloutSpec) -> KubernetesTarget:
    target = target_with_model_volume(k8s, FAST)
    target.roll_out(spec)
    return target


def test_deploy_tp2_onto_the_h100_node_then_tear_down(k8s: Emulator) -> None:
    spec = model_rollout("llama-70b")
    assert spec.plan.tensor_parallel_size == 2
    target = _deployed(k8s, spec)
    manifests = {kube.ObjectRef.of(o) for o in target.last_manifests}
    status = target.wait_until_settled("llama-70b")
    assert status.state is RuntimeState.RUNNING, status
    release = release_for("llama-70b")
    assert status.endpoint_url == f"http://{release}.{MODEL_NAMESPACE}.svc:8000"

    pods = k8s.objects("pods", namespace=MODEL_NAMESPACE)
    assert [p["spec"]["nodeName"] for p in pods] == [h100_node().name]
    pod = pods[0]
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/hostname": h100_node().name}
    engine = pod["spec"]["containers"][0]
    assert engine["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert engine["resources"]["requests"]["nvidia.com/gpu"] == "2"
    assert "--tensor-parallel-size" in engine["args"]
    assert engine["args"][engine["args"].index("--tensor-parallel-size") + 1] == "2"
    model_mount = next(m for m in engine["volumeMounts"] if m.get("subPath") == "llama")
    assert model_mount["readOnly"] is True
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert claims == ["llama-model"]

    created = set(kube.list_release(target._api, release, MODEL_NAMESPACE))
    assert created == manifests  # the release holds exactly what was rendered
    assert {r.kind for r in created} >= {"Deployment", "Service", "ServiceAccount"}

    target.delete("llama-70b")
    assert kube.list_release(target._api, release, MODEL_NAMESPACE) == []
    assert target.status("llama-70b").state is RuntimeState.ABSENT
    # The model's PVC belongs to another release and stays, with its namespace.
    assert [p["metadata"]["name"] for p in k8s.objects("persistentvolumeclaims")] == ["llama-model"]
    # Garbage collection removes the pods the Deployment owned.
    kube.wait_for(
        target._api,
        "Pod",
        MODEL_NAMESPACE,
        lambda pods: True if not pods else None,
        timeout_s=10,
    )


# --- failure paths ----------------------------------------------------------------------------


def test_failed_scheduling_reason_then_rollback(k8s: Emulator) -> None:
    good = model_rollout("sched")
    target = _deployed(k8s, good)
    assert target.wait_until_settled("sched").state is RuntimeState.RUNNING
    previous = list(target.last_manifests)
    too_big = {k: {**v, "nvidia.com/gpu": "64"} for k, v in good.plan.resources.items()}
    target.roll_out(model_rollout("sched", resources=too_big))

    status = target.wait_until_settled("sched")
    assert status.state is RuntimeState.FAILED
    assert status.reason is not None and status.reason.startswith("FailedScheduling: 0/4 nodes")
    assert "Insufficient nvidia.com/gpu" in status.reason  # the scheduler's own words

    rolled = target.undo_rollout("sched", previous)
    assert rolled.state in (RuntimeState.STARTING, RuntimeState.RUNNING)
    assert target.wait_until_settled("sched").state is RuntimeState.RUNNING
    deployment = kube.get_object(
        target._api, kube.ObjectRef("Deployment", release_for("sched"), MODEL_NAMESPACE)
    )
    assert deployment is not None
    limits = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "2"


def test_image_pull_backoff_on_update_rolls_back(k8s: Emulator) -> None:
    good = model_rollout("pull")
    target = _deployed(k8s, good)
    assert target.wait_until_settled("pull").state is RuntimeState.RUNNING
    previous = list(target.last_manifests)
    k8s.inject_fault("ImagePullBackOff", image="v9.9.9-missing")
    target.roll_out(model_rollout("pull", image="vllm/vllm-openai:v9.9.9-missing"))

    status = target.wait_until_settled("pull")
    assert status.state is RuntimeState.FAILED
    assert status.reason is not None and status.reason.startswith("ImagePullBackOff: pod ")

    target.undo_rollout("pull", previous)
    assert target.wait_until_settled("pull").state is RuntimeState.RUNNING
    images = {
        p["spec"]["containers"][0]["image"] for p in k8s.objects("pods", namespace=MODEL_NAMESPACE)
    }
    assert images == {good.plan.image}


@pytest.mark.parametrize("fault", ["CrashLoopBackOff", "OOMKilled"])
def test_a_first_rollout_that_crashes_is_deleted(k8s: Emulator, fault: str) -> None:
    name = f"f-{fault.lower()}"
    release = release_for(name)
    k8s.inject_fault(fault, selector=f"{INSTANCE}={release}")
    target = _deployed(k8s, model_rollout(name))

    status = target.wait_until_settled(name)
    assert status.state is RuntimeState.FAILED
    assert status.reason is not None and status.reason.startswith(fault)
    if fault == "CrashLoopBackOff":
        assert any("emulated crash" in line for line in status.log_tail)

    # No previous revision: undoing the rollout deletes what it created.
    assert target.undo_rollout(name, None).state is RuntimeState.ABSENT
    assert kube.list_release(target._api, release, MODEL_NAMESPACE) == []


def test_watch_relists_after_410_gone(k8s: Emulator) -> None:
    api = target_for(k8s, FAST)._api
    kube.apply_objects(
        api, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "w"}}], "w"
    )
    k8s.set_history_size(5)
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

    relists: list[int] = []
    assert kube.wait_for(api, "ConfigMap", "w", done, timeout_s=20, on_relist=relists.append)
    assert relists == [1]  # the watch from the first list's resourceVersion got 410
    assert calls[-1] >= 20  # the relist saw every ConfigMap


def test_rollout_manifests_are_yaml_of_what_was_applied(k8s: Emulator) -> None:
    import yaml

    target = target_with_model_volume(k8s, FAST)
    status = target.roll_out(model_rollout("yaml"))
    documents = list(yaml.safe_load_all(status.detail["manifests"]))
    assert documents == target.last_manifests
    assert json.loads(json.dumps(documents))  # plain data, storable as a revision


def test_openshift_rollout_has_a_route_and_teardown_removes_it(
    emulator_factory: Factory,  # noqa: F811
    tmp_path: Path,
) -> None:
    import subprocess

    from tests.k8s_emulator.fixtures import kubectl_path

    emu = emulator_factory(flavour="openshift", nodes=[h100_node(), *three_nodes()])
    target = target_with_model_volume(emu, FAST)
    target.roll_out(model_rollout("ocp"))
    assert target.wait_until_settled("ocp").state is RuntimeState.RUNNING
    release = release_for("ocp")
    kinds = {r.kind for r in kube.list_release(target._api, release, MODEL_NAMESPACE)}
    assert "Route" in kinds
    pod = emu.objects("pods", namespace=MODEL_NAMESPACE)[0]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True

    # kubectl, an independent client, agrees that the Deployment is available.
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    done = subprocess.run(
        [
            str(kubectl_path()),
            "--kubeconfig",
            str(kubeconfig),
            "-n",
            MODEL_NAMESPACE,
            "wait",
            "--for=condition=Available",
            f"deployment/{release}",
            "--timeout=10s",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "condition met" in done.stdout

    target.delete("ocp")
    assert kube.list_release(target._api, release, MODEL_NAMESPACE) == []
    assert emu.objects("routes", "route.openshift.io", MODEL_NAMESPACE) == []
