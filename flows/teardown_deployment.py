"""Runbook: remove a model deployment from its cluster."""

from __future__ import annotations

from prefect import flow

from budcluster.job_requests import TeardownRequest
from tasks.clusters import registered_cluster
from tasks.records import find_deployment, move_deployment
from tasks.recovery import close_rollout_attempts
from tasks.rollout import remove_runtime


@flow(name="teardown-deployment", log_prints=True)
def teardown_deployment(request: TeardownRequest) -> str:
    """Stop the runtime and delete what its rollout created; the model copy stays cached."""
    state = find_deployment(request.cluster, request.deployment)
    if state is None or state.status == "deleted":
        print(f"{request.deployment} is not deployed on {request.cluster}; nothing to do")
        return "absent"
    move_deployment(state.id, "deleting", "teardown requested")
    try:
        remove_runtime(registered_cluster(request.cluster), request.deployment)
    except Exception as exc:
        move_deployment(state.id, "failed", f"teardown failed: {exc}")
        raise
    # An interrupted run's attempt is settled: what it started is gone.
    close_rollout_attempts(state.id, "removed by teardown-deployment")
    move_deployment(state.id, "deleted", "runtime removed")
    return "deleted"
