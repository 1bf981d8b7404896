"""A scheduler that filters nodes like kube-scheduler's default plugins (unschedulable,
taints, node selector and required node affinity, resource fit) and words its
FailedScheduling message the same way."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.k8s_emulator.quantity import parse_quantity
from tests.k8s_emulator.selectors import node_selector_term_matches

Obj = dict[str, Any]
TERMINAL = ("Succeeded", "Failed")
# Reasons the preemption pass cannot fix (UnschedulableAndUnresolvable in the real plugins).
_UNRESOLVABLE_PREFIX = (
    "node(s) didn't match",
    "node(s) had untolerated",
    "node(s) were unschedulable",
)


def pod_requests(pod: Obj) -> dict[str, float]:
    """Effective requests: sum over containers, at least the largest init container."""
    spec = pod.get("spec") or {}
    total: dict[str, float] = {}
    for container in spec.get("containers") or []:
        for name, value in ((container.get("resources") or {}).get("requests") or {}).items():
            total[name] = total.get(name, 0.0) + parse_quantity(value)
    for container in spec.get("initContainers") or []:
        for name, value in ((container.get("resources") or {}).get("requests") or {}).items():
            total[name] = max(total.get(name, 0.0), parse_quantity(value))
    return total


def tolerates(tolerations: list[Obj], taint: Obj) -> bool:
    """Whether any toleration tolerates ``taint``: ``Toleration.ToleratesTaint`` of
    k8s.io/api core/v1 (toleration.go). An empty effect matches every effect, an empty key
    every key (the API server only admits that with Exists), Exists every value, and Equal
    (also the empty operator) only the same value; an unknown operator tolerates nothing."""
    for tol in tolerations:
        if tol.get("effect") and tol["effect"] != taint.get("effect"):
            continue
        if tol.get("key") and tol["key"] != taint.get("key"):
            continue
        operator = tol.get("operator") or "Equal"
        if operator == "Exists":
            return True
        if operator == "Equal" and (tol.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def untolerated_taint(pod: Obj, node: Obj) -> Obj | None:
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):
            return dict(taint)
    return None


def matches_node_affinity(pod: Obj, node: Obj) -> bool:
    spec = pod.get("spec") or {}
    labels = node["metadata"].get("labels") or {}
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms")
    if terms:
        return any(node_selector_term_matches(term, node) for term in terms)
    return True


def filter_reasons(pod: Obj, node: Obj, pods_on_node: list[Obj]) -> list[str]:
    """Why ``pod`` cannot go on ``node`` (empty when it fits), in the plugins' order."""
    if (node.get("spec") or {}).get("unschedulable"):
        unschedulable_taint = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
        if not tolerates((pod.get("spec") or {}).get("tolerations") or [], unschedulable_taint):
            return ["node(s) were unschedulable"]
    taint = untolerated_taint(pod, node)
    if taint is not None:
        return [f"node(s) had untolerated taint {{{taint['key']}: {taint.get('value', '')}}}"]
    if not matches_node_affinity(pod, node):
        return ["node(s) didn't match Pod's node affinity/selector"]
    allocatable = {
        k: parse_quantity(v) for k, v in (node.get("status") or {}).get("allocatable", {}).items()
    }
    used: dict[str, float] = {}
    for other in pods_on_node:
        for name, value in pod_requests(other).items():
            used[name] = used.get(name, 0.0) + value
    reasons: list[str] = []
    if len(pods_on_node) + 1 > allocatable.get("pods", 110):
        reasons.append("Too many pods")
    for name, wanted in sorted(pod_requests(pod).items()):
        if wanted <= 0:
            continue
        if wanted > allocatable.get(name, 0.0) - used.get(name, 0.0) + 1e-9:
            reasons.append(f"Insufficient {name}")
    return reasons


def failed_scheduling_message(per_node: dict[str, list[str]]) -> str:
    total = len(per_node)
    reasons: Counter[str] = Counter()
    preemption: Counter[str] = Counter()
    for node_reasons in per_node.values():
        reasons.update(node_reasons)
        if any(r.startswith(_UNRESOLVABLE_PREFIX) for r in node_reasons):
            preemption["Preemption is not helpful for scheduling"] += 1
        else:
            preemption["No preemption victims found for incoming pod"] += 1
    if total == 0:
        return "no nodes available to schedule pods"
    text = (
        f"0/{total} nodes are available: "
        + ", ".join(sorted(f"{count} {reason}" for reason, count in reasons.items()))
        + "."
    )
    text += (
        f" preemption: 0/{total} nodes are available: "
        + ", ".join(sorted(f"{count} {reason}" for reason, count in preemption.items()))
        + "."
    )
    return text


def bound_pods_by_node(pods: list[Obj]) -> dict[str, list[Obj]]:
    """The pods that count against each node: bound to it and not ended."""
    by_node: dict[str, list[Obj]] = {}
    for p in pods:
        bound = (p.get("spec") or {}).get("nodeName")
        if bound and (p.get("status") or {}).get("phase") not in TERMINAL:
            by_node.setdefault(bound, []).append(p)
    return by_node


def named_nodes(pod: Obj) -> set[str] | None:
    """The nodes a pod's required node affinity names with ``matchFields`` ``metadata.name
    In`` in every term (how the DaemonSet controller pins its pods), else None: as
    kube-scheduler's NodeAffinity PreFilter, only those nodes can pass the filters."""
    required = (((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        return None
    names: set[str] = set()
    for term in terms:
        fields = [
            f
            for f in term.get("matchFields") or []
            if f.get("key") == "metadata.name" and f.get("operator") == "In"
        ]
        if not fields:
            return None
        names.update(str(v) for v in fields[0].get("values") or [])
    return names


def choose_node(
    pod: Obj,
    nodes: list[Obj],
    pods: list[Obj],
    by_node: dict[str, list[Obj]] | None = None,
    by_name: dict[str, Obj] | None = None,
) -> tuple[str | None, str]:
    """(node name, "") when the pod fits somewhere, else (None, FailedScheduling message).
    Among fitting nodes the least requested one wins (spreads like NodeResourcesFit).

    ``by_node`` is ``bound_pods_by_node(pods)`` and ``by_name`` the nodes by name, when the
    caller keeps them across decisions (the pod being placed is not bound, so it is never
    in ``by_node``)."""
    # Indexed once per pod (or once per scheduling pass by the caller): scanning every pod
    # for every node made a 1,000-node cluster's DaemonSet rollout quadratic.
    if by_node is None:
        by_node = bound_pods_by_node(
            [p for p in pods if p["metadata"]["uid"] != pod["metadata"]["uid"]]
        )
    named = named_nodes(pod)
    if named is not None:
        # Nodes outside the names fail node affinity: decide among the named ones, and
        # evaluate every node only to word the FailedScheduling message.
        if by_name is None:
            by_name = {n["metadata"]["name"]: n for n in nodes}
        candidates = [by_name[name] for name in sorted(named) if name in by_name]
        chosen = _best_fit(pod, candidates, by_node)
        if chosen is not None:
            return chosen, ""
    per_node: dict[str, list[str]] = {}
    fitting: list[tuple[float, str]] = []
    for node in nodes:
        name = node["metadata"]["name"]
        on_node = by_node.get(name, [])
        reasons = filter_reasons(pod, node, on_node)
        per_node[name] = reasons
        if not reasons:
            fitting.append((len(on_node), name))
    if fitting:
        return sorted(fitting)[0][1], ""
    return None, failed_scheduling_message(per_node)


def _best_fit(pod: Obj, nodes: list[Obj], by_node: dict[str, list[Obj]]) -> str | None:
    fitting = []
    for node in nodes:
        name = node["metadata"]["name"]
        on_node = by_node.get(name, [])
        if not filter_reasons(pod, node, on_node):
            fitting.append((len(on_node), name))
    return sorted(fitting)[0][1] if fitting else None
