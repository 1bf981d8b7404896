"""Hand work to a Prefect deployment's own flow runs, which any worker of its pool picks up,
and wait for them: how reconcile-deployments spreads its rollouts over several workers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast
from uuid import UUID

from prefect import task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.runtime import flow_run

from budcluster.errors import ConfigurationError
from tasks._logging import task_logger

# How often the waiting run asks the server for its children's states (one request for all).
POLL_S = 2.0


@dataclass(frozen=True)
class RunOutcome:
    """How one handed-out run ended (or that it had not ended by the deadline)."""

    run_id: str
    state: str
    completed: bool
    message: str


def check_deployment_name(name: str) -> str:
    """``flow-name/deployment-name``, as ``prefect deployment run`` takes it."""
    flow_name, _, deployment_name = name.partition("/")
    if not flow_name or not deployment_name or "/" in deployment_name:
        raise ConfigurationError(
            f"deploy_via {name!r} is not FLOW/DEPLOYMENT: give the Prefect deployment that runs "
            "deploy-model, e.g. 'deploy-model/deploy-model', or leave it empty to deploy in "
            "this run"
        )
    return name


@task(retries=2, retry_delay_seconds=5, timeout_seconds=60, task_run_name="submit-{key}")
def submit_run(prefect_deployment: str, key: str, parameters: dict[str, Any]) -> str:
    """Create one flow run of ``prefect_deployment`` (not waiting for it); its id.

    The idempotency key is this run's id and ``key``: a retry of this task after a lost
    answer finds the run it already created instead of creating a second one.
    """
    run = cast(
        FlowRun,
        run_deployment(
            prefect_deployment,
            parameters=parameters,
            timeout=0,
            as_subflow=True,
            idempotency_key=f"{flow_run.get_id() or 'local'}:{key}",
        ),
    )
    task_logger(__name__).info("%s: flow run %s (%s)", key, run.name, run.id)
    return str(run.id)


@task(retries=0, task_run_name="wait-for-{count}-runs")
def wait_for_runs(run_ids: dict[str, str], count: int, timeout_s: float) -> dict[str, RunOutcome]:
    """Each key's outcome once every run has ended, or ``timeout_s`` passed.

    A run still going at the deadline is reported as not finished and left running: its
    rollout slot keeps a later reconcile from starting a second one beside it.
    """
    log = task_logger(__name__)
    keys = {UUID(run_id): key for key, run_id in run_ids.items()}
    ended: dict[str, RunOutcome] = {}
    deadline = time.monotonic() + timeout_s
    with get_client(sync_client=True) as client:
        while True:
            pending = [run_id for run_id in keys if keys[run_id] not in ended]
            if not pending:
                return ended
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=pending)),
                limit=len(pending),
            )
            for run in runs:
                state = run.state
                if state is not None and state.is_final():
                    key = keys[run.id]
                    ended[key] = RunOutcome(
                        str(run.id),
                        state.name or state.type.value,
                        state.is_completed(),
                        state.message or "",
                    )
                    log.info("%s: %s", key, state.name)
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL_S)
    for run_id, key in keys.items():
        if key not in ended:
            ended[key] = RunOutcome(
                str(run_id), "NotFinished", False, f"not finished after {timeout_s:.0f} s"
            )
    return ended
