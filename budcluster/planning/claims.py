"""Placement claims, the pure half: what a plan takes, and inventories with claims counted.

Node detection sees the devices of pods already bound. Another deploy-model run on the
same cluster that has planned but not yet rolled out holds devices detection cannot see;
its claim (node -> resource -> count, from its plan's placements) is added here to the
detected ``devices_in_use`` so the planner leaves those devices alone. Which claims count
is the store's rule (budcluster/store/placement_claims.py); this module only adds them.

Hosts clusters are covered the same way. Nothing else fills their ``devices_in_use``: the
tools' ``in_use`` flags mark the devices a running engine holds. Claimed devices are added
to the larger of the flags and the pods' count (devices.py), never maxed with it, since a
claimer's runtime has not started; between its engine starting and its status reaching
ready its devices count twice (flagged and claimed), which errs on the safe side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from budcluster.hardware.inventory import DevicesInUse, NodeInventory
from budcluster.planning.devices import GAUDI_RESOURCE, GPU_RESOURCE, node_name
from budcluster.planning.models import Placement, RuntimePlan

# node name -> extended resource -> device count
ClaimedDevices = dict[str, dict[str, int]]


def _resource(plan: RuntimePlan, placement: Placement, inventory: NodeInventory | None) -> str:
    """The extended resource a placement's devices are, as devices.py names them."""
    if plan.device_kind == "hpu":
        return GAUDI_RESOURCE
    if placement.mig_profile is None:
        return GPU_RESOURCE
    # The device plugin names mixed-strategy slices by profile and single-strategy ones
    # plain nvidia.com/gpu (devices._nvidia_devices).
    strategy = inventory.nvidia.mig_strategy if inventory and inventory.nvidia else None
    mixed = strategy in {"mixed", None}
    return f"nvidia.com/mig-{placement.mig_profile}" if mixed else GPU_RESOURCE


def claimed_devices(plan: RuntimePlan, inventories: Sequence[NodeInventory]) -> ClaimedDevices:
    """The accelerators ``plan`` takes on each node; empty for a CPU plan (CPU plans do
    not reserve devices: several CPU runtimes share a node by design)."""
    if plan.device_kind == "cpu":
        return {}
    by_name = {node_name(inventory, i): inventory for i, inventory in enumerate(inventories)}
    claimed: ClaimedDevices = {}
    for placement in plan.placements:
        resource = _resource(plan, placement, by_name.get(placement.node_name))
        on_node = claimed.setdefault(placement.node_name, {})
        on_node[resource] = on_node.get(resource, 0) + len(placement.devices)
    return claimed


def with_claimed_devices(
    inventories: Sequence[NodeInventory], claims: Mapping[str, Mapping[str, Mapping[str, int]]]
) -> list[NodeInventory]:
    """``inventories`` with every claim's devices added to ``devices_in_use``.

    ``claims``: deployment name -> node -> resource -> count. The entries are marked
    ``claimed`` and carry no holder, so a redeploy's ``replacing`` (which frees its own
    pods' devices) never frees another deployment's claim, even one serving the same
    model name. A claim on a node
    that detection no longer reports is ignored: there is nothing there to plan onto.
    """
    added: dict[str, dict[str, int]] = {}
    for by_node in claims.values():
        for node, resources in by_node.items():
            for resource, count in resources.items():
                if count > 0:
                    on_node = added.setdefault(node, {})
                    on_node[resource] = on_node.get(resource, 0) + count
    counted: list[NodeInventory] = []
    for position, inventory in enumerate(inventories):
        extra = added.get(node_name(inventory, position))
        if not extra:
            counted.append(inventory)
            continue
        in_use = list(inventory.devices_in_use) + [
            DevicesInUse(resource=resource, count=count, holder=None, claimed=True)
            for resource, count in sorted(extra.items())
        ]
        counted.append(inventory.model_copy(update={"devices_in_use": in_use}))
    return counted
