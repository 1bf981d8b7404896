"""The deployment lifecycle: which statuses exist and which moves between them are legal.

Pure: no I/O. The store calls :func:`check_transition` before it changes a deployment's
status and records every accepted move in the status history.

::

    pending -> planning -> transferring -> deploying -> ready
                      \\______________________^          |
    any live status -> failed | deleting                 v
    ready -> deploying (redeploy / rollback), failed -> pending | planning (retry)
    deleting -> deleted | failed,   deleted -> pending (recreate under the same name)
"""

from __future__ import annotations

from enum import StrEnum

from budcluster.errors import PermanentError


class DeploymentStatus(StrEnum):
    PENDING = "pending"
    PLANNING = "planning"
    TRANSFERRING = "transferring"
    DEPLOYING = "deploying"
    READY = "ready"
    FAILED = "failed"
    DELETING = "deleting"
    DELETED = "deleted"


_S = DeploymentStatus

# Moving to the same status is not listed: a status change must mean something happened,
# so a repeated "ready -> ready" is reported rather than silently adding history rows.
LEGAL_TRANSITIONS: dict[DeploymentStatus, frozenset[DeploymentStatus]] = {
    _S.PENDING: frozenset({_S.PLANNING, _S.FAILED, _S.DELETING}),
    # Planning may skip the transfer when the weights are already on the cluster.
    _S.PLANNING: frozenset({_S.TRANSFERRING, _S.DEPLOYING, _S.FAILED, _S.DELETING}),
    _S.TRANSFERRING: frozenset({_S.DEPLOYING, _S.FAILED, _S.DELETING}),
    _S.DEPLOYING: frozenset({_S.READY, _S.FAILED, _S.DELETING}),
    # A ready deployment is redeployed when its spec changes or it is rolled back.
    _S.READY: frozenset({_S.DEPLOYING, _S.FAILED, _S.DELETING}),
    _S.FAILED: frozenset({_S.PENDING, _S.PLANNING, _S.DELETING}),
    # Deleting can fail (an API error); it is then retried from failed -> deleting.
    _S.DELETING: frozenset({_S.DELETED, _S.FAILED}),
    # Names are unique per cluster, so a deleted deployment is recreated in place.
    _S.DELETED: frozenset({_S.PENDING}),
}

INITIAL_STATUS = DeploymentStatus.PENDING
TERMINAL_STATUSES = frozenset({DeploymentStatus.DELETED})
# The statuses a deploy-model run holds a deployment in; a run killed mid-way leaves one.
ROLLOUT_IN_PROGRESS = frozenset({"pending", "planning", "transferring", "deploying"})


class IllegalTransition(PermanentError):
    """A status change that the lifecycle does not allow."""

    def __init__(self, current: DeploymentStatus, requested: DeploymentStatus) -> None:
        allowed = ", ".join(sorted(LEGAL_TRANSITIONS[current])) or "none"
        super().__init__(
            f"deployment status cannot move from {current.value!r} to {requested.value!r}; "
            f"from {current.value!r} it may move to: {allowed}"
        )
        self.current = current
        self.requested = requested


def parse_status(value: str) -> DeploymentStatus:
    """The status named by ``value``, or a :class:`PermanentError` listing the valid names."""
    try:
        return DeploymentStatus(value)
    except ValueError as exc:
        valid = ", ".join(s.value for s in DeploymentStatus)
        raise PermanentError(f"unknown deployment status {value!r}; use one of: {valid}") from exc


def is_legal(current: DeploymentStatus, requested: DeploymentStatus) -> bool:
    return requested in LEGAL_TRANSITIONS[current]


def check_transition(current: DeploymentStatus, requested: DeploymentStatus) -> None:
    """Raise :class:`IllegalTransition` unless ``current -> requested`` is allowed."""
    if not is_legal(current, requested):
        raise IllegalTransition(current, requested)
