"""Simulated controllers, scheduler and kubelet: rollouts, placement by resources, selectors
and taints, DaemonSets, Jobs, PVCs, the collector and transfer ConfigMaps, fault switches."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from kubernetes import client, config

from budcluster.hardware.inventory import NodeInventory
from tests.k8s_emulator import Emulator, Taint, amx_cpu_node, gaudi2_node, h100_mig_node
from tests.k8s_emulator.waiting import eventually

Obj = dict[str, Any]


def _deployment(
    name: str, resources: Obj | None = None, image: str = "vllm/vllm-openai:v0.8.5", **pod: Any
) -> Obj:
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {"name": "engine", "image": image, "resources": resources or {}}
                    ],
                    **pod,
                },
            },
        },
    }


def _events(core: client.CoreV1Api, reason: str, namespace: str = "default") -> list[str]:
    return [e.message for e in core.list_namespaced_event(namespace).items if e.reason == reason]


def _pods(core: client.CoreV1Api, app: str) -> list[Any]:
    return list(core.list_namespaced_pod("default", label_selector=f"app={app}").items)


def _available(apps: client.AppsV1Api, name: str) -> bool:
    dep = apps.read_namespaced_deployment(name, "default")
    return (
        any(c.type == "Available" and c.status == "True" for c in dep.status.conditions or [])
        and dep.status.ready_replicas == dep.spec.replicas
    )


def test_deployment_rolls_out_onto_the_node_with_the_accelerators(api: client.ApiClient) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    apps.create_namespaced_deployment(
        "default",
        _deployment("tp2", {"limits": {"habana.ai/gaudi": "2", "cpu": "8", "memory": "64Gi"}}),
    )
    eventually(lambda: _available(apps, "tp2"), what="deployment available")
    dep = apps.read_namespaced_deployment("tp2", "default")
    assert dep.status.observed_generation == dep.metadata.generation
    assert [c.reason for c in dep.status.conditions] == [
        "MinimumReplicasAvailable",
        "NewReplicaSetAvailable",
    ]
    (pod,) = _pods(core, "tp2")
    assert pod.spec.node_name == "gaudi2-0" and pod.status.phase == "Running"
    assert (
        pod.spec.containers[0].resources.requests["habana.ai/gaudi"] == "2"
    )  # defaulted from limits
    assert pod.status.container_statuses[0].ready and pod.status.pod_ip
    assert any(
        "Successfully assigned default/" in m and "gaudi2-0" in m
        for m in _events(core, "Scheduled")
    )

    # A template change rolls out a new ReplicaSet and retires the old one.
    apps.patch_namespaced_deployment(
        "tp2", "default", {"spec": {"template": {"metadata": {"annotations": {"rev": "2"}}}}}
    )
    eventually(
        lambda: (
            sorted(rs.spec.replicas for rs in apps.list_namespaced_replica_set("default").items)
            == [0, 1]
            and _available(apps, "tp2")
            and len(_pods(core, "tp2")) == 1
        ),
        what="second revision rolled out",
    )
    assert (
        apps.read_namespaced_deployment("tp2", "default").metadata.annotations[
            "deployment.kubernetes.io/revision"
        ]
        == "2"
    )


def test_unschedulable_pod_stays_pending_with_the_schedulers_message(api: client.ApiClient) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    apps.create_namespaced_deployment(
        "default",
        _deployment(
            "toobig",
            {"limits": {"nvidia.com/gpu": "2"}},
            nodeSelector={"feature.node.kubernetes.io/cpu-model.vendor_id": "AMD"},
        ),
    )
    messages = eventually(lambda: _events(core, "FailedScheduling"), what="FailedScheduling event")
    assert messages[0].startswith(
        "0/3 nodes are available: 1 Insufficient nvidia.com/gpu, "
        "2 node(s) didn't match Pod's node affinity/selector."
    )
    (pod,) = _pods(core, "toobig")
    assert pod.status.phase == "Pending" and pod.spec.node_name is None
    scheduled = next(c for c in pod.status.conditions if c.type == "PodScheduled")
    assert scheduled.status == "False" and scheduled.reason == "Unschedulable"
    dep = apps.read_namespaced_deployment("toobig", "default")
    assert any(c.type == "Available" and c.status == "False" for c in dep.status.conditions)


def test_scheduler_honours_affinity_taints_and_capacity(
    emulator_factory: Callable[..., Emulator],
) -> None:
    tainted = gaudi2_node()
    tainted.taints = [Taint("habana.ai/gaudi", "NoSchedule", "present")]
    emulator = emulator_factory(nodes=[h100_mig_node(), tainted, amx_cpu_node()])
    api = config.new_client_from_config_dict(emulator.kubeconfig_dict())
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {
                                "key": "feature.node.kubernetes.io/pci-1da3.present",
                                "operator": "Exists",
                            }
                        ]
                    }
                ]
            }
        }
    }
    apps.create_namespaced_deployment(
        "default",
        _deployment("untolerated", {"limits": {"habana.ai/gaudi": "1"}}, affinity=affinity),
    )
    message = eventually(lambda: _events(core, "FailedScheduling"), what="taint rejection")[0]
    assert "1 node(s) had untolerated taint {habana.ai/gaudi: present}" in message
    assert "2 node(s) didn't match Pod's node affinity/selector" in message
    toleration = [{"key": "habana.ai/gaudi", "operator": "Exists", "effect": "NoSchedule"}]
    apps.create_namespaced_deployment(
        "default",
        _deployment(
            "tolerated",
            {"limits": {"habana.ai/gaudi": "8"}},
            affinity=affinity,
            tolerations=toleration,
        ),
    )
    eventually(lambda: _available(apps, "tolerated"), what="tolerating pod runs")
    assert _pods(core, "tolerated")[0].spec.node_name == "gaudi2-0"
    # All 8 cards are taken now: one more card does not fit.
    apps.create_namespaced_deployment(
        "default",
        _deployment(
            "ninth", {"limits": {"habana.ai/gaudi": "1"}}, affinity=affinity, tolerations=toleration
        ),
    )
    eventually(
        lambda: any(
            "1 Insufficient habana.ai/gaudi" in m for m in _events(core, "FailedScheduling")
        ),
        what="capacity exhausted",
    )
    # MIG profiles are resources of their own on the mixed-strategy H100 node.
    apps.create_namespaced_deployment(
        "default", _deployment("mig", {"limits": {"nvidia.com/mig-3g.40gb": "1"}})
    )
    eventually(lambda: _available(apps, "mig"))
    assert _pods(core, "mig")[0].spec.node_name == "gpu-h100-mig-0"


def test_daemonset_collector_writes_a_valid_inventory_per_node(
    api: client.ApiClient, k8s_emulator: Emulator
) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    labels = {"app.kubernetes.io/name": "node-info-collector", "app.kubernetes.io/instance": "nic"}
    apps.create_namespaced_daemon_set(
        "default",
        {
            "metadata": {"name": "node-info"},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [{"name": "collector", "image": "budcluster/node-info:1"}]
                    },
                },
            },
        },
    )
    names = {"gpu-h100-mig-0", "gaudi2-0", "cpu-amx-0"}
    maps = eventually(
        lambda: (
            {
                cm.metadata.name: cm
                for cm in core.list_namespaced_config_map(
                    "default", label_selector="app.kubernetes.io/name=node-info-collector"
                ).items
            }
            if len(
                core.list_namespaced_config_map(
                    "default", label_selector="app.kubernetes.io/name=node-info-collector"
                ).items
            )
            == 3
            else None
        ),
        what="three collector ConfigMaps",
    )
    assert set(maps) == {f"node-info-{n}" for n in names}
    h100 = NodeInventory.model_validate(
        json.loads(maps["node-info-gpu-h100-mig-0"].data["inventory.json"])
    )
    assert h100.node_name == "gpu-h100-mig-0"
    assert h100.nvidia is not None and h100.nvidia.gpus[0].mig_mode == "enabled"
    assert sorted(m.profile for m in h100.nvidia.gpus[0].mig_devices) == [
        "1g.10gb",
        "1g.10gb",
        "2g.20gb",
        "3g.40gb",
    ]
    gaudi = NodeInventory.model_validate(
        json.loads(maps["node-info-gaudi2-0"].data["inventory.json"])
    )
    assert gaudi.gaudi is not None and len(gaudi.gaudi.devices) == 8
    cpu = NodeInventory.model_validate(
        json.loads(maps["node-info-cpu-amx-0"].data["inventory.json"])
    )
    assert cpu.cpu is not None and cpu.cpu.has_amx and cpu.nvidia is None
    assert maps["node-info-cpu-amx-0"].metadata.labels["app.kubernetes.io/instance"] == "nic"
    eventually(
        lambda: apps.read_namespaced_daemon_set("node-info", "default").status.number_ready == 3
    )
    status = apps.read_namespaced_daemon_set("node-info", "default").status
    assert status.desired_number_scheduled == 3 and status.updated_number_scheduled == 3


def _job(
    name: str, labels: Obj | None = None, backoff: int = 0, env: list[Obj] | None = None
) -> Obj:
    return {
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff,
            "template": {
                "metadata": {"labels": labels or {}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "copy", "image": "budcluster/transfer:1", "env": env or []}
                    ],
                },
            },
        },
    }


def _condition(job: Any, type_: str) -> bool:
    return any(c.type == type_ and c.status == "True" for c in (job.status.conditions or []))


def test_transfer_job_completes_with_progress_configmap(api: client.ApiClient) -> None:
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    core.create_namespaced_persistent_volume_claim(
        "default",
        {
            "metadata": {"name": "weights"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "20Gi"}},
            },
        },
    )
    env = [{"name": "MODEL_BYTES", "value": "2000"}, {"name": "MODEL_FILES", "value": "4"}]
    batch.create_namespaced_job(
        "default", _job("fetch", {"app.kubernetes.io/name": "model-transfer"}, env=env)
    )
    eventually(
        lambda: _condition(batch.read_namespaced_job("fetch", "default"), "Complete"),
        what="job complete",
    )
    progress = json.loads(
        core.read_namespaced_config_map("fetch-progress", "default").data["progress.json"]
    )
    assert progress["state"] == "done" and progress["bytes_done"] == 2000
    assert progress["files_done"] == 4 and progress["result"]["bytes_total"] == 2000
    job = batch.read_namespaced_job("fetch", "default")
    assert job.status.succeeded == 1 and job.status.completion_time is not None
    pvc = core.read_namespaced_persistent_volume_claim("weights", "default")
    assert pvc.status.phase == "Bound" and pvc.status.capacity["storage"] == "20Gi"
    assert core.read_persistent_volume(pvc.spec.volume_name).spec.claim_ref.name == "weights"


def test_fault_switches(api: client.ApiClient, k8s_emulator: Emulator) -> None:
    core, apps, batch = client.CoreV1Api(api), client.AppsV1Api(api), client.BatchV1Api(api)
    k8s_emulator.inject_fault("ImagePullBackOff", image="missing/image")
    k8s_emulator.inject_fault(
        "CrashLoopBackOff", selector="app=crash", log="ValueError: bad engine args"
    )
    k8s_emulator.inject_fault("OOMKilled", selector="app=oom")
    k8s_emulator.inject_fault("JobFailed", selector="job-name=broken")
    apps.create_namespaced_deployment("default", _deployment("pull", image="missing/image:1"))
    apps.create_namespaced_deployment("default", _deployment("crash"))
    apps.create_namespaced_deployment("default", _deployment("oom"))
    batch.create_namespaced_job("default", _job("broken"))

    def waiting_reason(app: str) -> str | None:
        pods = _pods(core, app)
        statuses = pods[0].status.container_statuses if pods else None
        return statuses[0].state.waiting.reason if statuses and statuses[0].state.waiting else None

    eventually(lambda: waiting_reason("pull") == "ImagePullBackOff", what="ImagePullBackOff")
    assert any(m == 'Back-off pulling image "missing/image:1"' for m in _events(core, "BackOff"))
    assert _pods(core, "pull")[0].status.phase == "Pending"

    eventually(lambda: waiting_reason("crash") == "CrashLoopBackOff", what="CrashLoopBackOff")
    eventually(
        lambda: _pods(core, "crash")[0].status.container_statuses[0].restart_count >= 2,
        what="restarts grow",
    )
    crash_pod = _pods(core, "crash")[0].metadata.name
    assert "ValueError: bad engine args" in core.read_namespaced_pod_log(crash_pod, "default")
    assert any("Back-off restarting failed container engine" in m for m in _events(core, "BackOff"))

    eventually(lambda: waiting_reason("oom") == "CrashLoopBackOff")
    last = _pods(core, "oom")[0].status.container_statuses[0].last_state.terminated
    assert last.reason == "OOMKilled" and last.exit_code == 137

    eventually(
        lambda: _condition(batch.read_namespaced_job("broken", "default"), "Failed"),
        what="job failed",
    )
    failed = next(
        c
        for c in batch.read_namespaced_job("broken", "default").status.conditions
        if c.type == "Failed"
    )
    assert failed.reason == "BackoffLimitExceeded"

    k8s_emulator.clear_faults()
    apps.create_namespaced_deployment("default", _deployment("healthy", image="missing/image:1"))
    eventually(lambda: _available(apps, "healthy"), what="cleared faults no longer apply")
