"""Placement claims: the devices a plan took on a cluster, until its pods are bound.

Node detection counts only the devices of pods already bound, so a deploy-model run that
has planned but not yet rolled out holds devices that nobody else can see. Each run
records what its plan took (node -> resource -> count) in the same transaction in which
it read the other claims and planned; :func:`lock_cluster_placement` makes that
transaction the only planner of the cluster until it commits.

When a claim stops counting. A claim is released when its deployment leaves the
rollout-in-progress statuses (:func:`budcluster.store.deployments.transition` calls
:func:`release_claim`): ready means its pods are bound, so detection sees them; failed,
deleting or deleted means they are gone or going. Releasing bumps the cluster's
``placement_epoch`` and stamps the claim with it. A planner reads the epoch *before* it
detects nodes and counts every claim still held or released after that read: a claimer
that became ready between our detection and our plan had its pods bound after we looked,
so our detection missed them and its claim must still count. A claim released before
our epoch read had its pods bound (or removed) before our detection began, so detection
already counts them and the claim would count them twice. The epoch is a counter in the
database, not a clock, so workers' clock skew cannot move a release across that line.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from budcluster.store.models import Cluster, PlacementClaim
from budcluster.store.validation import InvalidValue, require_text

# node name -> extended resource (nvidia.com/gpu, ...) -> device count
ClaimedDevices = dict[str, dict[str, int]]


def placement_epoch(session: Session, cluster_id: int) -> int:
    """The cluster's release counter; read it before detecting nodes (see the module)."""
    epoch = session.scalar(select(Cluster.placement_epoch).where(Cluster.id == cluster_id))
    if epoch is None:
        raise InvalidValue(f"cluster id {cluster_id} is not registered; register it first")
    return int(epoch)


def lock_cluster_placement(session: Session, cluster_name: str) -> int:
    """Make this transaction the cluster's only planner until it ends; the cluster's id.

    An UPDATE that changes nothing still takes the row's lock on Postgres, and on SQLite
    it takes the database's write lock; either way a second planner (or a release, which
    updates the same row) waits here. It must be the transaction's first statement: on
    SQLite a transaction that read first and then asks for the write lock can be refused
    at once instead of waiting.
    """
    session.execute(
        update(Cluster)
        .where(Cluster.name == cluster_name)
        .values(placement_epoch=Cluster.placement_epoch)
        .execution_options(synchronize_session=False)
    )
    cluster_id = session.scalar(select(Cluster.id).where(Cluster.name == cluster_name))
    if cluster_id is None:
        raise InvalidValue(f"cluster {cluster_name!r} is not registered; register it first")
    return int(cluster_id)


def claims_counting(
    session: Session, cluster_id: int, *, seen_epoch: int, excluding: str
) -> dict[str, ClaimedDevices]:
    """The claims of the cluster's other deployments that a planner whose detection began
    at ``seen_epoch`` must count: held, or released after that epoch. Deployment -> devices.
    """
    query = (
        select(PlacementClaim)
        .where(
            PlacementClaim.cluster_id == cluster_id,
            PlacementClaim.deployment_name != excluding,
            (PlacementClaim.released_epoch.is_(None))
            | (PlacementClaim.released_epoch > seen_epoch),
        )
        .order_by(PlacementClaim.deployment_name)
    )
    return {claim.deployment_name: _devices(claim.devices) for claim in session.scalars(query)}


def record_claim(
    session: Session,
    cluster_id: int,
    deployment_name: str,
    devices: Mapping[str, Mapping[str, int]],
) -> None:
    """Hold ``devices`` for ``deployment_name``, replacing its earlier claim if any."""
    deployment_name = require_text(deployment_name, "deployment name", 253)
    checked = _devices(devices)
    claim = session.scalar(
        select(PlacementClaim).where(
            PlacementClaim.cluster_id == cluster_id,
            PlacementClaim.deployment_name == deployment_name,
        )
    )
    if claim is None:
        session.add(
            PlacementClaim(cluster_id=cluster_id, deployment_name=deployment_name, devices=checked)
        )
    else:
        claim.devices = checked
        claim.released_epoch = None
    session.flush()


def release_claim(session: Session, cluster_id: int, deployment_name: str) -> bool:
    """Stop ``deployment_name``'s claim counting for planners that detect from now on;
    False when it held none. Bumps the cluster's epoch (which also waits for a planner
    holding the cluster's lock)."""
    claim = session.scalar(
        select(PlacementClaim).where(
            PlacementClaim.cluster_id == cluster_id,
            PlacementClaim.deployment_name == deployment_name,
            PlacementClaim.released_epoch.is_(None),
        )
    )
    if claim is None:
        return False
    session.execute(
        update(Cluster)
        .where(Cluster.id == cluster_id)
        .values(placement_epoch=Cluster.placement_epoch + 1)
        .execution_options(synchronize_session=False)
    )
    claim.released_epoch = placement_epoch(session, cluster_id)
    session.flush()
    return True


def _devices(devices: Mapping[str, Mapping[str, int]]) -> ClaimedDevices:
    checked: ClaimedDevices = {}
    for node, resources in devices.items():
        for resource, count in resources.items():
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise InvalidValue(
                    f"placement claim devices[{node!r}][{resource!r}] must be a count >= 0, "
                    f"not {count!r}"
                )
            checked.setdefault(str(node), {})[str(resource)] = count
    return checked
