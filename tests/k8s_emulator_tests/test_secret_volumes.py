"""The kubelet's Secret volumes: files per key with the volume's modes (0440 added for an
fsGroup), items and subPath, a missing Secret holding the pod in ContainerCreating with
FailedMount until it appears, and an optional one mounting empty."""

from __future__ import annotations

from typing import Any

from kubernetes import client, config

from tests.k8s_emulator import Emulator
from tests.k8s_emulator.waiting import eventually

Obj = dict[str, Any]


def _pod(name: str, volume: Obj, mounts: list[Obj], **pod_spec: Any) -> Obj:
    return {
        "metadata": {"name": name},
        "spec": {
            "containers": [{"name": "main", "image": "busybox:1.36", "volumeMounts": mounts}],
            "volumes": [{"name": "keys", **volume}],
            **pod_spec,
        },
    }


def _phase(core: client.CoreV1Api, name: str) -> str:
    return str(core.read_namespaced_pod(name, "default").status.phase)


def _files(emulator: Emulator, name: str) -> dict[str, tuple[bytes, int, int, int]]:
    def read() -> dict[str, tuple[bytes, int, int, int]]:
        pod = emulator.cluster.store.find(emulator.cluster.registry.get("pods"), "default", name)
        assert pod is not None
        files = emulator.cluster.kubelet.secret_files(pod, "main")
        return {p: (f.data, f.mode, f.uid, f.gid) for p, f in files.items()}

    return emulator.call(read)


def test_secret_volume_files_modes_items_and_fs_group(k8s_emulator: Emulator) -> None:
    core = client.CoreV1Api(config.new_client_from_config_dict(k8s_emulator.kubeconfig_dict()))
    core.create_namespaced_secret(
        "default",
        {"metadata": {"name": "keys"}, "data": {"a.pem": "QQ==", "b": "Qg=="}},
    )
    mount = [{"name": "keys", "mountPath": "/keys", "readOnly": True}]
    core.create_namespaced_pod(
        "default", _pod("plain", {"secret": {"secretName": "keys", "defaultMode": 0o400}}, mount)
    )
    core.create_namespaced_pod(
        "default",
        _pod(
            "grouped",
            {"secret": {"secretName": "keys", "defaultMode": 0o400}},
            mount,
            securityContext={"runAsUser": 1000, "fsGroup": 2000},
        ),
    )
    core.create_namespaced_pod(
        "default",
        _pod(
            "items",
            {
                "secret": {
                    "secretName": "keys",
                    "items": [{"key": "b", "path": "x/b", "mode": 0o600}],
                }
            },
            [*mount, {"name": "keys", "mountPath": "/one", "subPath": "x/b"}],
        ),
    )
    for name in ("plain", "grouped", "items"):
        eventually(lambda n=name: _phase(core, n) == "Running", what=f"{name} running")
    assert _files(k8s_emulator, "plain") == {
        "/keys/a.pem": (b"A", 0o400, 0, 0),
        "/keys/b": (b"B", 0o400, 0, 0),
    }
    # kubernetes/kubernetes#57923: the kubelet ORs 0440 into defaultMode for an fsGroup.
    assert _files(k8s_emulator, "grouped")["/keys/a.pem"] == (b"A", 0o440, 0, 2000)
    assert _files(k8s_emulator, "items") == {
        "/keys/x/b": (b"B", 0o600, 0, 0),
        "/one": (b"B", 0o600, 0, 0),
    }


def test_a_missing_secret_holds_the_pod_until_it_exists_unless_optional(
    k8s_emulator: Emulator,
) -> None:
    core = client.CoreV1Api(config.new_client_from_config_dict(k8s_emulator.kubeconfig_dict()))
    mount = [{"name": "keys", "mountPath": "/keys", "readOnly": True}]
    core.create_namespaced_pod("default", _pod("needs", {"secret": {"secretName": "late"}}, mount))
    core.create_namespaced_pod(
        "default",
        _pod("optional", {"secret": {"secretName": "absent", "optional": True}}, mount),
    )
    eventually(lambda: _phase(core, "optional") == "Running", what="optional volume mounts empty")
    assert _files(k8s_emulator, "optional") == {}

    def failed_mounts() -> list[str]:
        events = core.list_namespaced_event("default").items
        return [
            e.message
            for e in events
            if e.reason == "FailedMount" and e.involved_object.name == "needs"
        ]

    assert eventually(failed_mounts, what="FailedMount") == [
        'MountVolume.SetUp failed for volume "keys" : secret "late" not found'
    ]
    pod = core.read_namespaced_pod("needs", "default")
    assert pod.status.phase == "Pending"
    assert pod.status.container_statuses[0].state.waiting.reason == "ContainerCreating"

    core.create_namespaced_secret("default", {"metadata": {"name": "late"}, "data": {"k": "Sw=="}})
    eventually(lambda: _phase(core, "needs") == "Running", what="starts once the Secret exists")
    assert _files(k8s_emulator, "needs") == {"/keys/k": (b"K", 0o644, 0, 0)}
