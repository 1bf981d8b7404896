"""Prefect tasks around hardware detection and parsing (``budcluster.hardware``)."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from budcluster.hardware.collector import collect
from budcluster.hardware.cpuinfo import parse_cpuinfo
from budcluster.hardware.hlsmi import parse_hl_smi
from budcluster.hardware.inventory import NodeInventory
from budcluster.hardware.lscpu import parse_lscpu
from budcluster.hardware.merge import merge_fragments
from budcluster.hardware.node_labels import parse_node_labels, read_label_sets
from budcluster.hardware.nvidia_text import parse_nvidia_smi_capture, parse_query_gpu_csv
from budcluster.hardware.nvidia_xml import parse_nvidia_smi_xml
from tasks._logging import task_logger

_PARSERS = {
    "nvidia-smi-xml": parse_nvidia_smi_xml,
    "nvidia-smi-query": parse_query_gpu_csv,
    "nvidia-smi-capture": parse_nvidia_smi_capture,
    "hl-smi": parse_hl_smi,
    "lscpu": parse_lscpu,
    "cpuinfo": parse_cpuinfo,
}


# The tools (nvidia-smi, hl-smi) can hang briefly while a driver initialises: retry once.
@task(retries=1, retry_delay_seconds=10, timeout_seconds=180, task_run_name="detect-hardware")
def detect_hardware() -> NodeInventory:
    """Inventory the machine this task runs on."""
    inventory = NodeInventory.model_validate(collect())
    missing = [f"{t.name} ({t.reason})" for t in inventory.tools if not t.present]
    task_logger(__name__).info(
        "node %s: %s GPUs, %s HPUs; not present: %s",
        inventory.node_name,
        len(inventory.nvidia.gpus) if inventory.nvidia else 0,
        len(inventory.gaudi.devices) if inventory.gaudi else 0,
        ", ".join(missing) or "none",
    )
    return inventory


# Parsing saved files is deterministic: a failure is bad input, so no retries.
@task(retries=0, timeout_seconds=60, task_run_name="parse-hardware")
def parse_hardware(files: dict[str, str], node: str | None = None) -> NodeInventory:
    """Merge saved tool outputs. ``files`` maps a kind (nvidia-smi-xml, nvidia-smi-query,
    nvidia-smi-capture, hl-smi, lscpu, cpuinfo, node-labels) to a file path."""
    fragments = []
    for kind, path in files.items():
        text = Path(path).read_text()
        if kind == "node-labels":
            sets = read_label_sets(text)
            fragments.append(
                parse_node_labels(sets[node] if node else next(iter(sets.values())), path)
            )
        elif kind in _PARSERS:
            fragments.append(_PARSERS[kind](text, path))
        else:
            raise ValueError(
                f"unknown input kind {kind!r}; use one of {sorted(_PARSERS)} or node-labels"
            )
    return NodeInventory.model_validate(merge_fragments(*fragments))
