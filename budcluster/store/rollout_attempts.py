"""Rollout attempts: what a run is about to start, kept where the next run can read it.

A run records its attempt before it starts a runtime and ends it once the revision is
recorded (``finished``) or the runtime it started is removed again (``undone``). A
``started`` attempt that no live run holds is work a dead process left half done.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from budcluster.store.errors import translated_errors
from budcluster.store.models import Deployment, RolloutAttempt, RolloutAttemptState
from budcluster.store.rows import add_and_flush, get_or_not_found
from budcluster.store.types import utc_now

__all__ = ["begin_attempt", "end_attempt", "get_attempt", "open_attempts"]

_DETAIL_LIMIT = 8000


def begin_attempt(
    session: Session,
    deployment_id: int,
    *,
    spec_hash: str | None,
    previous_manifests: list[Any] | None,
    flow_run_id: str | None,
    attempt_key: str | None = None,
) -> RolloutAttempt:
    """Record a ``started`` attempt. With ``attempt_key`` (made once by the caller), a
    second call with the same key returns the first row: a transaction rerun after its
    commit answer was lost does not leave a second ``started`` attempt behind."""
    get_or_not_found(session, Deployment, what="deployment", id=deployment_id)
    if attempt_key is not None:
        existing = session.scalar(
            select(RolloutAttempt).where(RolloutAttempt.attempt_key == attempt_key)
        )
        if existing is not None:
            return existing
    with translated_errors("record the rollout attempt"):
        return add_and_flush(
            session,
            RolloutAttempt(
                deployment_id=deployment_id,
                attempt_key=attempt_key,
                spec_hash=spec_hash,
                previous_manifests=previous_manifests,
                flow_run_id=flow_run_id,
                state=RolloutAttemptState.STARTED,
            ),
        )


def get_attempt(session: Session, attempt_id: int) -> RolloutAttempt:
    return get_or_not_found(session, RolloutAttempt, what="rollout attempt", id=attempt_id)


def end_attempt(
    session: Session, attempt_id: int, state: str, detail: str | None = None
) -> RolloutAttempt:
    """Close a started attempt; closing it again keeps the first ending (retries are safe)."""
    attempt = get_attempt(session, attempt_id)
    ending = RolloutAttemptState(state)
    if ending is RolloutAttemptState.STARTED:
        raise ValueError("an attempt ends as finished, undone or undo_failed")
    if attempt.state is RolloutAttemptState.STARTED:
        attempt.state = ending
        attempt.detail = detail[-_DETAIL_LIMIT:] if detail else None
        attempt.ended_at = utc_now()
        session.flush()
    return attempt


def open_attempts(session: Session, deployment_id: int) -> list[RolloutAttempt]:
    """The deployment's attempts still ``started``, oldest first."""
    return list(
        session.scalars(
            select(RolloutAttempt)
            .where(
                RolloutAttempt.deployment_id == deployment_id,
                RolloutAttempt.state == RolloutAttemptState.STARTED,
            )
            .order_by(RolloutAttempt.id)
        )
    )
