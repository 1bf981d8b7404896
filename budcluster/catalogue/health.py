"""Record what a cluster health check saw: the cluster's status and each node's readiness.

A health check does not re-inventory hardware (that is ``detect-nodes``); it sets the
cluster to available/unavailable and writes a ``Reachable`` condition on every recorded
node, so the UI and the planner's operator see which nodes answered and when.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from budcluster.store.clusters import get_cluster, set_cluster_status
from budcluster.store.nodes import list_nodes


@dataclass(frozen=True)
class HealthObservation:
    cluster: str
    reachable: bool
    nodes: list[str]
    """Nodes that answered (empty when the cluster could not be reached at all)."""
    detail: str
    checked_at: datetime


def record_health(session: Session, seen: HealthObservation) -> list[dict[str, object]]:
    """Write the observation; returns one row per recorded node for the health table."""
    status = "available" if seen.reachable else "unavailable"
    set_cluster_status(session, seen.cluster, status, seen.detail or None)
    answered = set(seen.nodes)
    rows: list[dict[str, object]] = []
    for node in list_nodes(session, get_cluster(session, seen.cluster).id):
        ready = seen.reachable and node.name in answered
        # A fresh dict: the JSON column only notices reassignment, not in-place edits.
        node.conditions = {
            **(node.conditions or {}),
            "Reachable": {
                "status": "True" if ready else "False",
                "checked_at": seen.checked_at.isoformat(),
                "reason": "answered" if ready else (seen.detail or "did not answer"),
            },
        }
        rows.append({"cluster": seen.cluster, "node": node.name, "reachable": ready})
    session.flush()
    return rows


def unknown_nodes(seen: HealthObservation, recorded: Iterable[str]) -> list[str]:
    """Nodes that answered but were never inventoried: run detect-nodes for them."""
    return sorted(set(seen.nodes) - set(recorded))
