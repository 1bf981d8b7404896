"""GPUs the device plugin advertises beyond what the collector described: taken from the
GFD labels only when labels, allocatable and the collector agree; otherwise unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from budcluster.hardware.advertised_gpus import extend_to_advertised, normalised_product
from budcluster.hardware.inventory import NodeInventory
from budcluster.hardware.merge import merge_fragments
from budcluster.hardware.node_labels import parse_node_labels
from budcluster.hardware.nvidia_text import parse_nvidia_smi_capture

H100_CAPTURE = "nvidia-smi-captures/linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt"
H100_LABELS = "k8s-node-labels/nfd-gfd_h100-80gb-hbm3_amd-epyc-milan_mig-node-labels.json"
MIXED_LABELS = "k8s-node-labels/nfd-gfd_h100-80gb-hbm3_amd-epyc-milan_mig-mixed-node-labels.json"
MIG_CAPTURE = "nvidia-smi-captures/linux-x86_64__nvidia-h100-mig__590.48.01.txt"


def _labels(hw: Path, name: str = H100_LABELS, **changes: str) -> dict[str, str]:
    labels = {str(k): str(v) for k, v in json.loads((hw / name).read_text()).items()}
    labels.update({f"nvidia.com/{k.replace('_', '.')}": v for k, v in changes.items()})
    return labels


def _extend(
    hw: Path, labels: dict[str, str], allocatable: int | None, capture: str = H100_CAPTURE
) -> tuple[NodeInventory, NodeInventory, str | None]:
    """(before, after, note) for the collector's capture merged with the labels, as
    reconcile_node merges them."""
    from_labels = parse_node_labels(labels)
    collector = parse_nvidia_smi_capture((hw / capture).read_text(), "nvidia-smi")
    before = NodeInventory.from_fragment(merge_fragments(collector, from_labels))
    label_gpus: list[dict[str, Any]] = (from_labels.get("nvidia") or {}).get("gpus") or []
    outcome = extend_to_advertised(before, labels, label_gpus, allocatable)
    return before, outcome.inventory, outcome.note


def test_products_compare_across_gfd_dashes_and_nvidia_smi_spaces() -> None:
    assert normalised_product("NVIDIA-H100-80GB-HBM3") == normalised_product(
        "NVIDIA H100 80GB HBM3"
    )
    assert normalised_product("NVIDIA-A100-SXM4-40GB") != normalised_product(
        "NVIDIA H100 80GB HBM3"
    )


def test_advertised_gpus_that_labels_confirm_are_added_with_a_note(hw: Path) -> None:
    before, after, note = _extend(hw, _labels(hw, gpu_count="8"), allocatable=8)
    assert before.nvidia is not None and len(before.nvidia.gpus) == 1
    assert after.nvidia is not None
    gpus = after.nvidia.gpus
    assert [g.index for g in gpus] == list(range(8))
    assert gpus[0].source == "nvidia-smi-capture" and gpus[0].uuid  # the described GPU is kept
    added = gpus[1:]
    assert {g.source for g in added} == {"node-labels"}
    assert {g.memory_total_mib for g in added} == {81559}  # nvidia.com/gpu.memory
    assert {g.mig_mode for g in added} == {"disabled"} and not any(g.mig_devices for g in added)
    # One product name, so the planner sees eight identical GPUs.
    assert {g.product for g in gpus} == {"NVIDIA H100 80GB HBM3"}
    assert note is not None
    assert note.startswith("GPUs 1-7 come from node labels, not the collector")
    assert "nvidia.com/gpu=8" in note and "nvidia.com/gpu.count=8" in note
    assert "NVIDIA-H100-80GB-HBM3" in note


@pytest.mark.parametrize(
    ("changes", "allocatable", "why"),
    [
        ({}, 8, "GFD counts 1 GPU, the device plugin 8: the labels do not confirm 8"),
        ({"gpu_count": "8", "gpu_replicas": "4"}, 32, "time-slicing: replicas, not GPUs"),
        ({"gpu_count": "8", "gpu_product": "NVIDIA-A100-SXM4-40GB"}, 8, "another product"),
        ({"gpu_count": "8"}, 1, "allocatable is what the collector saw"),
        ({"gpu_count": "8"}, None, "no device plugin"),
    ],
)
def test_labels_that_do_not_agree_change_nothing(
    hw: Path, changes: dict[str, str], allocatable: int | None, why: str
) -> None:
    before, after, note = _extend(hw, _labels(hw, **changes), allocatable)
    assert note is None, why
    assert after == before, why


def test_a_mig_mixed_node_is_never_extended(hw: Path) -> None:
    # Even if labels and allocatable agreed on whole GPUs, MIG slices are not GPUs.
    labels = _labels(hw, MIXED_LABELS, gpu_count="2")
    before, after, note = _extend(hw, labels, allocatable=2, capture=MIG_CAPTURE)
    assert note is None and after == before
    assert before.nvidia is not None and before.nvidia.gpus[0].mig_mode == "enabled"
