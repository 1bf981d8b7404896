"""Turn a NodeInventory into groups of interchangeable free devices the planner can use.

A device is free when no tool flags it in use and the node's scheduler has not handed it to
a pod. Kubernetes reports only how many devices of each resource pods request
(``NodeInventory.devices_in_use``), not which ones, so for each resource the devices in use
are the larger of the flagged ones and the requested count; the lowest indices among the
unflagged are taken first. Which GPUs a pod gets is the device plugin's choice, so on
Kubernetes a placement's indices are illustrative and only its count matters. Devices that
other deployments' plans claimed (``DevicesInUse.claimed``, claims.py) add to that count. The devices of
the runtime being replaced (``replacing``: its served model name) count as free: the runtime
chart's Recreate strategy stops its pods before the new ones ask for devices.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from budcluster.hardware.inventory import NodeInventory

MIB = 1024**2
GPU_RESOURCE = "nvidia.com/gpu"
GAUDI_RESOURCE = "habana.ai/gaudi"


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
    held_by_pods: int = 0
    """Devices of ``resource_name`` on the node that pods hold (Kubernetes), not in this group."""

    @property
    def count(self) -> int:
        return len(self.indices)


@dataclass(frozen=True)
class Occupancy:
    """One resource of one node whose devices pods hold."""

    node_name: str
    resource_name: str
    total: int
    in_use: int

    def describe(self) -> str:
        return (
            f"{self.node_name} has {self.total} {self.resource_name}, "
            f"{self.in_use} in use by other pods"
        )


@dataclass(frozen=True)
class _Device:
    resource: str
    index: int
    label: str
    product: str
    memory_mib: int | None
    busy: bool
    mig_profile: str | None = None
    uuid: str | None = None


def node_name(inventory: NodeInventory, position: int) -> str:
    return inventory.node_name or f"node-{position}"


def _nvidia_devices(inventory: NodeInventory) -> list[_Device]:
    nvidia = inventory.nvidia
    if nvidia is None:
        return []
    # The device plugin exposes mixed-strategy slices by profile name and single-strategy
    # slices as plain nvidia.com/gpu.
    mixed = nvidia.mig_strategy in {"mixed", None}
    devices: list[_Device] = []
    for gpu in nvidia.gpus:
        if gpu.mig_mode == "enabled":
            for mig in gpu.mig_devices:
                profile = mig.profile or (
                    f"{round(mig.memory_total_mib / 1024)}gb-slice"
                    if mig.memory_total_mib
                    else "slice"
                )
                devices.append(
                    _Device(
                        resource=f"nvidia.com/mig-{profile}" if mixed else GPU_RESOURCE,
                        index=gpu.index,
                        label=f"GPU {gpu.index} MIG {profile} (#{mig.index})",
                        product=f"{gpu.product} MIG {profile}",
                        memory_mib=mig.memory_total_mib,
                        busy=mig.in_use,
                        mig_profile=profile,
                        uuid=mig.uuid,
                    )
                )
            continue
        product = gpu.product or "GPU"
        devices.append(
            _Device(
                resource=GPU_RESOURCE,
                index=gpu.index,
                label=f"GPU {gpu.index} ({product})",
                product=product,
                memory_mib=gpu.memory_total_mib,
                busy=gpu.in_use,
                uuid=gpu.uuid,
            )
        )
    return devices


def _gaudi_devices(inventory: NodeInventory) -> list[_Device]:
    gaudi = inventory.gaudi
    if gaudi is None:
        return []
    devices: list[_Device] = []
    for card in gaudi.devices:
        model = card.model or "Gaudi"
        devices.append(
            _Device(
                resource=GAUDI_RESOURCE,
                index=card.index,
                label=f"HPU {card.index} ({model})",
                product=f"{model} ({card.generation})" if card.generation else model,
                memory_mib=card.memory_total_mib,
                busy=card.in_use,
            )
        )
    return devices


def _resources(devices: Iterable[_Device]) -> list[str]:
    return list(dict.fromkeys(d.resource for d in devices))


def _in_use(devices: list[_Device], held: int) -> int:
    """Devices of one resource in use: the flagged ones or the held count, whichever is more
    (the pods that hold devices are what makes the tools see them busy)."""
    return max(held, sum(d.busy for d in devices))


def _free(
    devices: list[_Device], inventory: NodeInventory, replacing: str | None
) -> tuple[list[_Device], dict[str, int]]:
    """The free devices, and per resource how many pods hold (when any do)."""
    free: list[_Device] = []
    held_by_pods: dict[str, int] = {}
    for resource in _resources(devices):
        mine = [d for d in devices if d.resource == resource]
        held = inventory.devices_held(resource, replacing)
        # Claimed devices are not busy yet (their runtime has not started), so they add to
        # what is seen in use rather than being maxed with it.
        claimed = inventory.devices_claimed(resource)
        unflagged = [d for d in mine if not d.busy]
        taken = _in_use(mine, held) - sum(d.busy for d in mine) + claimed
        free.extend(unflagged[taken:])
        if held or claimed:
            held_by_pods[resource] = _in_use(mine, held) + claimed
    return free, held_by_pods


def _groups(
    devices: list[_Device], name: str, kind: str, held_by_pods: dict[str, int]
) -> list[DeviceGroup]:
    whole: dict[tuple[str, int], DeviceGroup] = {}
    slices: list[DeviceGroup] = []
    for device in devices:
        if not device.memory_mib:
            continue
        if device.mig_profile is not None:
            slices.append(
                DeviceGroup(
                    node_name=name,
                    kind=kind,
                    product=device.product,
                    memory_bytes=device.memory_mib * MIB,
                    indices=[device.index],
                    labels=[device.label],
                    resource_name=device.resource,
                    mig_profile=device.mig_profile,
                    uuids=[device.uuid] if device.uuid else [],
                    held_by_pods=held_by_pods.get(device.resource, 0),
                )
            )
            continue
        group = whole.setdefault(
            (device.product, device.memory_mib),
            DeviceGroup(
                node_name=name,
                kind=kind,
                product=device.product,
                memory_bytes=device.memory_mib * MIB,
                indices=[],
                labels=[],
                resource_name=device.resource,
                held_by_pods=held_by_pods.get(device.resource, 0),
            ),
        )
        group.indices.append(device.index)
        group.labels.append(device.label)
        if device.uuid:
            group.uuids.append(device.uuid)
    return list(whole.values()) + slices


def cuda_groups(
    inventory: NodeInventory, name: str, replacing: str | None = None
) -> list[DeviceGroup]:
    free, held = _free(_nvidia_devices(inventory), inventory, replacing)
    return _groups(free, name, "cuda", held)


def hpu_groups(
    inventory: NodeInventory, name: str, replacing: str | None = None
) -> list[DeviceGroup]:
    free, held = _free(_gaudi_devices(inventory), inventory, replacing)
    return _groups(free, name, "hpu", held)


def occupancy(
    inventory: NodeInventory, name: str, kind: str, replacing: str | None = None
) -> list[Occupancy]:
    """The node's resources of ``kind`` ("cuda" or "hpu") whose devices pods hold."""
    devices = _nvidia_devices(inventory) if kind == "cuda" else _gaudi_devices(inventory)
    found: list[Occupancy] = []
    for resource in _resources(devices):
        mine = [d for d in devices if d.resource == resource]
        held = inventory.devices_held(resource, replacing)
        claimed = inventory.devices_claimed(resource)
        if held or claimed:
            in_use = min(len(mine), _in_use(mine, held) + claimed)
            found.append(Occupancy(name, resource, len(mine), in_use))
    return found
