"""The simulated horizontal-pod-autoscaler controller's sync loop: for each HPA, once per
``Timings.hpa_sync_s``, read the target's scale and pods, compute the desired replicas
(``autoscaler``'s algorithm), write the target's ``spec.replicas`` when it changes, record a
SuccessfulRescale event, and keep the HPA's status (current/desired replicas, metrics,
conditions) as the real controller does."""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any

from tests.k8s_emulator.autoscaler import (
    _NO_BEHAVIOR,
    COMPONENT,
    SCALABLE,
    MetricUnavailable,
    _State,
    normalize_with_behavior,
    plain_metric_replicas,
)
from tests.k8s_emulator.controllers import set_condition
from tests.k8s_emulator.events import record_event
from tests.k8s_emulator.quantity import parse_quantity
from tests.k8s_emulator.selectors import labels_match, selector_from_object
from tests.k8s_emulator.store import now_iso

if TYPE_CHECKING:
    from tests.k8s_emulator.cluster import Cluster

Obj = dict[str, Any]


def _milli(value: float) -> int:
    return round(value * 1000)


def _milli_quantity(milli: int) -> str:
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def _pods_metric(
    cluster: Cluster, metric: Obj, pods: list[Obj], current: int
) -> tuple[int, Obj, str]:
    """(replicas, status entry, description) for one ``Pods`` metric."""
    spec = metric["pods"]
    name = spec["metric"]["name"]
    target = _milli(parse_quantity(spec["target"]["averageValue"]))
    values: dict[str, int] = {}
    unready: set[str] = set()
    missing: set[str] = set()
    ready = 0
    for pod in pods:
        phase = (pod.get("status") or {}).get("phase")
        if pod["metadata"].get("deletionTimestamp") or phase == "Failed":
            continue
        if phase == "Pending":
            unready.add(pod["metadata"]["name"])
            continue
        value = cluster.pod_metrics.value(pod, name)
        if value is None:
            missing.add(pod["metadata"]["name"])
            continue
        values[pod["metadata"]["name"]] = _milli(value)
        ready += 1
    replicas, usage = plain_metric_replicas(values, current, target, ready, unready, missing)
    entry = {
        "type": "Pods",
        "pods": {"metric": {"name": name}, "current": {"averageValue": _milli_quantity(usage)}},
    }
    return replicas, entry, f"pods metric {name}"


def _replicas_for_metrics(
    cluster: Cluster, hpa: Obj, pods: list[Obj], current: int
) -> tuple[int, list[Obj], str]:
    """``computeReplicasForMetrics``: the largest proposal; a failure when every metric
    failed, or when one failed and the rest would scale down."""
    proposals: list[tuple[int, str]] = []
    statuses: list[Obj] = []
    failure: MetricUnavailable | None = None
    for metric in hpa["spec"].get("metrics") or []:
        try:
            if metric.get("type") != "Pods":
                raise MetricUnavailable(
                    f"FailedGet{metric.get('type')}Metric",
                    f"no {metric.get('type')} metrics API is served (the emulator feeds Pods "
                    "metrics only)",
                )
            replicas, entry, text = _pods_metric(cluster, metric, pods, current)
        except MetricUnavailable as exc:
            failure = exc
            continue
        proposals.append((replicas, text))
        statuses.append(entry)
    best = max(proposals, default=(0, ""))
    if failure is not None and (not proposals or best[0] < current):
        raise failure
    return best[0], statuses, best[1]


def _conditions(hpa: Obj, updates: list[tuple[str, str, str, str]]) -> list[Obj]:
    conditions = list((hpa.get("status") or {}).get("conditions") or [])
    for type_, status, reason, message in updates:
        conditions = set_condition(conditions, type_, status, reason, message)
    for condition in conditions:
        condition.pop("lastUpdateTime", None)  # HPA conditions carry no update time
    order = {"AbleToScale": 0, "ScalingActive": 1, "ScalingLimited": 2}
    return sorted(conditions, key=lambda c: order.get(c["type"], 3))


def _sync(cluster: Cluster, hpa: Obj, state: _State, now: float) -> None:
    store = cluster.store
    spec = hpa["spec"]
    namespace = hpa["metadata"]["namespace"]
    ref = spec["scaleTargetRef"]
    where = SCALABLE.get((ref.get("apiVersion", ""), ref.get("kind", "")))
    target = store.find(cluster.registry.get(*where), namespace, ref["name"]) if where else None
    status = copy.deepcopy(hpa.get("status") or {})
    status["observedGeneration"] = hpa["metadata"].get("generation", 1)
    if target is None:
        message = (
            f'{where[0]}.{where[1]} "{ref["name"]}" not found'
            if where
            else f"the emulator cannot scale {ref.get('apiVersion')} {ref.get('kind')}"
        )
        status["conditions"] = _conditions(
            hpa, [("AbleToScale", "False", "FailedGetScale", message)]
        )
        record_event(store, hpa, "FailedGetScale", message, "Warning", COMPONENT)
        _write_status(cluster, hpa, status)
        return
    current = int(target["spec"].get("replicas", 1))
    low, high = int(spec.get("minReplicas", 1)), int(spec["maxReplicas"])
    pods = [
        p
        for p in store.list(cluster.registry.get("pods"), namespace)
        if labels_match(
            selector_from_object((target["spec"] or {}).get("selector")),
            p["metadata"].get("labels"),
        )
    ]
    updates: list[tuple[str, str, str, str]] = []
    reason = ""
    if current == 0 and low != 0:
        desired = 0
        updates.append(
            (
                "ScalingActive",
                "False",
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
            )
        )
    elif current > high:
        desired, reason = high, "Current number of replicas above Spec.MaxReplicas"
    elif current < low:
        desired, reason = low, "Current number of replicas below Spec.MinReplicas"
    else:
        try:
            proposed, metrics, described = _replicas_for_metrics(cluster, hpa, pods, current)
        except MetricUnavailable as exc:
            status["conditions"] = _conditions(
                hpa,
                [
                    (
                        "AbleToScale",
                        "True",
                        "SucceededGetScale",
                        "the HPA controller was able to get the target's current scale",
                    ),
                    (
                        "ScalingActive",
                        "False",
                        exc.reason,
                        f"the HPA was unable to compute the replica count: {exc.message}",
                    ),
                ],
            )
            record_event(store, hpa, exc.reason, exc.message, "Warning", COMPONENT)
            _write_status(cluster, hpa, status)
            return
        status["currentMetrics"] = metrics
        desired, limit_reason, limit_text = normalize_with_behavior(
            state, spec.get("behavior") or _NO_BEHAVIOR, current, proposed, low, high, now
        )
        updates.append(
            (
                "ScalingActive",
                "True",
                "ValidMetricFound",
                f"the HPA was able to successfully calculate a replica count from {described}",
            )
        )
        limited = limit_reason != "DesiredWithinRange"
        updates.append(("ScalingLimited", str(limited), limit_reason, limit_text))
        reason = f"{described} above target" if desired > current else "All metrics below target"
    if desired != current and not (current == 0 and low != 0):
        scaled = copy.deepcopy(target)
        scaled["spec"]["replicas"] = desired
        store.write(cluster.registry.get(*SCALABLE[(ref["apiVersion"], ref["kind"])]), scaled)
        change = desired - current
        events = state.scale_up_events if change > 0 else state.scale_down_events
        events.append((now, abs(change)))
        status["lastScaleTime"] = now_iso()
        record_event(
            store,
            hpa,
            "SuccessfulRescale",
            f"New size: {desired}; reason: {reason}",
            "Normal",
            COMPONENT,
        )
        updates.insert(
            0,
            (
                "AbleToScale",
                "True",
                "SucceededRescale",
                f"the HPA controller was able to update the target scale to {desired}",
            ),
        )
    else:
        updates.insert(
            0, ("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size")
        )
    status["currentReplicas"] = int((target.get("status") or {}).get("replicas", 0))
    status["desiredReplicas"] = desired
    status["conditions"] = _conditions(hpa, updates)
    _write_status(cluster, hpa, status)


def _write_status(cluster: Cluster, hpa: Obj, status: Obj) -> None:
    new = copy.deepcopy(hpa)
    new["status"] = status
    if new != hpa:  # conditions keep their transition times: a quiet HPA is not rewritten
        cluster.store.write(cluster.registry.get("horizontalpodautoscalers", "autoscaling"), new)


def reconcile_hpas(cluster: Cluster) -> None:
    now = time.monotonic()
    rt = cluster.registry.get("horizontalpodautoscalers", "autoscaling")
    live = {hpa["metadata"]["uid"]: hpa for hpa in cluster.store.list(rt)}
    for uid in [u for u in cluster.hpa_state if u not in live]:
        del cluster.hpa_state[uid]
    for uid, hpa in live.items():
        state = cluster.hpa_state.setdefault(uid, _State())
        if now - state.last_sync < cluster.timings.hpa_sync_s:
            continue
        state.last_sync = now
        _sync(cluster, hpa, state, now)
