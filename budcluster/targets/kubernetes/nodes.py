"""What this target reads of nodes: their state, the accelerators their pods hold, and the
inventory reconciled from the collector's report, the node's labels and its allocatable."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from budcluster.hardware.advertised_gpus import extend_to_advertised
from budcluster.hardware.inventory import (
    DevicesInUse,
    NodeInventory,
    NodeScheduling,
    NodeTaint,
)
from budcluster.hardware.merge import merge_fragments
from budcluster.hardware.node_labels import parse_node_labels
from budcluster.targets.base import NodeHealth
from budcluster.targets.kubernetes.names import RELEASE_LABEL
from budcluster.targets.kubernetes.objects import Container, NodeObject, PodObject

GPU_RESOURCE = "nvidia.com/gpu"
GAUDI_RESOURCE = "habana.ai/gaudi"


@dataclass(frozen=True)
class NodeState(NodeHealth):
    """What the scheduler sees of a node; ``cluster-health`` records these."""

    allocatable: dict[str, str] = field(default_factory=dict)

    def notes(self) -> list[str]:
        lines = [
            f"kubernetes: ready={str(self.ready).lower()} "
            f"schedulable={str(self.schedulable).lower()}"
        ]
        if self.taints:
            lines.append("kubernetes: taints " + ", ".join(self.taints))
        if self.pressure:
            lines.append("kubernetes: conditions " + ", ".join(self.pressure))
        accel = {k: v for k, v in self.allocatable.items() if k in (GPU_RESOURCE, GAUDI_RESOURCE)}
        if accel:
            lines.append(
                "kubernetes: allocatable " + ", ".join(f"{k}={v}" for k, v in sorted(accel.items()))
            )
        return lines


def node_state(node: NodeObject) -> NodeState:
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    taints = [
        f"{t.get('key')}{'=' + str(t['value']) if t.get('value') else ''}:{t.get('effect')}"
        for t in spec.get("taints") or []
    ]
    return NodeState(
        name=str(node["metadata"]["name"]),
        ready=conditions.get("Ready") == "True",
        schedulable=not spec.get("unschedulable", False),
        taints=taints,
        pressure=sorted(t for t, s in conditions.items() if t != "Ready" and s == "True"),
        allocatable={str(k): str(v) for k, v in (status.get("allocatable") or {}).items()},
    )


def node_lost(name: str, node: NodeObject | None) -> str | None:
    """Why node ``name`` can no longer run pods (``node`` is its object, None when it is
    gone from the API), or None while it is Ready."""
    if node is None:
        return f"node {name} was removed from the cluster"
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            if condition.get("status") == "True":
                return None
            why = condition.get("reason") or "NotReady"
            message = condition.get("message")
            return f"node {name} is NotReady ({why}{': ' + message if message else ''})"
    return f"node {name} reports no Ready condition"


def pinned_node(pod_spec: Mapping[str, Any]) -> str | None:
    """The node a pod template's ``kubernetes.io/hostname`` selector pins it to, if any."""
    selector = pod_spec.get("nodeSelector") or {}
    value = selector.get("kubernetes.io/hostname")
    return str(value) if value else None


RUNTIME_SELECTOR = "app.kubernetes.io/name=bud-runtime"
SERVED_MODEL_ANNOTATION = "budcluster.io/served-model-name"
# What the scheduler counts against a node: every pod bound to it that has not ended. One
# cluster-wide list (grouped by ``spec.nodeName`` in :func:`pods_by_node`) instead of one
# list per node: on a 1,000-node cluster that is one API call instead of 1,000.
HOLDING_PODS_SELECTOR = "status.phase!=Succeeded,status.phase!=Failed"


def is_accelerator(resource: str) -> bool:
    return resource in (GPU_RESOURCE, GAUDI_RESOURCE) or resource.startswith("nvidia.com/mig-")


def _container_requests(container: Container) -> dict[str, int]:
    resources = container.get("resources") or {}
    # Extended resources cannot be overcommitted: requests equal limits, and the API server
    # copies a limit into an absent request.
    merged = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
    return {
        str(k): int(str(v))
        for k, v in merged.items()
        if is_accelerator(str(k)) and str(v).isdigit()
    }


def pod_accelerator_requests(pod: PodObject) -> dict[str, int]:
    """The accelerators the scheduler counts for a pod: per resource, the larger of the sum
    over its containers (with restartable init containers, the sidecars that run beside them)
    and the largest ordinary init container."""
    spec = pod.get("spec") or {}
    inits = spec.get("initContainers") or []
    running = [
        *(spec.get("containers") or []),
        *(c for c in inits if c.get("restartPolicy") == "Always"),
    ]
    total: dict[str, int] = {}
    for container in running:
        for resource, count in _container_requests(container).items():
            total[resource] = total.get(resource, 0) + count
    for container in inits:
        if container.get("restartPolicy") != "Always":
            for resource, count in _container_requests(container).items():
                total[resource] = max(total.get(resource, 0), count)
    return total


def pods_by_node(pods: Sequence[PodObject]) -> dict[str, list[PodObject]]:
    """The pods bound to each node (``spec.nodeName``), leaving out those that ended
    (Succeeded or Failed) and those not bound yet: what ``kubectl describe node`` lists
    under "Non-terminated Pods" for each node."""
    found: dict[str, list[PodObject]] = {}
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            found.setdefault(str(node), []).append(pod)
    return found


def devices_in_use(
    pods: Sequence[PodObject], runtimes: Mapping[tuple[str, str], str]
) -> list[DevicesInUse]:
    """What the pods request, per resource and holder. A pod of a bud-serve-cluster runtime
    (``budcluster.io/release`` naming one of ``runtimes``, (namespace, release) -> served
    model name) is held by that served name; any other pod by no one in particular."""
    totals: dict[tuple[str, str | None], int] = {}
    for pod in pods:
        meta = pod.get("metadata") or {}
        release = (meta.get("labels") or {}).get(RELEASE_LABEL)
        holder = runtimes.get((str(meta.get("namespace")), str(release))) if release else None
        for resource, count in pod_accelerator_requests(pod).items():
            if count:
                totals[(resource, holder)] = totals.get((resource, holder), 0) + count
    return [
        DevicesInUse(resource=resource, count=count, holder=holder)
        for (resource, holder), count in sorted(
            totals.items(), key=lambda i: (i[0][0], i[0][1] or "")
        )
    ]


def _in_use_note(in_use: Sequence[DevicesInUse]) -> str | None:
    if not in_use:
        return None
    parts = []
    for resource in sorted({e.resource for e in in_use}):
        entries = [e for e in in_use if e.resource == resource]
        held = ", ".join(f"{e.count} by runtime {e.holder!r}" for e in entries if e.holder)
        parts.append(f"{resource}={sum(e.count for e in entries)}" + (f" ({held})" if held else ""))
    return "kubernetes: requested by pods on this node: " + ", ".join(parts)


def reconcile_node(
    collector_json: str | None,
    node: NodeObject,
    state: NodeState,
    in_use: Sequence[DevicesInUse] = (),
) -> NodeInventory:
    """The collector's report, gaps filled from NFD/GFD labels, checked against allocatable,
    with what the node's pods already request (``in_use``, for the planner).

    GPUs the device plugin advertises beyond those the collector described are added from
    the GFD labels when they agree (``budcluster.hardware.advertised_gpus``); any other
    mismatch is only noted.
    """
    labels = {str(k): str(v) for k, v in (node["metadata"].get("labels") or {}).items()}
    fragments: list[dict[str, Any]] = []
    notes = state.notes()
    if collector_json:
        try:
            fragments.append(json.loads(collector_json))
        except ValueError:
            notes.append("kubernetes: the collector's ConfigMap is not JSON; labels only")
    else:
        notes.append("kubernetes: no collector report for this node; labels only")
    from_labels = parse_node_labels(labels, origin=f"node {state.name} labels")
    fragments.append(from_labels)
    merged = merge_fragments(*fragments)
    merged["node_name"] = state.name
    inventory = NodeInventory.from_fragment(merged)
    allocatable_gpus = _count(state.allocatable.get(GPU_RESOURCE))
    advertised = extend_to_advertised(
        inventory, labels, (from_labels.get("nvidia") or {}).get("gpus") or [], allocatable_gpus
    )
    inventory = advertised.inventory
    if advertised.note:
        notes.append(f"kubernetes: {advertised.note}")
    gpus = len(inventory.nvidia.gpus) if inventory.nvidia else 0
    migs = sum(len(g.mig_devices) for g in inventory.nvidia.gpus) if inventory.nvidia else 0
    if allocatable_gpus is not None and allocatable_gpus not in (gpus, migs):
        notes.append(
            f"kubernetes: allocatable {GPU_RESOURCE}={allocatable_gpus} but the node reports "
            f"{gpus} GPUs ({migs} MIG devices); the device plugin decides what pods can get"
        )
    cards = len(inventory.gaudi.devices) if inventory.gaudi else 0
    allocatable_cards = _count(state.allocatable.get(GAUDI_RESOURCE))
    if allocatable_cards is not None and allocatable_cards != cards:
        notes.append(
            f"kubernetes: allocatable {GAUDI_RESOURCE}={allocatable_cards} but the node "
            f"reports {cards} Gaudi cards"
        )
    note = _in_use_note(in_use)
    if note:
        notes.append(note)
    return inventory.model_copy(
        update={
            "notes": [*inventory.notes, *notes],
            "devices_in_use": list(in_use),
            "scheduling": node_scheduling(node),
        }
    )


def node_scheduling(node: NodeObject) -> NodeScheduling:
    """The node's taints, cordon and labels: what decides which pods it accepts."""
    spec = node.get("spec") or {}
    return NodeScheduling(
        taints=[
            NodeTaint(
                key=str(t.get("key", "")),
                value=str(t.get("value") or ""),
                effect=str(t.get("effect", "")),
            )
            for t in spec.get("taints") or []
        ],
        unschedulable=bool(spec.get("unschedulable", False)),
        labels={str(k): str(v) for k, v in (node["metadata"].get("labels") or {}).items()},
    )


def _count(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None
