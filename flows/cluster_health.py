"""Runbook: check that every registered cluster answers and record node readiness."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_table_artifact

from budcluster.errors import TemporaryError
from tasks.catalogue import check_cluster_health, registered_clusters


class ClustersUnreachable(TemporaryError):
    """A cluster or some of its nodes did not answer; the store records which."""


@flow(name="cluster-health", log_prints=True)
def cluster_health() -> list[dict[str, object]]:
    """Verify access to each cluster through its target (for hosts: can every host be
    reached) and record the cluster's status and each node's Reachable condition.

    The run fails when a cluster is unreachable, so an automation can alert on it.
    """
    rows: list[dict[str, object]] = []
    for cluster in registered_clusters():
        rows += check_cluster_health(cluster)
    create_table_artifact(
        table=rows or [{"cluster": "(none registered)", "node": "", "reachable": ""}],
        key="cluster-health",
        description="Reachability of every registered cluster's nodes",
    )
    down = sorted({str(r["cluster"]) for r in rows if not r["reachable"]})
    print(f"{len(rows)} node(s) checked; clusters with unreachable nodes: {down or 'none'}")
    if down:
        raise ClustersUnreachable(f"unreachable: {', '.join(down)} (see the cluster-health table)")
    return rows
