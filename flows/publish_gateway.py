"""Runbook: put a LiteLLM gateway in front of every ready model of a Kubernetes cluster."""

from __future__ import annotations

from typing import Any

from prefect import flow

from budcluster.job_requests import PublishGatewayRequest
from tasks.clusters import registered_cluster, verify_registered_cluster
from tasks.gateway import apply_gateway, configure_gateway, read_ready_deployments


@flow(name="publish-gateway", log_prints=True)
def publish_gateway(request: PublishGatewayRequest) -> dict[str, Any]:
    """Route every ready deployment of the cluster through one LiteLLM proxy.

    Publishing the same routes again changes nothing. After a teardown, publishing again
    drops that model's route; with no ready deployment left it fails and leaves the
    gateway as it is.
    """
    # 1. What the store says is ready (a hosts cluster is refused here).
    source = read_ready_deployments(request.cluster)

    # 2. The routes, the chart values and the hash that names them.
    config = configure_gateway(request, source)

    # 3. Reach the cluster.  4. Apply the release (unless it runs this config), wait for
    #    its Deployment, and check through its Service that every route answers.
    verify_registered_cluster(registered_cluster(request.cluster))
    outcome = apply_gateway(config, request.ready_timeout_s)

    what = "published" if outcome["changed"] else "unchanged"
    print(
        f"gateway {config.release} {what} (config {config.config_hash}): routes "
        f"{outcome['routes']} at {outcome['service_url']}"
    )
    return outcome
