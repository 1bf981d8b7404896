"""GPUs the device plugin advertises but the collector did not describe.

A collector pod can see fewer GPUs than the node has: it runs with only the devices its
runtime hands it, or its nvidia-smi output is cut short. The device plugin's allocatable
``nvidia.com/gpu`` is what the scheduler hands out, so the planner should count those
GPUs. They are taken from GPU Feature Discovery's labels only when the labels agree with
both the device plugin (``nvidia.com/gpu.count`` equals allocatable) and the collector
(``nvidia.com/gpu.product`` names the described GPUs' product), and never on a MIG node,
where allocatable counts slices rather than GPUs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from budcluster.hardware.inventory import NodeInventory, NvidiaGpu
from budcluster.hardware.node_labels import GFD

GPU_COUNT_LABEL = GFD + "gpu.count"
GPU_PRODUCT_LABEL = GFD + "gpu.product"
MIG_STRATEGY_LABEL = GFD + "mig.strategy"


@dataclass(frozen=True)
class AdvertisedGpus:
    """The outcome: the inventory to keep, and the note that says why (None: unchanged)."""

    inventory: NodeInventory
    note: str | None


def normalised_product(name: str) -> str:
    """GFD writes products with dashes (NVIDIA-H100-80GB-HBM3), nvidia-smi with spaces."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _index_ranges(indices: Sequence[int]) -> str:
    """``1-7`` or ``2, 5-6``: which GPU indices, as a person reads them."""
    parts: list[str] = []
    ordered = sorted(indices)
    start = previous = ordered[0]
    for index in [*ordered[1:], None]:
        if index is not None and index == previous + 1:
            previous = index
            continue
        parts.append(str(start) if start == previous else f"{start}-{previous}")
        if index is not None:
            start = previous = index
    return ", ".join(parts)


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.strip().isdigit() else None


def extend_to_advertised(
    inventory: NodeInventory,
    labels: Mapping[str, str],
    label_gpus: Sequence[Mapping[str, Any]],
    allocatable_gpus: int | None,
) -> AdvertisedGpus:
    """Add the GPUs that allocatable and GFD agree on but the collector did not describe.

    ``label_gpus`` are the GPU entries ``parse_node_labels`` made from the same labels (one
    per ``nvidia.com/gpu.count``). The added GPUs keep the labels' facts (source
    ``node-labels``, memory from ``nvidia.com/gpu.memory``) with MIG disabled, and take the
    described GPUs' product name, which the check has shown to be the same product, so
    the planner sees one group of identical GPUs.
    """
    nvidia = inventory.nvidia
    described = list(nvidia.gpus) if nvidia is not None else []
    count = _int(labels.get(GPU_COUNT_LABEL))
    product = labels.get(GPU_PRODUCT_LABEL)
    if (
        nvidia is None
        or not described
        or allocatable_gpus is None
        or allocatable_gpus <= len(described)
        or count != allocatable_gpus
        or product is None
        or labels.get(MIG_STRATEGY_LABEL) == "mixed"
        or any(g.mig_mode == "enabled" or g.mig_devices for g in described)
    ):
        return AdvertisedGpus(inventory, None)
    wanted = normalised_product(product)
    if any(normalised_product(g.product or "") != wanted for g in described):
        return AdvertisedGpus(inventory, None)
    taken = {g.index for g in described}
    added = [
        NvidiaGpu.model_validate(
            {
                **dict(entry),
                "product": described[0].product,
                "mig_mode": "disabled",
                "mig_devices": [],
                "source": "node-labels",
            }
        )
        for entry in label_gpus
        if int(entry["index"]) not in taken and int(entry["index"]) < allocatable_gpus
    ]
    if len(described) + len(added) != allocatable_gpus:
        return AdvertisedGpus(inventory, None)  # indices the labels cannot fill consistently
    gpus = sorted([*described, *added], key=lambda g: g.index)
    note = (
        f"GPUs {_index_ranges([g.index for g in added])} come from node labels, not the "
        f"collector: it described {len(described)} GPU(s) ({described[0].product}) while the "
        f"device plugin advertises nvidia.com/gpu={allocatable_gpus} and GPU Feature "
        f"Discovery labels {GPU_COUNT_LABEL}={count} of the same product ({product})"
    )
    extended = inventory.model_copy(
        update={"nvidia": nvidia.model_copy(update={"gpus": gpus})}, deep=True
    )
    return AdvertisedGpus(extended, note)
