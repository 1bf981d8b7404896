"""Turn a NodeInventory into groups of interchangeable free devices the planner can use."""

from __future__ import annotations

from dataclasses import dataclass, field

from budcluster.hardware.inventory import NodeInventory

MIB = 1024**2


@dataclass
class DeviceGroup:
    """Identical free devices on one node. A MIG slice is a group of one: vLLM cannot run
    tensor parallelism across MIG instances, so each slice is a device of its own size."""

    node_name: str
    kind: str
    product: str
    memory_bytes: int
    indices: list[int]
    labels: list[str]
    resource_name: str
    mig_profile: str | None = None
    uuids: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.indices)


def node_name(inventory: NodeInventory, position: int) -> str:
    return inventory.node_name or f"node-{position}"


def cuda_groups(inventory: NodeInventory, name: str) -> list[DeviceGroup]:
    nvidia = inventory.nvidia
    if nvidia is None:
        return []
    mixed = nvidia.mig_strategy in {"mixed", None}
    whole: dict[tuple[str, int], DeviceGroup] = {}
    groups: list[DeviceGroup] = []
    for gpu in nvidia.gpus:
        if gpu.mig_mode == "enabled":
            for mig in gpu.mig_devices:
                if mig.in_use or not mig.memory_total_mib:
                    continue
                profile = mig.profile or f"{round(mig.memory_total_mib / 1024)}gb-slice"
                groups.append(
                    DeviceGroup(
                        node_name=name,
                        kind="cuda",
                        product=f"{gpu.product} MIG {profile}",
                        memory_bytes=mig.memory_total_mib * MIB,
                        indices=[gpu.index],
                        labels=[f"GPU {gpu.index} MIG {profile} (#{mig.index})"],
                        # The device plugin exposes mixed-strategy slices by profile name and
                        # single-strategy slices as plain nvidia.com/gpu.
                        resource_name=f"nvidia.com/mig-{profile}" if mixed else "nvidia.com/gpu",
                        mig_profile=profile,
                        uuids=[mig.uuid] if mig.uuid else [],
                    )
                )
            continue
        if gpu.in_use or not gpu.memory_total_mib:
            continue
        key = (gpu.product or "GPU", gpu.memory_total_mib)
        group = whole.setdefault(
            key,
            DeviceGroup(
                node_name=name,
                kind="cuda",
                product=key[0],
                memory_bytes=key[1] * MIB,
                indices=[],
                labels=[],
                resource_name="nvidia.com/gpu",
            ),
        )
        group.indices.append(gpu.index)
        group.labels.append(f"GPU {gpu.index} ({key[0]})")
        if gpu.uuid:
            group.uuids.append(gpu.uuid)
    return list(whole.values()) + groups


def hpu_groups(inventory: NodeInventory, name: str) -> list[DeviceGroup]:
    gaudi = inventory.gaudi
    if gaudi is None:
        return []
    whole: dict[tuple[str, int], DeviceGroup] = {}
    for device in gaudi.devices:
        if device.in_use or not device.memory_total_mib:
            continue
        product = device.model or "Gaudi"
        key = (product, device.memory_total_mib)
        group = whole.setdefault(
            key,
            DeviceGroup(
                node_name=name,
                kind="hpu",
                product=f"{product} ({device.generation})" if device.generation else product,
                memory_bytes=key[1] * MIB,
                indices=[],
                labels=[],
                resource_name="habana.ai/gaudi",
            ),
        )
        group.indices.append(device.index)
        group.labels.append(f"HPU {device.index} ({product})")
    return list(whole.values())
