"""Tasks that talk to a cluster through its target: access, nodes, teardown."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_table_artifact

from budcluster.hardware.inventory import NodeInventory
from budcluster.targets.base import AccessReport
from tasks._logging import task_logger
from tasks.targets import registered_target, target_for


# Reaching a cluster can fail transiently (SSH, API server restarts): retry twice.
@task(retries=2, retry_delay_seconds=10, timeout_seconds=300, task_run_name="verify-{kind}-access")
def verify_access(kind: str, credentials_block: str) -> AccessReport:
    with target_for(kind, credentials_block) as target:
        report = target.verify_access()
    task_logger(__name__).info(
        "%s cluster reachable: %d node(s) %s", report.kind, len(report.nodes), report.nodes
    )
    return report


@task(retries=2, retry_delay_seconds=10, timeout_seconds=300, task_run_name="verify-{cluster}")
def verify_registered_cluster(cluster: str) -> AccessReport:
    with registered_target(cluster) as target:
        return target.verify_access()


@task(
    retries=1, retry_delay_seconds=10, timeout_seconds=600, task_run_name="detect-nodes-{cluster}"
)
def detect_nodes(cluster: str) -> list[NodeInventory]:
    with registered_target(cluster) as target:
        inventories = target.detect_nodes()
    task_logger(__name__).info("detected %d node(s) on %s", len(inventories), cluster)
    return inventories


def publish_inventory_table(cluster: str, rows: list[dict[str, object]]) -> None:
    create_table_artifact(
        table=rows, key=f"node-inventory-{cluster}", description=f"Nodes of {cluster}"
    )
