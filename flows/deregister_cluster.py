"""Runbook: forget a registered cluster without touching it."""

from __future__ import annotations

from prefect import flow

from budcluster.job_requests import DeregisterClusterRequest
from tasks.clusters import deregister_cluster as forget


@flow(name="deregister-cluster", log_prints=True)
def deregister_cluster(request: DeregisterClusterRequest) -> list[str]:
    """Remove the cluster, its nodes, deployments and transfers from the store.

    The cluster itself is left as it is (use destroy-cluster for one provision-cluster
    created). Refused while deployments may still run on it, unless forced.
    """
    forgotten = forget(request.name, request.force)
    print(f"deregistered {request.name}; forgotten deployments: {forgotten or 'none'}")
    return forgotten
