"""Rollout attempts and their repair, across processes.

Before a run starts a runtime it records the attempt in the store; it ends the attempt
when the revision is recorded or when it removes the runtime again. A run killed in
between (worker ``kill -9``, node lost) leaves a ``started`` attempt behind. The next run
of the same deployment holds the rollout slot, so no live run owns that attempt: it undoes
what the attempt started, from what the store recorded, before doing anything else.

Every write here goes through ``transact``: a Postgres restart or a locked SQLite file
mid-way reruns the transaction instead of failing the run, and each write is safe to
rerun. A store that stays away past the deadline leaves the attempt ``started``, which is
exactly what the next run repairs.
"""

from __future__ import annotations

import uuid
from typing import Any

from prefect import task
from prefect.runtime import flow_run
from sqlalchemy.orm import Session

from budcluster.errors import PermanentError
from budcluster.lifecycle import ROLLOUT_IN_PROGRESS
from budcluster.secretfiles import sweep_stale_secret_dirs
from budcluster.store import NotFound
from budcluster.store import clusters as cluster_rows
from budcluster.store import deployments as deployment_rows
from budcluster.store import rollout_attempts as attempt_rows
from budcluster.store.models import RolloutAttemptState
from budcluster.targets.ref import ClusterRef
from tasks._logging import task_logger
from tasks._store import transact

_RETRIES, _DELAY_S, _TIMEOUT_S = 2, 2, 60


class RolloutRepairFailed(PermanentError):
    """Undoing what an interrupted run started failed; the deployment is marked failed."""


def _this_run() -> str | None:
    run_id = flow_run.get_id()
    return str(run_id) if run_id else None


@task(
    retries=_RETRIES,
    retry_delay_seconds=_DELAY_S,
    timeout_seconds=_TIMEOUT_S,
    task_run_name="begin-rollout-attempt-{deployment_id}",
)
def begin_rollout_attempt(
    deployment_id: int, spec_hash: str, previous: list[dict[str, Any]] | None
) -> int:
    """Record, before the runtime starts, what undoing it would take."""
    # Made once, before the first try: every rerun of the transaction looks for it.
    key = uuid.uuid4().hex
    flow_run_id = _this_run()

    def begin(session: Session) -> int:
        attempt = attempt_rows.begin_attempt(
            session,
            deployment_id,
            spec_hash=spec_hash,
            previous_manifests=previous,
            flow_run_id=flow_run_id,
            attempt_key=key,
        )
        return attempt.id

    return transact(begin, f"record the rollout attempt of deployment {deployment_id}")


@task(
    retries=_RETRIES,
    retry_delay_seconds=_DELAY_S,
    timeout_seconds=_TIMEOUT_S,
    task_run_name="end-rollout-attempt-{attempt_id}-{state}",
)
def end_rollout_attempt(attempt_id: int, state: str, detail: str | None = None) -> None:
    # end_attempt keeps the first ending, so a rerun changes nothing.
    transact(
        lambda session: attempt_rows.end_attempt(session, attempt_id, state, detail),
        f"end rollout attempt {attempt_id} as {state}",
    )


def undo_attempt(
    cluster: ClusterRef, deployment: str, attempt_id: int, previous: list[dict[str, Any]] | None
) -> None:
    """Remove what the attempt started (or restore the previous revision) and say so in
    the store; a failed undo is recorded with its error, then raised."""
    from tasks.rollout import undo_rollout

    try:
        undo_rollout.fn(cluster, deployment, previous)
    except Exception as exc:
        end_rollout_attempt.fn(attempt_id, "undo_failed", f"{type(exc).__name__}: {exc}")
        raise
    end_rollout_attempt.fn(attempt_id, "undone", f"undone by run {_this_run()}")


@task(retries=0, timeout_seconds=900, task_run_name="undo-unfinished-{deployment}")
def undo_unfinished_attempt(
    cluster: ClusterRef, deployment: str, attempt_id: int, previous: list[dict[str, Any]] | None
) -> None:
    """Undo what a failed run started when its rollback did not: Prefect rolls back only
    tasks that completed, so a ``roll_out`` that failed half-way (one object applied, the
    next refused; a host lost during the playbook) leaves its attempt ``started``.

    A failed undo is recorded on the attempt (``rollout_failure`` reports it); this run is
    failing already, so it is logged, not raised over the rollout's error.
    """
    logger = task_logger(__name__)
    try:
        state = transact(
            lambda session: attempt_rows.get_attempt(session, attempt_id).state,
            f"read rollout attempt {attempt_id}",
        )
        if state is not RolloutAttemptState.STARTED:
            return
        logger.warning("the rollout of %s failed part-way; undoing what it started", deployment)
        undo_attempt(cluster, deployment, attempt_id, previous)
    except Exception as exc:
        # The attempt stays started (store down) or is undo_failed: the next run's repair
        # or teardown-deployment takes it from there.
        logger.error(
            "undoing %s's failed rollout failed: %s: %s", deployment, type(exc).__name__, exc
        )


@task(
    retries=_RETRIES,
    retry_delay_seconds=_DELAY_S,
    timeout_seconds=_TIMEOUT_S,
    task_run_name="rollout-failure-{deployment_id}",
)
def rollout_failure(deployment_id: int, attempt_id: int | None, error: str) -> str:
    """The reason a failed run gives: its error, and the undo's error when that failed too."""
    if attempt_id is None:
        return error[-4000:]

    def undo_error_of(session: Session) -> str | None:
        attempt = attempt_rows.get_attempt(session, attempt_id)
        if attempt.state is not RolloutAttemptState.UNDO_FAILED:
            return None
        return attempt.detail or "unknown error"

    undo_error = transact(undo_error_of, f"read rollout attempt {attempt_id}")
    if undo_error is None:
        return error[-4000:]
    return (
        f"{error[-1800:]}; and undoing the rollout failed too: {undo_error[-1800:]}. "
        "What it started may still run: run teardown-deployment to remove it"
    )


@task(retries=0, timeout_seconds=900, task_run_name="repair-interrupted-{deployment}")
def repair_interrupted_rollout(cluster: ClusterRef, deployment: str) -> str | None:
    """Undo what a dead run of this deployment started; None when there was nothing.

    Called while holding the deployment's rollout slot: a ``started`` attempt then belongs
    to no live run.
    """
    logger = task_logger(__name__)

    def read(session: Session) -> tuple[int, list[tuple[int, str | None, Any]]] | None:
        try:
            cluster_id = cluster_rows.get_cluster(session, cluster.name).id
            row = deployment_rows.find_deployment(session, cluster_id, deployment)
        except NotFound:
            return None
        return row.id, [
            (a.id, a.flow_run_id, a.previous_manifests)
            for a in attempt_rows.open_attempts(session, row.id)
        ]

    found = transact(read, f"look for interrupted rollouts of {deployment!r}")
    if found is None:
        return None
    deployment_id, interrupted = found
    if not interrupted:
        return None
    # A long-lived worker process swept once, at its start; the dead run's secret files
    # are swept now, not at this worker's next start.
    for stale in sweep_stale_secret_dirs():
        logger.warning("removed %s, left by a process that is gone", stale)
    # Only the newest attempt's runtime can still run: each rollout replaces the last.
    for attempt_id, _, _ in interrupted[:-1]:
        end_rollout_attempt.fn(attempt_id, "undone", "superseded by a later attempt")
    attempt_id, dead_run, previous = interrupted[-1]
    what = f"run {dead_run or '?'} ended after starting {deployment}'s runtime"
    logger.warning("%s (attempt %s); undoing it", what, attempt_id)
    try:
        undo_attempt(cluster, deployment, attempt_id, previous)
    except Exception as exc:
        # The deployment's reason carries the fix too: it outlives this run's error.
        reason = (
            f"{what}; undoing it failed: {type(exc).__name__}: {str(exc)[-1800:]}. What it "
            "started may still run: fix the cluster's reachability and rerun, or run "
            "teardown-deployment to remove it"
        )
        _mark_failed(deployment_id, reason)
        raise RolloutRepairFailed(reason) from exc
    reason = f"{what}; " + (
        "restored the previous revision" if previous else "removed the runtime it started"
    )
    _mark_failed(deployment_id, reason)
    logger.warning("repaired %s: %s", deployment, reason)
    return reason


def _mark_failed(deployment_id: int, reason: str) -> None:
    def mark(session: Session) -> None:
        # Read in the same transaction: a rerun after a lost commit answer finds it failed.
        status = deployment_rows.get_deployment(session, deployment_id).status.value
        if status in ROLLOUT_IN_PROGRESS:
            deployment_rows.transition(session, deployment_id, "failed", reason[-4000:])

    transact(mark, f"mark deployment {deployment_id} failed")


@task(
    retries=_RETRIES,
    retry_delay_seconds=_DELAY_S,
    timeout_seconds=_TIMEOUT_S,
    task_run_name="close-rollout-attempts-{deployment_id}",
)
def close_rollout_attempts(deployment_id: int, detail: str) -> int:
    """End every started attempt (teardown removed what they started); returns how many."""

    def close(session: Session) -> int:
        open_ids = [a.id for a in attempt_rows.open_attempts(session, deployment_id)]
        for attempt_id in open_ids:
            attempt_rows.end_attempt(session, attempt_id, "undone", detail)
        return len(open_ids)

    return transact(close, f"close the rollout attempts of deployment {deployment_id}")
