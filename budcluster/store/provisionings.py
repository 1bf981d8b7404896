"""Clusters created with Terraform: what was asked for, where it stands, what it produced."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from budcluster.store.errors import Conflict, NotFound, translated_errors
from budcluster.store.models import (
    Cluster,
    ClusterProvider,
    Provisioning,
    ProvisioningStatus,
)
from budcluster.store.validation import parse_choice, require_text


def find_provisioning(session: Session, cluster_name: str) -> Provisioning | None:
    return session.scalar(select(Provisioning).where(Provisioning.cluster_name == cluster_name))


def get_provisioning(session: Session, cluster_name: str) -> Provisioning:
    provisioning = find_provisioning(session, cluster_name)
    if provisioning is None:
        raise NotFound(
            f"cluster {cluster_name!r} was not provisioned by bud-serve-cluster; "
            "a cluster registered by hand is removed with deregister-cluster"
        )
    return provisioning


# Fields of the form that name WHERE the cluster and its state are: changing one on a
# rerun would plan against other (or empty) state and lose track of the real cluster.
IDENTITY_FIELDS = ("cloud", "region", "state", "resource_group")


def start_provisioning(
    session: Session,
    *,
    cluster_name: str,
    cloud: str,
    module: str,
    credentials_block: str,
    request: dict[str, Any],
) -> Provisioning:
    """Record a new provisioning as ``planned``, or check a rerun against the recorded one.

    A rerun keeps the recorded request and status until it has applied (see
    :func:`set_provisioning_status`), so a rejected or failed rerun leaves the record
    describing what exists. Refused: a name registered by hand, a rerun that changes where
    the cluster or its state are, a name whose destroy is under way.
    """
    cluster_name = require_text(cluster_name, "cluster name", 253)
    provider = parse_choice(ClusterProvider, cloud, "cloud")
    existing = find_provisioning(session, cluster_name)
    if existing is None:
        registered = session.scalar(select(Cluster.id).where(Cluster.name == cluster_name))
        if registered is not None:
            raise Conflict(
                f"a cluster named {cluster_name!r} is already registered and was not "
                "provisioned here; pick another name"
            )
        existing = Provisioning(cluster_name=cluster_name, cloud=provider)
        session.add(existing)
    elif existing.status == ProvisioningStatus.DESTROYING:
        raise Conflict(
            f"cluster {cluster_name!r} is being destroyed (a destroy-cluster run is waiting "
            "or was interrupted); run destroy-cluster again to finish it before provisioning"
        )
    elif existing.status != ProvisioningStatus.DESTROYED:
        changed = [
            name for name in IDENTITY_FIELDS if existing.request.get(name) != request.get(name)
        ]
        if changed:
            listed = ", ".join(
                f"{name} {existing.request.get(name)!r} -> {request.get(name)!r}"
                for name in changed
            )
            raise Conflict(
                f"cluster {cluster_name!r} exists with other {', '.join(changed)} ({listed}); "
                "those cannot change on a rerun (it would plan against other state): keep "
                "them, or destroy the cluster first"
            )
        return existing
    existing.module = module
    existing.credentials_block = credentials_block
    existing.request = request
    existing.outputs = None
    existing.kubeconfig_block = None
    existing.status = ProvisioningStatus.PLANNED
    existing.status_reason = None
    with translated_errors(f"record the provisioning of {cluster_name!r}"):
        session.flush()
    return existing


def set_provisioning_status(
    session: Session,
    cluster_name: str,
    status: str,
    reason: str | None = None,
    *,
    outputs: dict[str, Any] | None = None,
    kubeconfig_block: str | None = None,
    request: dict[str, Any] | None = None,
    credentials_block: str | None = None,
) -> Provisioning:
    """Move a provisioning to ``status``; ``request`` records the form that was applied."""
    provisioning = get_provisioning(session, cluster_name)
    provisioning.status = parse_choice(ProvisioningStatus, status, "provisioning status")
    provisioning.status_reason = reason
    if outputs is not None:
        provisioning.outputs = outputs
    if kubeconfig_block is not None:
        provisioning.kubeconfig_block = kubeconfig_block or None
    if request is not None:
        provisioning.request = request
    if credentials_block is not None:
        provisioning.credentials_block = credentials_block
    session.flush()
    return provisioning
