"""Fake nodes built from the real NFD / GPU Feature Discovery label fixtures, each with the
fixture hardware files its simulated kubelet feeds to the real ``budcluster.hardware``
parsers when the node-info collector pod runs there."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from budcluster.hardware.node_labels import read_label_sets

REPO_ROOT = Path(__file__).resolve().parents[2]
KUBELET_VERSION = "v1.31.4"


def hardware_fixtures_dir() -> Path:
    override = os.environ.get("BUDCLUSTER_HARDWARE_FIXTURES")
    path = Path(override) if override else REPO_ROOT.parent / "shared" / "fixtures" / "hardware"
    if not path.is_dir():
        raise FileNotFoundError(
            f"hardware fixtures not found at {path}; clone shared/ next to the repository "
            "or set BUDCLUSTER_HARDWARE_FIXTURES"
        )
    return path


@dataclass
class Taint:
    key: str
    effect: str = "NoSchedule"  # NoSchedule, PreferNoSchedule, NoExecute
    value: str | None = None

    def as_dict(self) -> dict[str, str]:
        taint = {"key": self.key, "effect": self.effect}
        if self.value is not None:
            taint["value"] = self.value
        return taint


@dataclass
class NodeSpec:
    """Everything the emulator needs to serve one node and run its kubelet."""

    name: str
    labels: dict[str, str]
    capacity: dict[str, str]
    taints: list[Taint] = field(default_factory=list)
    unschedulable: bool = False
    # Fixture files the kubelet parses for the collector: keys cpuinfo, lscpu,
    # nvidia_capture, hl_smi (paths relative to the hardware fixtures directory).
    hardware: dict[str, str] = field(default_factory=dict)
    os_image: str = "Ubuntu 22.04.4 LTS"
    internal_ip: str = "10.0.0.10"
    ready: bool = True

    def allocatable(self) -> dict[str, str]:
        """Capacity less what the kubelet reserves for the system (cpu and memory only)."""
        alloc = dict(self.capacity)
        if "cpu" in alloc:
            alloc["cpu"] = f"{int(alloc['cpu']) * 1000 - 500}m"
        if "memory" in alloc and alloc["memory"].endswith("Ki"):
            alloc["memory"] = f"{int(alloc['memory'][:-2]) - 2 * 1024 * 1024}Ki"
        return alloc

    def node_object(self, created: str) -> dict[str, Any]:
        labels = {
            **self.labels,
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": self.labels.get("kubernetes.io/arch", "amd64"),
        }
        kernel = self.labels.get(
            "feature.node.kubernetes.io/kernel-version.full", "5.15.0-105-generic"
        )
        spec: dict[str, Any] = {"podCIDR": f"10.244.{self.internal_ip.rsplit('.', 1)[-1]}.0/24"}
        if self.taints:
            spec["taints"] = [t.as_dict() for t in self.taints]
        if self.unschedulable:
            spec["unschedulable"] = True
        condition = {
            "lastHeartbeatTime": created,
            "lastTransitionTime": created,
        }
        conditions = [
            {**condition, "type": t, "status": "False", "reason": r, "message": m}
            for t, r, m in (
                (
                    "MemoryPressure",
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                ),
                ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            )
        ]
        conditions.append(
            {
                **condition,
                "type": "Ready",
                "status": "True" if self.ready else "False",
                "reason": "KubeletReady" if self.ready else "KubeletNotReady",
                "message": "kubelet is posting ready status"
                if self.ready
                else "container runtime network not ready",
            }
        )
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": labels,
                "annotations": {
                    "node.alpha.kubernetes.io/ttl": "0",
                    "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                },
            },
            "spec": spec,
            "status": {
                "capacity": dict(self.capacity),
                "allocatable": self.allocatable(),
                "conditions": conditions,
                "addresses": [
                    {"type": "InternalIP", "address": self.internal_ip},
                    {"type": "Hostname", "address": self.name},
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {
                    "machineID": _stable_id(self.name + ""),
                    "systemUUID": _stable_id(self.name + "uuid"),
                    "bootID": _stable_id(self.name + "boot"),
                    "kernelVersion": kernel,
                    "osImage": self.os_image,
                    "containerRuntimeVersion": "containerd://1.7.22",
                    "kubeletVersion": KUBELET_VERSION,
                    "kubeProxyVersion": KUBELET_VERSION,
                    "operatingSystem": "linux",
                    "architecture": labels["kubernetes.io/arch"],
                },
                "images": [],
            },
        }


def _stable_id(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


def _labels_from(path: Path) -> dict[str, str]:
    sets = read_label_sets(path.read_text())
    return dict(next(iter(sets.values())))


_BASE_CAPACITY = {
    "ephemeral-storage": "1870286336Ki",
    "hugepages-1Gi": "0",
    "hugepages-2Mi": "0",
    "pods": "110",
}


def h100_mig_node(name: str = "gpu-h100-mig-0", internal_ip: str = "10.0.0.11") -> NodeSpec:
    """The H100 80GB HBM3 node in MIG "mixed" strategy, labels verbatim from the NFD/GFD
    fixture (1 GPU split 3g.40gb + 2g.20gb + 2x 1g.10gb). The device plugin's mixed strategy
    advertises MIG profiles as resources and no whole ``nvidia.com/gpu``."""
    hw = hardware_fixtures_dir()
    labels = _labels_from(
        hw / "k8s-node-labels" / "nfd-gfd_h100-80gb-hbm3_amd-epyc-milan_mig-mixed-node-labels.json"
    )
    capacity = {
        **_BASE_CAPACITY,
        "cpu": "128",
        "memory": "1056466944Ki",
        "nvidia.com/gpu": "0",
    }
    for key, value in labels.items():
        if key.startswith("nvidia.com/mig-") and key.endswith(".count"):
            capacity["nvidia.com/" + key[len("nvidia.com/") : -len(".count")]] = value
    return NodeSpec(
        name,
        labels,
        capacity,
        hardware={
            "nvidia_capture": "nvidia-smi-captures/linux-x86_64__nvidia-h100-mig__590.48.01.txt",
            "cpuinfo": "cpu/proc-cpuinfo_amd-epyc-9654_genoa-zen4_archspec.txt",
        },
        internal_ip=internal_ip,
    )


def h100_node(name: str = "gpu-h100-0", gpus: int = 8, internal_ip: str = "10.0.0.14") -> NodeSpec:
    """An H100 node with MIG disabled and ``gpus`` whole GPUs. Labels come from the
    MIG-disabled NFD/GFD fixture with ``nvidia.com/gpu.count`` set to ``gpus`` (the fixture
    machine has 1); the kubelet's nvidia-smi capture still describes the fixture's 1 GPU."""
    hw = hardware_fixtures_dir()
    labels = _labels_from(
        hw / "k8s-node-labels" / "nfd-gfd_h100-80gb-hbm3_amd-epyc-milan_mig-node-labels.json"
    )
    labels["nvidia.com/gpu.count"] = str(gpus)
    capacity = {
        **_BASE_CAPACITY,
        "cpu": "128",
        "memory": "2113407340Ki",
        "nvidia.com/gpu": str(gpus),
    }
    return NodeSpec(
        name,
        labels,
        capacity,
        hardware={
            "nvidia_capture": "nvidia-smi-captures/linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt",
            "cpuinfo": "cpu/proc-cpuinfo_amd-epyc-9654_genoa-zen4_archspec.txt",
        },
        internal_ip=internal_ip,
    )


def _sapphire_rapids_labels() -> dict[str, str]:
    hw = hardware_fixtures_dir()
    text = (
        hw
        / "k8s-node-labels"
        / "nfd_intel-sapphirerapids-node_kubectl-label-list_container-experience-kits-excerpt.txt"
    ).read_text()
    return dict(next(iter(read_label_sets(text).values())))


def gaudi2_node(name: str = "gaudi2-0", internal_ip: str = "10.0.0.12") -> NodeSpec:
    """An Intel Gaudi2 (HL-225) node: 8 ``habana.ai/gaudi``, NFD ``pci-1da3.present`` on top of
    the Sapphire Rapids NFD excerpt, hl-smi fixture for the kubelet."""
    labels = _sapphire_rapids_labels()
    labels["feature.node.kubernetes.io/pci-1da3.present"] = "true"
    labels["habana.ai/gaudi"] = "true"  # set by the Habana device plugin's node labeller
    capacity = {**_BASE_CAPACITY, "cpu": "160", "memory": "1056466944Ki", "habana.ai/gaudi": "8"}
    return NodeSpec(
        name,
        labels,
        capacity,
        hardware={
            "hl_smi": "hl-smi/hl-smi_8x-HL-225-gaudi2_driver-1.21.1_vdwarakn-readme-excerpt.txt",
            "cpuinfo": "cpu/proc-cpuinfo_intel-xeon-platinum-8488C_sapphirerapids_aws_eessi.txt",
        },
        os_image="Rocky Linux 9.0 (Blue Onyx)",
        internal_ip=internal_ip,
    )


def amx_cpu_node(name: str = "cpu-amx-0", internal_ip: str = "10.0.0.13") -> NodeSpec:
    """A CPU-only Sapphire Rapids node with AMX (NFD label excerpt, cpuinfo and lscpu)."""
    labels = _sapphire_rapids_labels()
    capacity = {**_BASE_CAPACITY, "cpu": "112", "memory": "527966208Ki"}
    return NodeSpec(
        name,
        labels,
        capacity,
        hardware={
            "cpuinfo": "cpu/proc-cpuinfo_intel-xeon-platinum-8480plus_sapphirerapids_archspec.txt",
            "lscpu": "cpu/lscpu_intel-xeon-platinum-8462Yplus_sapphirerapids_2s_vllm-ascend-issue264-excerpt.txt",
        },
        os_image="Rocky Linux 9.0 (Blue Onyx)",
        internal_ip=internal_ip,
    )


def default_nodes() -> list[NodeSpec]:
    """The 3-node test cluster: H100 with MIG, Gaudi2, AMX CPU."""
    return [h100_mig_node(), gaudi2_node(), amx_cpu_node()]


def labels_json(spec: NodeSpec) -> str:
    return json.dumps(spec.labels, sort_keys=True)
