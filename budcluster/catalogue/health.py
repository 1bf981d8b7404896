"""Record what a cluster health check saw: the cluster's status and each node's readiness.

A health check does not re-inventory hardware (that is ``detect-nodes``); it sets the
cluster to available/unavailable and writes a ``Reachable`` condition on every recorded
node, so the UI and the planner's operator see which nodes answered and when.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from budcluster.store.clusters import get_cluster, set_cluster_status
from budcluster.store.nodes import list_nodes
from budcluster.targets.base import NodeHealth


@dataclass(frozen=True)
class HealthObservation:
    cluster: str
    reachable: bool
    nodes: list[str]
    """Nodes that answered (empty when the cluster could not be reached at all)."""
    detail: str
    checked_at: datetime
    nodes_health: Mapping[str, NodeHealth] = field(default_factory=dict)
    """Readiness, schedulability, taints and pressure of the nodes that answered."""


def record_health(session: Session, seen: HealthObservation) -> list[dict[str, object]]:
    """Write the observation; returns one row per recorded node for the health table."""
    status = "available" if seen.reachable else "unavailable"
    set_cluster_status(session, seen.cluster, status, seen.detail or None)
    answered = set(seen.nodes)
    rows: list[dict[str, object]] = []
    for node in list_nodes(session, get_cluster(session, seen.cluster).id):
        ready = seen.reachable and node.name in answered
        health = seen.nodes_health.get(node.name)
        at = seen.checked_at.isoformat()
        # A fresh dict: the JSON column only notices reassignment, not in-place edits.
        conditions = {
            **(node.conditions or {}),
            "Reachable": {
                "status": "True" if ready else "False",
                "checked_at": at,
                "reason": "answered" if ready else (seen.detail or "did not answer"),
            },
        }
        if health is not None:
            conditions["Ready"] = {"status": str(health.ready), "checked_at": at}
            conditions["Taints"] = {"value": health.taints, "checked_at": at}
            conditions["Pressure"] = {"value": health.pressure, "checked_at": at}
            node.schedulable = health.schedulable
        node.conditions = conditions
        rows.append(
            {
                "cluster": seen.cluster,
                "node": node.name,
                "reachable": ready,
                "ready": health.ready if health else ready,
                "schedulable": health.schedulable if health else None,
                "taints": ", ".join(health.taints) if health else "",
                "pressure": ", ".join(health.pressure) if health else "",
            }
        )
    session.flush()
    return rows


def unknown_nodes(seen: HealthObservation, recorded: Iterable[str]) -> list[str]:
    """Nodes that answered but were never inventoried: run detect-nodes for them."""
    return sorted(set(seen.nodes) - set(recorded))
