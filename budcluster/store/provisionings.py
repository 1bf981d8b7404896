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


def start_provisioning(
    session: Session,
    *,
    cluster_name: str,
    cloud: str,
    module: str,
    credentials_block: str,
    request: dict[str, Any],
) -> Provisioning:
    """Record (or refresh, for a rerun) the provisioning of ``cluster_name`` as ``planned``.

    Refused when a cluster of that name is registered without having been provisioned
    here, or when the same name was provisioned on another cloud.
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
    elif existing.cloud != provider:
        raise Conflict(
            f"cluster {cluster_name!r} was provisioned on {existing.cloud.value}, not {cloud}; "
            "destroy it first or pick another name"
        )
    elif existing.status == ProvisioningStatus.DESTROYING:
        raise Conflict(
            f"cluster {cluster_name!r} is being destroyed (or its destroy failed: "
            f"{existing.status_reason}); run destroy-cluster again before provisioning it"
        )
    existing.module = module
    existing.credentials_block = credentials_block
    existing.request = request
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
) -> Provisioning:
    provisioning = get_provisioning(session, cluster_name)
    provisioning.status = parse_choice(ProvisioningStatus, status, "provisioning status")
    provisioning.status_reason = reason
    if outputs is not None:
        provisioning.outputs = outputs
    if kubeconfig_block is not None:
        provisioning.kubeconfig_block = kubeconfig_block
    session.flush()
    return provisioning
