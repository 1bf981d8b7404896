"""Turn Kubernetes node labels (NFD + NVIDIA GPU Feature Discovery) into a fragment.

Accepted inputs: a JSON label map (``kubectl get node X -o json | jq .metadata.labels``),
a whole node object (``.metadata.labels`` is used), or the text of
``kubectl label node --list --all`` (several nodes, one "Listing labels for Node./NAME:"
header each).
"""

from __future__ import annotations

import json
import re
from typing import Any

from budcluster.hardware._text import INTERESTING_FLAGS, NFD_CPUID_TO_FLAG, Fragment, source_record

NFD = "feature.node.kubernetes.io/"
GFD = "nvidia.com/"
PCI_VENDOR_NVIDIA = "10de"
PCI_VENDOR_HABANA = "1da3"
_LIST_HEADER = re.compile(r"^Listing labels for Node\./(.+?):\s*$")
_MIG_LABEL = re.compile(r"^nvidia\.com/mig-(\d+g\.\d+gb)\.(count|memory|product|multiprocessors)$")


def read_label_sets(text: str) -> dict[str, dict[str, str]]:
    """Every node's labels in the text, keyed by node name ("" when the input has none)."""
    stripped = text.strip()
    if stripped.startswith("{"):
        data: Any = json.loads(stripped)
        if isinstance(data, dict) and isinstance(data.get("metadata"), dict):
            name = str(data["metadata"].get("name", ""))
            return {name: {str(k): str(v) for k, v in data["metadata"].get("labels", {}).items()}}
        if not isinstance(data, dict):
            raise ValueError("node labels JSON must be an object of label -> value")
        labels = {str(k): str(v) for k, v in data.items()}
        return {labels.get("kubernetes.io/hostname", ""): labels}
    nodes: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        header = _LIST_HEADER.match(line)
        if header:
            current = nodes.setdefault(header.group(1), {})
            continue
        if current is not None and "=" in line:
            key, value = line.strip().split("=", 1)
            current[key] = value
    if not nodes:
        raise ValueError(
            "node labels: expected a JSON label map or 'kubectl label node --list' output"
        )
    return nodes


def _int(labels: dict[str, str], key: str) -> int | None:
    value = labels.get(key)
    return int(value) if value is not None and value.strip().isdigit() else None


def _cpu(labels: dict[str, str]) -> Fragment | None:
    cpuid = {
        key[len(NFD) + len("cpu-cpuid.") :] for key in labels if key.startswith(NFD + "cpu-cpuid.")
    }
    vendor = labels.get(NFD + "cpu-model.vendor_id")
    if not cpuid and vendor is None:
        return None
    flags = {NFD_CPUID_TO_FLAG[name] for name in cpuid if name in NFD_CPUID_TO_FLAG}
    arch = labels.get("kubernetes.io/arch")
    return {
        "architecture": {"amd64": "x86_64", "arm64": "aarch64"}.get(arch or "", arch),
        "vendor": vendor,
        "family": _int(labels, NFD + "cpu-model.family"),
        "model": _int(labels, NFD + "cpu-model.id"),
        "threads_per_core": 2
        if labels.get(NFD + "cpu-hardware_multithreading") == "true"
        else None,
        "isa_flags": [flag for flag in INTERESTING_FLAGS if flag in flags],
        "numa_nodes": [],
        "source": "node-labels",
    }


def _mig_devices(labels: dict[str, str]) -> list[Fragment]:
    profiles: dict[str, dict[str, str]] = {}
    for key, value in labels.items():
        match = _MIG_LABEL.match(key)
        if match:
            profiles.setdefault(match.group(1), {})[match.group(2)] = value
    devices: list[Fragment] = []
    for profile in sorted(profiles, key=lambda p: (-int(p.split("g.")[0]), p)):
        facts = profiles[profile]
        for _ in range(int(facts.get("count", "0"))):
            devices.append(
                {
                    "index": len(devices),
                    "profile": profile,
                    "memory_total_mib": int(facts["memory"]) if "memory" in facts else None,
                    "multiprocessor_count": (
                        int(facts["multiprocessors"]) if "multiprocessors" in facts else None
                    ),
                }
            )
    return devices


def _nvidia(labels: dict[str, str], notes: list[str]) -> Fragment | None:
    count = _int(labels, GFD + "gpu.count")
    if count is None:
        return None
    strategy = labels.get(GFD + "mig.strategy")
    product = labels.get(GFD + "gpu.product")
    memory = _int(labels, GFD + "gpu.memory")
    driver = labels.get(GFD + "cuda.driver-version.full") or ".".join(
        labels[GFD + f"cuda.driver.{part}"]
        for part in ("major", "minor", "rev")
        if GFD + f"cuda.driver.{part}" in labels
    )
    cuda = labels.get(GFD + "cuda.runtime-version.full") or ".".join(
        labels[GFD + f"cuda.runtime.{part}"]
        for part in ("major", "minor")
        if GFD + f"cuda.runtime.{part}" in labels
    )
    major, minor = labels.get(GFD + "gpu.compute.major"), labels.get(GFD + "gpu.compute.minor")
    mig_devices = _mig_devices(labels) if strategy == "mixed" else []
    single_mig = strategy == "single" and product is not None and "-MIG-" in product
    mig_config = labels.get(GFD + "mig.config")
    gpus: list[Fragment] = []
    for index in range(count):
        gpus.append(
            {
                "index": index,
                "product": product,
                "memory_total_mib": memory,
                "driver_version": driver or None,
                "cuda_version": cuda or None,
                "compute_capability": f"{major}.{minor}" if major and minor else None,
                "architecture": labels.get(GFD + "gpu.family"),
                "mig_mode": "enabled"
                if mig_devices or single_mig
                else ("disabled" if mig_config == "all-disabled" else None),
                "mig_devices": mig_devices if index == 0 else [],
                "source": "node-labels",
            }
        )
    if mig_devices and count > 1:
        notes.append(
            "node labels: GFD counts MIG devices per node, not per GPU; all are listed under GPU 0"
        )
    return {
        "attached_gpus": count,
        "driver_version": driver or None,
        "cuda_version": cuda or None,
        "mig_strategy": strategy,
        "machine": labels.get(GFD + "gpu.machine"),
        "gpus": gpus,
        "source": "node-labels",
    }


def parse_node_labels(labels: dict[str, str], origin: str = "node labels") -> Fragment:
    notes: list[str] = []
    fragment: Fragment = {
        "node_name": labels.get("kubernetes.io/hostname"),
        "sources": [source_record("node-labels", origin)],
        "pci_vendors_present": sorted(
            key[len(NFD + "pci-") :].split(".")[0].split("_")[-1]
            for key, value in labels.items()
            if key.startswith(NFD + "pci-") and key.endswith(".present") and value == "true"
        ),
    }
    cpu = _cpu(labels)
    if cpu:
        fragment["cpu"] = cpu
    nvidia = _nvidia(labels, notes)
    if nvidia:
        fragment["nvidia"] = nvidia
    kernel = labels.get(NFD + "kernel-version.full")
    os_id = labels.get(NFD + "system-os_release.ID")
    if kernel or os_id:
        version = labels.get(NFD + "system-os_release.VERSION_ID")
        fragment["host"] = {
            "kernel": kernel,
            "os": f"{os_id} {version}" if os_id and version else os_id,
            "source": "node-labels",
        }
    if PCI_VENDOR_HABANA in fragment["pci_vendors_present"]:
        notes.append(
            "node labels: a Habana (pci-1da3) device is present; labels do not say how many "
            "Gaudi cards or their memory, run hl-smi on the node"
        )
    if notes:
        fragment["notes"] = notes
    return fragment
