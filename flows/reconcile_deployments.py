"""Runbook: bring the clusters to the catalogue (deployments.yaml)."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.client.schemas.objects import State

from budcluster.catalogue import ActionKind, plan_reconcile
from budcluster.errors import PermanentError
from budcluster.job_requests import TeardownRequest
from flows.deploy_model import deploy_model
from flows.teardown_deployment import teardown_deployment
from tasks.catalogue import live_deployments, publish_reconcile_plan, read_catalogue


class ReconcileIncomplete(PermanentError):
    """At least one deploy, redeploy or prune failed; the others were still carried out."""


@flow(name="reconcile-deployments", log_prints=True)
def reconcile_deployments(
    catalogue_path: str = "deployments.yaml",
    check_runtimes: bool = True,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Deploy what is missing, redeploy changed specs, report drift, prune if asked.

    ``catalogue_path`` is relative to the project directory the worker runs in.
    ``check_runtimes`` asks each ready deployment's target whether it really runs.
    ``dry_run`` publishes the plan and changes nothing.
    """
    catalogue = read_catalogue(catalogue_path)
    live = live_deployments(sorted(catalogue.managed_clusters()), check_runtimes)
    actions = plan_reconcile(catalogue, live)
    publish_reconcile_plan(actions)
    outcome: dict[str, Any] = {
        f"{a.cluster}/{a.name}": {"action": a.kind.value, "reason": a.reason} for a in actions
    }
    if dry_run:
        return outcome

    failures = []
    state: State[Any]
    for action in actions:
        key = f"{action.cluster}/{action.name}"
        # Each change is its own subflow run: it shows in the UI with its own plan,
        # progress and benchmark artifacts, and one failure does not stop the rest.
        if action.kind in (ActionKind.DEPLOY, ActionKind.REDEPLOY) and action.entry:
            state = deploy_model(action.entry.deploy_request(), return_state=True)
        elif action.kind is ActionKind.PRUNE:
            request = TeardownRequest(cluster=action.cluster, deployment=action.name)
            state = teardown_deployment(request, return_state=True)
        else:
            continue
        outcome[key]["result"] = state.name
        if not state.is_completed():
            failures.append(f"{key} ({action.kind.value}): {state.message}")
    for key, result in outcome.items():
        print(f"{key}: {result['action']} ({result['reason']}) {result.get('result', '')}")
    if failures:
        raise ReconcileIncomplete("; ".join(failures))
    return outcome
