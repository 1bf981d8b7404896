"""Runbook: bring the clusters to the catalogue (deployments.yaml)."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.client.schemas.objects import State

from budcluster.catalogue import Action, ActionKind, plan_reconcile
from budcluster.errors import PermanentError
from budcluster.job_requests import TeardownRequest
from flows.deploy_model import deploy_model
from flows.teardown_deployment import teardown_deployment
from tasks.catalogue import live_deployments, publish_reconcile_plan, read_catalogue
from tasks.fan_out import check_deployment_name, submit_run, wait_for_runs

# How long a reconcile that hands its rollouts out waits for them (each has its own
# ready_timeout_s; this bounds the queue in front of them too).
DEPLOY_WAIT_S = 6 * 3600.0


class ReconcileIncomplete(PermanentError):
    """At least one deploy, redeploy or prune failed; the others were still carried out."""


@flow(name="reconcile-deployments", log_prints=True)
def reconcile_deployments(
    catalogue_path: str = "deployments.yaml",
    check_runtimes: bool = True,
    dry_run: bool = False,
    deploy_via: str = "",
    deploy_wait_s: float = DEPLOY_WAIT_S,
) -> dict[str, Any]:
    """Deploy what is missing, redeploy changed specs, report drift, prune if asked.

    ``catalogue_path`` is relative to the project directory the worker runs in.
    ``check_runtimes`` asks each ready deployment's target whether it really runs.
    ``dry_run`` publishes the plan and changes nothing.
    ``deploy_via`` names the Prefect deployment of deploy-model (``deploy-model/deploy-model``)
    that carries out each deploy and redeploy as its own flow run, so that every worker of
    its pool takes a share; empty, they run one after another inside this run.
    ``deploy_wait_s`` bounds how long this run waits for those flow runs.
    """
    if deploy_via:
        check_deployment_name(deploy_via)
    catalogue = read_catalogue(catalogue_path)
    live = live_deployments(sorted(catalogue.managed_clusters()), check_runtimes)
    actions = plan_reconcile(catalogue, live)
    publish_reconcile_plan(actions)
    outcome: dict[str, Any] = {
        f"{a.cluster}/{a.name}": {"action": a.kind.value, "reason": a.reason} for a in actions
    }
    if dry_run:
        return outcome

    results = (
        _handed_out(actions, deploy_via, deploy_wait_s) if deploy_via else _in_this_run(actions)
    )
    failures = []
    for key, (state_name, completed, message) in results.items():
        outcome[key]["result"] = state_name
        if not completed:
            failures.append(f"{key} ({outcome[key]['action']}): {message}")
    for key, result in outcome.items():
        print(f"{key}: {result['action']} ({result['reason']}) {result.get('result', '')}")
    if failures:
        raise ReconcileIncomplete("; ".join(failures))
    return outcome


def _key(action: Action) -> str:
    return f"{action.cluster}/{action.name}"


def _is_rollout(action: Action) -> bool:
    return action.kind in (ActionKind.DEPLOY, ActionKind.REDEPLOY) and action.entry is not None


def _in_this_run(actions: list[Action]) -> dict[str, tuple[str, bool, str]]:
    """Each change as its own subflow run, one after another: it shows in the UI with its
    own plan, progress and benchmark artifacts, and one failure does not stop the rest."""
    results: dict[str, tuple[str, bool, str]] = {}
    state: State[Any]
    for action in actions:
        if _is_rollout(action):
            assert action.entry is not None
            state = deploy_model(action.entry.deploy_request(), return_state=True)
        elif action.kind is ActionKind.PRUNE:
            request = TeardownRequest(cluster=action.cluster, deployment=action.name)
            state = teardown_deployment(request, return_state=True)
        else:
            continue
        results[_key(action)] = (
            state.name or state.type.value,
            state.is_completed(),
            state.message or "",
        )
    return results


def _handed_out(
    actions: list[Action], deploy_via: str, wait_s: float
) -> dict[str, tuple[str, bool, str]]:
    """Rollouts as flow runs of ``deploy_via`` (any worker of its pool runs them, as many at
    once as its concurrency limit allows); prunes here while they run; then wait for all.

    Waiting keeps reconcile-deployments' own limit meaningful: a second reconcile is
    refused while this one's rollouts are still queued, instead of deploying them again.
    """
    submitted: dict[str, str] = {}
    for action in actions:
        if _is_rollout(action):
            assert action.entry is not None
            parameters = {"request": action.entry.deploy_request().model_dump(mode="json")}
            submitted[_key(action)] = submit_run(deploy_via, _key(action), parameters)
    results = _in_this_run([a for a in actions if a.kind is ActionKind.PRUNE])
    if submitted:
        for key, ended in wait_for_runs(submitted, len(submitted), wait_s).items():
            results[key] = (ended.state, ended.completed, ended.message)
    return results
