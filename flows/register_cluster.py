"""Runbook: register a cluster so models can be deployed to it."""

from __future__ import annotations

from prefect import flow

from budcluster.job_requests import RegisterClusterRequest
from budcluster.targets.ref import ClusterRef
from tasks.clusters import (
    detect_nodes,
    grant_openshift_scc,
    publish_inventory_table,
    verify_access,
)
from tasks.records import record_cluster, record_nodes


@flow(name="register-cluster", log_prints=True)
def register_cluster(request: RegisterClusterRequest) -> int:
    """Verify access with the credentials block, record the cluster, then inventory its nodes."""
    # 1. Prove the credentials work before anything is written.
    access = verify_access(request.kind.value, request.credentials_block)
    # 2. Record the cluster (refused if the name or the API server is already registered).
    cluster_id = record_cluster(
        request.name, request.kind.value, request.provider, request.credentials_block, access
    )
    cluster = ClusterRef(
        name=request.name, kind=request.kind.value, credentials_block=request.credentials_block
    )
    # 3. On OpenShift, let the collector's service account use the SCC before its pods exist
    #    (SCC admission happens when a pod is created).
    if access.kind == "openshift" and request.openshift_scc:
        grant_openshift_scc(cluster, request.openshift_scc)
    # 4. Detect and record what hardware each node has.
    inventories = detect_nodes(cluster)
    publish_inventory_table(request.name, record_nodes(request.name, inventories))
    print(f"registered {access.kind} cluster {request.name!r} with {len(inventories)} node(s)")
    return cluster_id
