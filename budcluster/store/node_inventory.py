"""Turning a detected NodeInventory into the typed columns of a node snapshot, and the
recorded inventories of every cluster back into NodeInventories."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from budcluster.hardware.inventory import NodeInventory, NodeScheduling
from budcluster.store.models import Cluster, ClusterStatus, Node
from budcluster.store.nodes import NodeObservation

MIB = 1024 * 1024


def observation_from_inventory(
    inventory: NodeInventory, *, name: str | None = None, detected_at: datetime | None = None
) -> NodeObservation:
    """The snapshot of one node: the whole report as JSON plus the columns people query."""
    node_name = name or inventory.node_name or "unknown"
    kind, count, model, memory_mib = _accelerators(inventory)
    cpu = inventory.cpu
    cores = None
    if cpu and cpu.sockets and cpu.cores_per_socket:
        cores = cpu.sockets * cpu.cores_per_socket
    elif cpu and cpu.logical_cpus:
        cores = cpu.logical_cpus
    return NodeObservation(
        name=node_name,
        detected_at=detected_at or _collected_at(inventory),
        hardware=inventory.model_dump(mode="json"),
        cpu_model=cpu.model_name if cpu else None,
        cpu_cores=cores,
        memory_bytes=inventory.memory.total_mib * MIB if inventory.memory else None,
        accelerator_kind=kind,
        accelerator_count=count,
        accelerator_model=model,
        accelerator_memory_bytes=memory_mib * MIB if memory_mib is not None else None,
        # A cordoned node is recorded as such; its taints stay in ``hardware.scheduling``.
        schedulable=not (inventory.scheduling and inventory.scheduling.unschedulable),
    )


def _accelerators(inventory: NodeInventory) -> tuple[str, int, str | None, int | None]:
    if inventory.nvidia and inventory.nvidia.gpus:
        gpus = inventory.nvidia.gpus
        return "cuda", len(gpus), gpus[0].product, gpus[0].memory_total_mib
    if inventory.gaudi and inventory.gaudi.devices:
        devices = inventory.gaudi.devices
        return "hpu", len(devices), devices[0].model, devices[0].memory_total_mib
    return "cpu", 0, None, None


def _collected_at(inventory: NodeInventory) -> datetime:
    if inventory.collected_at:
        try:
            parsed = datetime.fromisoformat(inventory.collected_at)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            pass
    return datetime.now(UTC)


def recorded_inventories(session: Session) -> dict[str, list[NodeInventory]]:
    """The latest recorded inventory of every node, by cluster name, for every available
    cluster (an empty list where none was recorded): what a placement across clusters plans
    on.

    Cordoned nodes are included, marked so, for the planner to leave out and name in its
    answer: a node that cluster-health saw cordoned after its last detection counts as
    cordoned.
    """
    query = (
        select(Cluster.name, Node.name, Node.hardware, Node.schedulable)
        .outerjoin(Node, Node.cluster_id == Cluster.id)
        .where(Cluster.status == ClusterStatus.AVAILABLE)
        .order_by(Cluster.name, Node.name)
    )
    found: dict[str, list[NodeInventory]] = {}
    for cluster, name, hardware, schedulable in session.execute(query):
        nodes = found.setdefault(cluster, [])
        if hardware is None:
            continue
        # The row's name is the node's: the snapshot may have been recorded under another.
        inventory = NodeInventory.model_validate(hardware).model_copy(update={"node_name": name})
        if schedulable is False:
            scheduling = inventory.scheduling or NodeScheduling()
            inventory = inventory.model_copy(
                update={"scheduling": scheduling.model_copy(update={"unschedulable": True})}
            )
        nodes.append(inventory)
    return found
