"""Losing a node, the way the control plane sees it.

``NotReady`` is a node whose kubelet stopped posting status: the node lifecycle controller
sets its ``Ready`` condition to ``Unknown`` (``NodeStatusUnknown``, "Kubelet stopped
posting node status."), taints it ``node.kubernetes.io/unreachable`` with ``NoSchedule``
and ``NoExecute``, marks its pods not ready (a ``NodeNotReady`` event on each), and the
taint-based eviction deletes every pod that does not tolerate the ``NoExecute`` taint
(marking it with a ``DisruptionTarget`` condition, ``DeletionByTaintManager``). A pod that
tolerates it for ``tolerationSeconds`` goes that much later (scaled by
``Timings.toleration_scale``); one that tolerates it for ever stays. ``Deleted`` is a Node
object removed from the API: the pod garbage collector deletes the pods bound to it
(``DeletionByPodGC``, "PodGC: node no longer exists").

Simplifications, both stated: the emulator admits pods without the DefaultTolerationSeconds
plugin's 300 s tolerations, so an ordinary pod is evicted at the next tick; and an evicted
pod is removed at once, as if its kubelet had confirmed (on a real unreachable node it stays
Terminating, which the ReplicaSet controller ignores in the same way: it creates the
replacement either way). The lost node's kubelet does nothing more for its pods.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tests.k8s_emulator.events import record_event
from tests.k8s_emulator.scheduler import tolerates
from tests.k8s_emulator.store import now_iso

if TYPE_CHECKING:
    from tests.k8s_emulator.cluster import Cluster

Obj = dict[str, Any]
HOW = ("NotReady", "Deleted")
UNREACHABLE = "node.kubernetes.io/unreachable"


@dataclass
class LostNode:
    name: str
    how: str
    since: float  # time.monotonic()


def lose_node(cluster: Cluster, name: str, how: str) -> LostNode:
    """Make node ``name`` NotReady or delete it; its pods go at the next ticks."""
    if how not in HOW:
        raise ValueError(f"how must be one of {HOW}, got {how!r}")
    nodes = cluster.registry.get("nodes")
    live = cluster.store.find(nodes, None, name)
    if live is None:
        raise KeyError(f'nodes "{name}" not found')
    lost = LostNode(name, how, time.monotonic())
    cluster.lost_nodes[name] = lost
    if how == "Deleted":
        cluster.store.remove(nodes, live)
        return lost
    now = now_iso()
    node = copy.deepcopy(live)
    for condition in node["status"].get("conditions") or []:
        # The controller flips every kubelet-owned condition to Unknown.
        condition.update(
            status="Unknown",
            reason="NodeStatusUnknown",
            message="Kubelet stopped posting node status.",
            lastTransitionTime=now,
        )
    taints = [t for t in node["spec"].get("taints") or [] if t.get("key") != UNREACHABLE]
    taints.append({"key": UNREACHABLE, "effect": "NoSchedule", "timeAdded": now})
    taints.append({"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": now})
    node["spec"]["taints"] = taints
    cluster.store.write(nodes, node)
    pod_rt = cluster.registry.get("pods")
    for pod in cluster.store.list(pod_rt):
        if pod["spec"].get("nodeName") != name:
            continue
        record_event(
            cluster.store,
            pod,
            "NodeNotReady",
            "Node is not ready",
            type_="Warning",
            component="node-controller",
        )
        marked = copy.deepcopy(pod)
        for condition in marked["status"].get("conditions") or []:
            if condition.get("type") == "Ready":
                condition.update(status="False", lastTransitionTime=now)
        cluster.store.write(pod_rt, marked)
    return lost


def _evict_after(pod: Obj, taint: Obj, scale: float) -> float | None:
    """Seconds after the taint until eviction; None when the pod tolerates it for ever."""
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    matching = [t for t in tolerations if tolerates([t], taint)]
    if not matching:
        return 0.0
    seconds = [t.get("tolerationSeconds") for t in matching]
    if any(s is None for s in seconds):
        return None
    return max(0.0, min(float(s) for s in seconds if s is not None)) * scale


def reconcile_lost_nodes(cluster: Cluster) -> None:
    """Evict (NotReady) or collect (Deleted) the pods bound to each lost node."""
    if not cluster.lost_nodes:
        return
    pod_rt = cluster.registry.get("pods")
    now = time.monotonic()
    noexecute = {"key": UNREACHABLE, "effect": "NoExecute"}
    for pod in cluster.store.list(pod_rt):
        lost = cluster.lost_nodes.get(pod["spec"].get("nodeName") or "")
        if lost is None:
            continue
        if lost.how == "Deleted":
            reason, message = "DeletionByPodGC", "PodGC: node no longer exists"
        else:
            after = _evict_after(pod, noexecute, cluster.timings.toleration_scale)
            if after is None or now - lost.since < after:
                continue
            reason, message = (
                "DeletionByTaintManager",
                "Taint manager: deleting due to NoExecute taint",
            )
            record_event(
                cluster.store,
                pod,
                "TaintManagerEviction",
                f"Marking for deletion Pod {pod['metadata']['namespace']}/{pod['metadata']['name']}",
                component="taint-eviction-controller",
            )
        marked = copy.deepcopy(pod)
        conditions = [
            c
            for c in marked["status"].get("conditions") or []
            if c.get("type") != "DisruptionTarget"
        ]
        conditions.append(
            {
                "type": "DisruptionTarget",
                "status": "True",
                "reason": reason,
                "message": message,
                "lastProbeTime": None,
                "lastTransitionTime": now_iso(),
            }
        )
        marked["status"]["conditions"] = conditions
        written = cluster.store.write(pod_rt, marked)
        cluster.store.remove(pod_rt, written)


def on_lost_node(cluster: Cluster, pod: Obj) -> bool:
    """Whether ``pod`` is bound to a lost node (whose kubelet no longer acts)."""
    return (pod.get("spec") or {}).get("nodeName") in cluster.lost_nodes
