"""Runbook: destroy a cluster that provision-cluster created, once a person approves."""

from __future__ import annotations

from prefect import flow

from budcluster.provisioning import DestroyClusterRequest
from tasks.clusters import check_cluster_can_go, deregister_cluster
from tasks.provisioning import (
    apply_cluster_plan,
    delete_kubeconfig_block,
    mark_provisioning,
    plan_cluster,
    provisioned_request,
    publish_plan,
    wait_for_approval,
)


@flow(name="destroy-cluster", log_prints=True)
def destroy_cluster(request: DestroyClusterRequest) -> str:
    """Plan the destruction, wait for approval, destroy, then forget the cluster."""
    # 1. Refuse while deployments run on it (unless forced), before anything is planned.
    check_cluster_can_go(request.name, request.force)
    provisioned = provisioned_request(request.name)
    # 2. Plan -destroy into a saved file and show it.
    plan = plan_cluster(provisioned, destroy=True)
    plan_text = publish_plan(request.name, plan, destroy=True)
    # 3. A person approves; deployments started meanwhile are checked again; then exactly
    #    that plan is applied.
    if plan.has_changes:
        decision = wait_for_approval(request.name, plan_text, request.approval, destroy=True)
        check_cluster_can_go(request.name, request.force)
        mark_provisioning(request.name, "destroying", decision)
        try:
            apply_cluster_plan(provisioned, plan)
        except BaseException as exc:
            mark_provisioning(request.name, "failed", f"destroy failed: {exc}")
            raise
    # 4. The cluster is gone: forget it (its deployments went with it) and its kubeconfig.
    deregister_cluster(request.name, force=True)
    delete_kubeconfig_block(request.name)
    mark_provisioning(request.name, "destroyed", plan.headline())
    print(f"{request.name}: destroyed ({plan.headline()})")
    return "destroyed"
