"""Runbook: refresh the hardware inventory of a registered cluster."""

from __future__ import annotations

from prefect import flow

from budcluster.hardware.inventory import NodeInventory
from tasks.clusters import detect_nodes as detect
from tasks.clusters import publish_inventory_table, registered_cluster
from tasks.records import record_nodes


@flow(name="detect-nodes", log_prints=True)
def detect_nodes(cluster: str) -> list[NodeInventory]:
    """Run the hardware collector on every node and append a snapshot per node."""
    inventories = detect(registered_cluster(cluster))
    publish_inventory_table(cluster, record_nodes(cluster, inventories))
    return inventories
