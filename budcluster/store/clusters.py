"""Registered clusters: where models are deployed."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from budcluster.lifecycle import DeploymentStatus
from budcluster.store.errors import Conflict, translated_errors
from budcluster.store.models import (
    Cluster,
    ClusterKind,
    ClusterProvider,
    ClusterStatus,
    Deployment,
    Transfer,
)
from budcluster.store.rows import add_and_flush, get_or_not_found
from budcluster.store.validation import parse_choice, require_text


def register_cluster(
    session: Session,
    *,
    name: str,
    kind: str,
    provider: str,
    credentials_block: str | None = None,
    server_url: str | None = None,
    platform_version: str | None = None,
) -> Cluster:
    """Add a cluster in status ``registering``.

    Raises Conflict when the name is taken or, for API clusters, when another cluster
    already points at the same server URL (two records would manage one cluster).
    """
    name = require_text(name, "cluster name", 253)
    if session.scalar(select(Cluster.id).where(Cluster.name == name)) is not None:
        raise Conflict(f"a cluster named {name!r} is already registered; pick another name")
    if server_url is not None:
        owner = session.scalar(select(Cluster.name).where(Cluster.server_url == server_url))
        if owner is not None:
            raise Conflict(
                f"cluster {owner!r} is already registered with server URL {server_url}; "
                "delete it first or reuse it"
            )
    cluster = Cluster(
        name=name,
        kind=parse_choice(ClusterKind, kind, "cluster kind"),
        provider=parse_choice(ClusterProvider, provider, "cluster provider"),
        status=ClusterStatus.REGISTERING,
        credentials_block=credentials_block,
        server_url=server_url,
        platform_version=platform_version,
    )
    # A concurrent registration can still win the race; the unique constraints decide.
    with translated_errors(f"register cluster {name!r}"):
        return add_and_flush(session, cluster)


def find_cluster(session: Session, name: str) -> Cluster | None:
    return session.scalar(select(Cluster).where(Cluster.name == name))


def get_cluster(session: Session, name: str) -> Cluster:
    return get_or_not_found(
        session, Cluster, what="cluster", fix="`budcluster` lists registered clusters", name=name
    )


def get_cluster_by_id(session: Session, cluster_id: int) -> Cluster:
    return get_or_not_found(session, Cluster, what="cluster", id=cluster_id)


def list_clusters(session: Session) -> list[Cluster]:
    return list(session.scalars(select(Cluster).order_by(Cluster.name)))


def set_cluster_status(
    session: Session, name: str, status: str, reason: str | None = None
) -> Cluster:
    cluster = get_cluster(session, name)
    cluster.status = parse_choice(ClusterStatus, status, "cluster status")
    cluster.status_reason = reason
    session.flush()
    return cluster


def delete_cluster(session: Session, name: str) -> None:
    """Remove a cluster and its nodes; refused while deployments or transfers refer to it."""
    cluster = get_cluster(session, name)
    session.delete(cluster)
    with translated_errors(f"delete cluster {name!r} (delete its deployments first)"):
        session.flush()


# Deployments in these statuses run nothing on the cluster any more.
_SETTLED = frozenset({DeploymentStatus.DELETED, DeploymentStatus.FAILED})


def _deployments(session: Session, cluster_id: int) -> list[Deployment]:
    query = select(Deployment).where(Deployment.cluster_id == cluster_id).order_by(Deployment.name)
    return list(session.scalars(query))


def live_deployments(session: Session, name: str) -> list[str]:
    """Deployments of the cluster that may still run something, as 'name (status)'."""
    cluster = get_cluster(session, name)
    return [
        f"{d.name} ({d.status.value})"
        for d in _deployments(session, cluster.id)
        if d.status not in _SETTLED
    ]


def deregister_cluster(session: Session, name: str, *, force: bool = False) -> list[str]:
    """Forget a cluster: its nodes, deployments and transfers go; benchmark results stay.

    Refused while a deployment may still be running on it, unless ``force`` (its runtimes
    are then left as they are). Returns the names of the deployments that were forgotten.
    """
    cluster = get_cluster(session, name)
    live = live_deployments(session, name)
    if live and not force:
        raise Conflict(
            f"cluster {name!r} still has {len(live)} deployment(s) that may be running: "
            f"{', '.join(live)}; remove them with teardown-deployment first, or pass "
            "force=true to forget them (their runtimes are left running)"
        )
    deployments = _deployments(session, cluster.id)
    for transfer in session.scalars(select(Transfer).where(Transfer.cluster_id == cluster.id)):
        session.delete(transfer)
    session.flush()
    for deployment in deployments:
        session.delete(deployment)
    session.flush()
    session.delete(cluster)
    with translated_errors(f"deregister cluster {name!r}"):
        session.flush()
    return [d.name for d in deployments]
