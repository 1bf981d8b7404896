"""Node hardware snapshots, per cluster, with their full history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from budcluster.store.clusters import get_cluster_by_id
from budcluster.store.errors import translated_errors
from budcluster.store.models import AcceleratorKind, Node, NodeSnapshot
from budcluster.store.validation import (
    parse_choice,
    require_aware,
    require_non_negative,
    require_text,
)


@dataclass(slots=True)
class NodeObservation:
    """What hardware detection saw on one node at one moment."""

    name: str
    detected_at: datetime
    hardware: dict[str, Any]
    """The detector's full report, kept as it was for later questions."""
    schedulable: bool = True
    conditions: dict[str, Any] = field(default_factory=dict)
    cpu_model: str | None = None
    cpu_cores: int | None = None
    memory_bytes: int | None = None
    accelerator_kind: str = AcceleratorKind.CPU.value
    accelerator_count: int = 0
    accelerator_model: str | None = None
    accelerator_memory_bytes: int | None = None


def _hardware_columns(observation: NodeObservation) -> dict[str, Any]:
    for name in ("cpu_cores", "memory_bytes", "accelerator_count", "accelerator_memory_bytes"):
        require_non_negative(getattr(observation, name), f"node {observation.name!r} {name}")
    return {
        "hardware": observation.hardware,
        "cpu_model": observation.cpu_model,
        "cpu_cores": observation.cpu_cores,
        "memory_bytes": observation.memory_bytes,
        "accelerator_kind": parse_choice(
            AcceleratorKind,
            observation.accelerator_kind,
            f"node {observation.name!r} accelerator_kind",
        ),
        "accelerator_count": observation.accelerator_count,
        "accelerator_model": observation.accelerator_model,
        "accelerator_memory_bytes": observation.accelerator_memory_bytes,
        "schedulable": observation.schedulable,
        "conditions": observation.conditions,
        "detected_at": require_aware(
            observation.detected_at, f"node {observation.name!r} detected_at"
        ),
    }


def record_node_snapshot(session: Session, cluster_id: int, observation: NodeObservation) -> Node:
    """Append the snapshot to the node's history and make it current unless it is older.

    Snapshots may arrive out of order (retried tasks); an older one joins the history
    without replacing a newer current state.
    """
    return record_node_snapshots(session, cluster_id, [observation])[0]


def record_node_snapshots(
    session: Session, cluster_id: int, observations: Sequence[NodeObservation]
) -> list[Node]:
    """:func:`record_node_snapshot` for many nodes at once, in order; returns their rows.

    A fixed number of statements whatever the node count: one read of the cluster's
    nodes, one multi-row INSERT of the new ones (and one read of their ids), the updates
    of known nodes batched by the ORM, one multi-row INSERT of all snapshots. Recording a
    1,000-node detection one node at a time took three round trips per node. Every
    observation is checked before anything is written; two observations of one node apply
    in turn, as two calls would.
    """
    get_cluster_by_id(session, cluster_id)
    prepared = [
        (require_text(o.name, "node name", 253), _hardware_columns(o)) for o in observations
    ]
    if not prepared:
        return []
    in_cluster = select(Node).where(Node.cluster_id == cluster_id)
    known = {node.name: node for node in session.scalars(in_cluster)}
    new: dict[str, dict[str, Any]] = {}  # the current state of each node not yet known
    for name, columns in prepared:
        node = known.get(name)
        if node is not None:
            if node.detected_at <= columns["detected_at"]:
                for key, value in columns.items():
                    setattr(node, key, value)
        elif name not in new or new[name]["detected_at"] <= columns["detected_at"]:
            new[name] = columns
    what = f"record node {prepared[0][0]!r}" if len(prepared) == 1 else "record nodes"
    with translated_errors(what):
        session.flush()
        if new:
            session.execute(
                insert(Node),
                [{"cluster_id": cluster_id, "name": name, **c} for name, c in new.items()],
            )
            known = {node.name: node for node in session.scalars(in_cluster)}
        session.execute(
            insert(NodeSnapshot),
            [{"node_id": known[name].id, **columns} for name, columns in prepared],
        )
    return [known[name] for name, _ in prepared]


def list_nodes(session: Session, cluster_id: int) -> list[Node]:
    return list(
        session.scalars(select(Node).where(Node.cluster_id == cluster_id).order_by(Node.name))
    )


def node_history(session: Session, node_id: int) -> list[NodeSnapshot]:
    """Every snapshot of a node, oldest first."""
    query = (
        select(NodeSnapshot)
        .where(NodeSnapshot.node_id == node_id)
        .order_by(NodeSnapshot.detected_at, NodeSnapshot.id)
    )
    return list(session.scalars(query))
