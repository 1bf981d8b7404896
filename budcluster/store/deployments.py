"""Deployments, their status history (enforced by :mod:`budcluster.lifecycle`) and revisions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from budcluster import lifecycle
from budcluster.lifecycle import DeploymentStatus
from budcluster.store import placement_claims
from budcluster.store.errors import Conflict, IllegalTransition, NotFound, translated_errors
from budcluster.store.models import Deployment, DeploymentRevision, DeploymentStatusChange
from budcluster.store.rows import add_and_flush, get_or_not_found
from budcluster.store.validation import InvalidValue, parse_choice, require_text


def _check_command(command: Sequence[str] | None) -> list[str] | None:
    if command is None:
        return None
    if isinstance(command, str) or not all(isinstance(arg, str) for arg in command):
        raise InvalidValue(
            "deployment command must be an argv list of strings, e.g. "
            '["vllm", "serve", "/models/x"], not one shell string'
        )
    return list(command)


def create_deployment(
    session: Session,
    *,
    cluster_id: int,
    model_id: int,
    name: str,
    spec_hash: str | None = None,
    plan: dict[str, Any] | None = None,
    engine: str | None = None,
    image: str | None = None,
    command: Sequence[str] | None = None,
    reason: str | None = None,
) -> Deployment:
    """Add a deployment in status ``pending``; its first history row records the creation."""
    name = require_text(name, "deployment name", 253)
    taken = select(Deployment.id).where(
        Deployment.cluster_id == cluster_id, Deployment.name == name
    )
    if session.scalar(taken) is not None:
        raise Conflict(
            f"cluster {cluster_id} already has a deployment named {name!r}; "
            "update it or pick another name"
        )
    deployment = Deployment(
        cluster_id=cluster_id,
        model_id=model_id,
        name=name,
        spec_hash=spec_hash,
        plan=plan,
        engine=engine,
        image=image,
        command=_check_command(command),
        status=lifecycle.INITIAL_STATUS,
        status_reason=reason,
    )
    with translated_errors(f"create deployment {name!r} (do the cluster and model exist?)"):
        add_and_flush(session, deployment)
        add_and_flush(
            session,
            DeploymentStatusChange(
                deployment_id=deployment.id,
                from_status=None,
                to_status=deployment.status,
                reason=reason,
            ),
        )
    return deployment


def get_deployment(session: Session, deployment_id: int) -> Deployment:
    return get_or_not_found(session, Deployment, what="deployment", id=deployment_id)


def find_deployment(session: Session, cluster_id: int, name: str) -> Deployment:
    return get_or_not_found(
        session,
        Deployment,
        what="deployment",
        fix="deploy it with deploy-model first",
        cluster_id=cluster_id,
        name=name,
    )


def list_deployments(session: Session, cluster_id: int | None = None) -> list[Deployment]:
    query = select(Deployment).order_by(Deployment.cluster_id, Deployment.name)
    if cluster_id is not None:
        query = query.where(Deployment.cluster_id == cluster_id)
    return list(session.scalars(query))


def transition(
    session: Session, deployment_id: int, to_status: str, reason: str | None = None
) -> Deployment:
    """Move the deployment to ``to_status`` and record it; IllegalTransition if not allowed.

    The row is locked (Postgres) so two workers cannot both move it from the same status.
    """
    requested = parse_choice(DeploymentStatus, to_status, "deployment status")
    deployment = get_or_not_found(
        session, Deployment, what="deployment", for_update=True, id=deployment_id
    )
    current = deployment.status
    if not lifecycle.is_legal(current, requested):
        raise IllegalTransition(current, requested)
    deployment.status = requested
    deployment.status_reason = reason
    if requested.value not in lifecycle.ROLLOUT_IN_PROGRESS:
        # Ready: its pods are bound and detection counts them; failed, deleting, deleted:
        # they are gone or going. Either way its placement claim stops counting.
        placement_claims.release_claim(session, deployment.cluster_id, deployment.name)
    add_and_flush(
        session,
        DeploymentStatusChange(
            deployment_id=deployment.id, from_status=current, to_status=requested, reason=reason
        ),
    )
    return deployment


def status_history(session: Session, deployment_id: int) -> list[DeploymentStatusChange]:
    """Every status change of a deployment, oldest first."""
    query = (
        select(DeploymentStatusChange)
        .where(DeploymentStatusChange.deployment_id == deployment_id)
        .order_by(DeploymentStatusChange.id)
    )
    return list(session.scalars(query))


def update_spec(
    session: Session,
    deployment_id: int,
    *,
    spec_hash: str | None,
    plan: dict[str, Any] | None,
    engine: str | None,
    image: str | None,
    command: Sequence[str] | None,
) -> Deployment:
    """Replace what the deployment should run (a new plan after the spec changed)."""
    deployment = get_deployment(session, deployment_id)
    deployment.spec_hash = spec_hash
    deployment.plan = plan
    deployment.engine = engine
    deployment.image = image
    deployment.command = _check_command(command)
    session.flush()
    return deployment


def set_endpoint(session: Session, deployment_id: int, endpoint_url: str | None) -> Deployment:
    deployment = get_deployment(session, deployment_id)
    deployment.endpoint_url = endpoint_url
    session.flush()
    return deployment


def record_revision(
    session: Session,
    deployment_id: int,
    manifests: list[dict[str, Any]],
    spec_hash: str | None = None,
) -> DeploymentRevision:
    """Save the rendered manifests of one rollout as the next revision (1, 2, ...)."""
    get_deployment(session, deployment_id)
    latest = session.scalar(
        select(func.max(DeploymentRevision.revision)).where(
            DeploymentRevision.deployment_id == deployment_id
        )
    )
    revision = DeploymentRevision(
        deployment_id=deployment_id,
        revision=(latest or 0) + 1,
        manifests=manifests,
        spec_hash=spec_hash,
    )
    # Two concurrent rollouts may pick the same number; the unique constraint refuses one.
    with translated_errors(f"record revision of deployment {deployment_id}"):
        return add_and_flush(session, revision)


def get_revision(
    session: Session, deployment_id: int, revision: int | None = None
) -> DeploymentRevision:
    """The given revision, or the latest when ``revision`` is None."""
    query = select(DeploymentRevision).where(DeploymentRevision.deployment_id == deployment_id)
    if revision is None:
        query = query.order_by(DeploymentRevision.revision.desc()).limit(1)
    else:
        query = query.where(DeploymentRevision.revision == revision)
    found = session.scalar(query)
    if found is None:
        which = "any revision" if revision is None else f"revision {revision}"
        raise NotFound(f"deployment {deployment_id} has no {which}")
    return found


def list_revisions(session: Session, deployment_id: int) -> list[DeploymentRevision]:
    query = (
        select(DeploymentRevision)
        .where(DeploymentRevision.deployment_id == deployment_id)
        .order_by(DeploymentRevision.revision)
    )
    return list(session.scalars(query))
