"""Runbook: create an EKS or AKS cluster with Terraform, once a person approves the plan."""

from __future__ import annotations

from typing import Any

from prefect import flow

from budcluster.job_requests import ClusterKindChoice, RegisterClusterRequest
from budcluster.provisioning import NotRegistered, ProvisionClusterRequest
from flows.detect_nodes import detect_nodes
from flows.register_cluster import register_cluster
from tasks.provisioning import (
    apply_cluster_plan,
    mark_provisioning,
    plan_cluster,
    publish_plan,
    read_cluster_outputs,
    record_provisioning,
    resolve_state_bucket,
    save_kubeconfig_block,
    wait_for_approval,
)
from tasks.records import cluster_exists


@flow(name="provision-cluster", log_prints=True)
def provision_cluster(request: ProvisionClusterRequest) -> dict[str, Any]:
    """Plan, wait for approval, apply, then register the cluster and detect its nodes.

    A rerun with the same form converges: the plan shows only what is missing (nothing,
    once the cluster is complete), and registration is skipped for a registered cluster.
    """
    # 1. Name (and if need be create) the state bucket, then record the request (refused
    #    if the name belongs to a cluster registered by hand).
    request = resolve_state_bucket(request)
    record_provisioning(request)
    # 2. Plan into a saved file and show it: counts and every resource it touches.
    plan = plan_cluster(request)
    plan_text = publish_plan(request.name, plan, destroy=False)
    # 3. A person approves (or the form pre-approves); then exactly that plan is applied.
    decision = "no changes"
    if plan.has_changes:
        decision = wait_for_approval(request.name, plan_text, request.approval, destroy=False)
        mark_provisioning(request.name, "applying", decision)
    try:
        if plan.has_changes:
            apply_cluster_plan(request, plan)
        # 4. The outputs, and the kubeconfig sealed into a credentials block.
        outputs = read_cluster_outputs(request)
        kubeconfig_block = save_kubeconfig_block(request, outputs)
    except BaseException as exc:
        # Terraform saved what it created; a rerun plans only the rest.
        mark_provisioning(request.name, "failed", f"apply failed: {exc}")
        raise
    mark_provisioning(
        request.name, "applied", f"{plan.headline()} ({decision})", outputs, kubeconfig_block,
        applied=request,
    )  # fmt: skip
    print(f"{request.name}: {plan.headline()} API server {outputs.get('endpoint')}")
    # 5. Register it and inventory its nodes (a registered cluster is only re-detected).
    if request.register_cluster:
        try:
            if cluster_exists(request.name):
                detect_nodes(request.name)
            else:
                register_cluster(
                    RegisterClusterRequest(
                        name=request.name,
                        kind=ClusterKindChoice.KUBERNETES,
                        credentials_block=kubeconfig_block,
                        provider=request.cloud.value,
                    )
                )
        except Exception as exc:
            raise NotRegistered(request.name, kubeconfig_block, exc) from exc
    return {
        "cluster": request.name,
        "plan": plan.as_dict(),
        "endpoint": outputs.get("endpoint"),
        "kubeconfig_block": kubeconfig_block,
        "registered": request.register_cluster,
    }
