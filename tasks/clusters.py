"""Tasks that talk to a cluster through its target: access, nodes, teardown."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_table_artifact

from budcluster.errors import ConfigurationError
from budcluster.hardware.inventory import NodeInventory
from budcluster.store import clusters as cluster_rows
from budcluster.targets.base import AccessReport
from budcluster.targets.ref import ClusterRef
from tasks._logging import task_logger
from tasks._retry import unless_permanent
from tasks._store import results_store
from tasks.targets import registered_target, resolve_cluster, target_for


# Reaching a cluster can fail transiently (SSH, API server restarts): retry twice.
@task(retries=2, retry_delay_seconds=10, timeout_seconds=300, task_run_name="verify-{kind}-access")
def verify_access(kind: str, credentials_block: str) -> AccessReport:
    with target_for(kind, credentials_block) as target:
        report = target.verify_access()
    task_logger(__name__).info(
        "%s cluster reachable: %d node(s) %s", report.kind, len(report.nodes), report.nodes
    )
    return report


# A store read: retried for a database that restarts, not for an unknown name.
@task(
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=unless_permanent,
    timeout_seconds=60,
    task_run_name="find-cluster-{cluster}",
)
def registered_cluster(cluster: str) -> ClusterRef:
    """The cluster's kind and credentials block, looked up once for the whole run."""
    return resolve_cluster(cluster)


@task(retries=2, retry_delay_seconds=10, timeout_seconds=300, task_run_name="verify-{cluster}")
def verify_registered_cluster(cluster: ClusterRef) -> AccessReport:
    with registered_target(cluster) as target:
        return target.verify_access()


@task(
    retries=1, retry_delay_seconds=10, timeout_seconds=600, task_run_name="detect-nodes-{cluster}"
)
def detect_nodes(cluster: ClusterRef) -> list[NodeInventory]:
    with registered_target(cluster) as target:
        inventories = target.detect_nodes()
    task_logger(__name__).info("detected %d node(s) on %s", len(inventories), cluster)
    return inventories


# Two API writes; retried like the other cluster calls. Idempotent, so a retry is safe.
@task(
    retries=2,
    retry_delay_seconds=10,
    retry_condition_fn=unless_permanent,
    timeout_seconds=120,
    task_run_name="grant-scc-{scc}",
)
def grant_openshift_scc(cluster: ClusterRef, scc: str) -> list[str]:
    """Let the node-info collector use ``scc`` on an OpenShift cluster; nothing elsewhere."""
    from budcluster.targets.kubernetes import KubernetesTarget

    logger = task_logger(__name__)
    with registered_target(cluster) as target:
        if not isinstance(target, KubernetesTarget):
            logger.info("%s is a %s cluster: no SCC to grant", cluster.name, cluster.kind)
            return []
        written = target.grant_collector_scc(scc)
    if written:
        logger.info("granted SCC %s on %s: %s", scc, cluster.name, ", ".join(written))
    else:
        logger.info("%s is not OpenShift: no SCC to grant", cluster.name)
    return written


def publish_inventory_table(cluster: str, rows: list[dict[str, object]]) -> None:
    create_table_artifact(
        table=rows, key=f"node-inventory-{cluster}", description=f"Nodes of {cluster}"
    )


@task(
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=unless_permanent,
    timeout_seconds=60,
    task_run_name="check-{cluster}-can-go",
)
def check_cluster_can_go(cluster: str, force: bool) -> None:
    """Refuse to destroy a cluster with live deployments (unless forced), before planning."""
    with results_store().session() as session:
        if cluster_rows.find_cluster(session, cluster) is None:
            return
        live = cluster_rows.live_deployments(session, cluster)
    if live and not force:
        raise ConfigurationError(
            f"cluster {cluster!r} still runs {len(live)} deployment(s): {', '.join(live)}; "
            "tear them down with teardown-deployment first, or set force=true to destroy "
            "them with the cluster"
        )


@task(
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=unless_permanent,
    timeout_seconds=60,
    task_run_name="deregister-{cluster}",
)
def deregister_cluster(cluster: str, force: bool = False) -> list[str]:
    """Forget a cluster in the store; returns the deployments forgotten with it."""
    with results_store().session() as session:
        if cluster_rows.find_cluster(session, cluster) is None:
            task_logger(__name__).info("cluster %s is not registered; nothing to forget", cluster)
            return []
        forgotten = cluster_rows.deregister_cluster(session, cluster, force=force)
    task_logger(__name__).info("deregistered %s (deployments forgotten: %s)", cluster, forgotten)
    return forgotten
