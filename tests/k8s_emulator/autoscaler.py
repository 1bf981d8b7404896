"""HorizontalPodAutoscaler (autoscaling/v2): the API server's defaults and validation, and a
simulated horizontal-pod-autoscaler controller on per-pod (``Pods``) custom metrics.

The real controller reads per-pod metrics from custom.metrics.k8s.io, served by a metrics
adapter from Prometheus. Here the TEST feeds them (``PodMetrics``, through
``Emulator.set_pod_metric`` or ``POST /_emulator/metrics``): a fed value is what every
matching pod reports once it is Ready (a runtime serves ``/metrics`` only when it is up).
From there the controller follows kube-controller-manager's algorithm
(pkg/controller/podautoscaler): ``replica_calculator.go``'s plain-metric calculation
(desired = ceil(ratio x ready pods), tolerance 0.1, missing and pending pods), then the
behavior's stabilization windows and scaling policies, clamped to min/max; it writes the
target Deployment's ``spec.replicas``, and the Deployment and ReplicaSet controllers turn
that into pods.

Compressed: the sync period is ``Timings.hpa_sync_s`` (the real default is 15 s); the
stabilization windows and policy periods are real seconds. Only ``Pods`` metrics have a
source; other metric types report ScalingActive=False, as on a cluster without their API.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.k8s_emulator.selectors import Requirement, labels_match

if TYPE_CHECKING:
    pass

Obj = dict[str, Any]
TOLERANCE = 0.1
DOWNSCALE_STABILIZATION_S = 300  # --horizontal-pod-autoscaler-downscale-stabilization
METRIC_TYPES = ("ContainerResource", "External", "Object", "Pods", "Resource")
SCALABLE = {("apps/v1", "Deployment"): ("deployments", "apps")}
COMPONENT = "horizontal-pod-autoscaler"


# --- API server: defaults and validation ------------------------------------------------


def _default_rules(rules: Obj | None, up: bool) -> Obj:
    rules = copy.deepcopy(rules) if rules else {}
    if up:
        rules.setdefault("stabilizationWindowSeconds", 0)
    rules.setdefault("selectPolicy", "Max")
    rules.setdefault(
        "policies",
        [
            {"type": "Pods", "value": 4, "periodSeconds": 15},
            {"type": "Percent", "value": 100, "periodSeconds": 15},
        ]
        if up
        else [{"type": "Percent", "value": 100, "periodSeconds": 15}],
    )
    return rules


def default_hpa(obj: Obj) -> None:
    """autoscaling/v2 defaulting: minReplicas 1, CPU 80% without metrics, and a behavior's
    unset rules filled in (scaleDown's window stays unset: the controller's flag decides)."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("minReplicas", 1)
    if not spec.get("metrics"):
        spec["metrics"] = [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80},
                },
            }
        ]
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        behavior["scaleUp"] = _default_rules(behavior.get("scaleUp"), up=True)
        behavior["scaleDown"] = _default_rules(behavior.get("scaleDown"), up=False)


def hpa_causes(spec: Any) -> list[tuple[str, str]]:
    """ValidateHorizontalPodAutoscalerSpec's errors that a chart could trip, as (field, msg)."""
    if not isinstance(spec, dict):
        return [("spec", "Required value")]
    causes: list[tuple[str, str]] = []
    ref = spec.get("scaleTargetRef") or {}
    if not ref.get("kind"):
        causes.append(("spec.scaleTargetRef.kind", "Required value"))
    if not ref.get("name"):
        causes.append(("spec.scaleTargetRef.name", "Required value"))
    low, high = spec.get("minReplicas", 1), spec.get("maxReplicas", 0)
    if low < 1:
        causes.append(
            ("spec.minReplicas", f"Invalid value: {low}: must be greater than or equal to 1")
        )
    if high < 1:
        causes.append(("spec.maxReplicas", f"Invalid value: {high}: must be greater than 0"))
    if high < low:
        causes.append(
            (
                "spec.maxReplicas",
                f"Invalid value: {high}: must be greater than or equal to `minReplicas`",
            )
        )
    for n, metric in enumerate(spec.get("metrics") or []):
        path = f"spec.metrics[{n}]"
        if metric.get("type") not in METRIC_TYPES:
            supported = ", ".join(f'"{t}"' for t in METRIC_TYPES)
            causes.append(
                (
                    f"{path}.type",
                    f'Unsupported value: "{metric.get("type")}": supported values: {supported}',
                )
            )
        elif metric["type"] == "Pods":
            pods = metric.get("pods") or {}
            if not (pods.get("metric") or {}).get("name"):
                causes.append(
                    (f"{path}.pods.metric.name", "Required value: must specify a metric name")
                )
            if not (pods.get("target") or {}).get("averageValue"):
                causes.append(
                    (
                        f"{path}.pods.target.averageValue",
                        "Required value: must specify a positive target averageValue",
                    )
                )
    for direction in ("scaleUp", "scaleDown"):
        window = ((spec.get("behavior") or {}).get(direction) or {}).get(
            "stabilizationWindowSeconds"
        )
        if window is not None and not 0 <= window <= 3600:
            bound = "greater than or equal to 0" if window < 0 else "less than or equal to 3600"
            causes.append(
                (
                    f"spec.behavior.{direction}.stabilizationWindowSeconds",
                    f"Invalid value: {window}: must be {bound}",
                )
            )
    return causes


# --- the metrics the test feeds -----------------------------------------------------------


@dataclass
class MetricFeed:
    namespace: str
    metric: str
    value: float
    selector: list[Requirement]
    selector_text: str


@dataclass
class PodMetrics:
    """TEST-ONLY stand-in for custom.metrics.k8s.io: what each pod reports per metric."""

    feeds: list[MetricFeed] = field(default_factory=list)

    def set(
        self, namespace: str, metric: str, value: float, selector: list[Requirement], text: str
    ) -> None:
        """Every Ready pod in ``namespace`` matching ``selector`` reports ``value``."""
        self.feeds = [
            f
            for f in self.feeds
            if (f.namespace, f.metric, f.selector_text) != (namespace, metric, text)
        ]
        self.feeds.append(MetricFeed(namespace, metric, value, selector, text))

    def value(self, pod: Obj, metric: str) -> float | None:
        if not _pod_ready(pod):
            return None
        meta = pod["metadata"]
        found = None
        for feed in self.feeds:
            if (
                feed.namespace == meta.get("namespace")
                and feed.metric == metric
                and labels_match(feed.selector, meta.get("labels"))
            ):
                found = feed.value  # the latest matching feed wins
        return found


def _pod_ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


# --- the controller ---------------------------------------------------------------------------


@dataclass
class _State:
    """What the real controller keeps in memory per HPA between syncs."""

    last_sync: float = 0.0
    recommendations: list[tuple[float, int]] = field(default_factory=list)
    scale_up_events: list[tuple[float, int]] = field(default_factory=list)
    scale_down_events: list[tuple[float, int]] = field(default_factory=list)


class MetricUnavailable(Exception):
    """No replica count could be computed from a metric (the condition's reason and text)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def plain_metric_replicas(
    metrics: dict[str, int],
    current_replicas: int,
    target_milli: int,
    ready_count: int,
    unready: set[str],
    missing: set[str],
) -> tuple[int, int]:
    """``calcPlainMetricReplicas``: (desired replicas, average usage in milli-units).

    ``metrics`` holds the values of the pods that reported one (pending ones removed);
    missing pods count as the target on scale-down and 0 on scale-up, pending pods as 0 on
    scale-up, so neither exaggerates the change.
    """
    if not metrics:
        raise MetricUnavailable(
            "FailedGetPodsMetric",
            "did not receive metrics for targeted pods (pods might be unready)",
        )
    usage = sum(metrics.values()) // len(metrics)
    ratio = usage / target_milli
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if abs(1.0 - ratio) <= TOLERANCE:
            return current_replicas, usage
        return math.ceil(ratio * ready_count), usage
    filled = dict(metrics)
    for pod in missing:
        filled[pod] = target_milli if ratio < 1.0 else 0
    if scale_up_with_unready:
        for pod in unready:
            filled[pod] = 0
    new_ratio = (sum(filled.values()) // len(filled)) / target_milli
    if abs(1.0 - new_ratio) <= TOLERANCE or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current_replicas, usage
    desired = math.ceil(new_ratio * len(filled))
    if (new_ratio < 1.0 and desired > current_replicas) or (
        new_ratio > 1.0 and desired < current_replicas
    ):
        return current_replicas, usage
    return desired, usage


def _changed_within(events: list[tuple[float, int]], period_s: float, now: float) -> int:
    return sum(change for stamp, change in events if now - stamp <= period_s)


def _scale_limit(current: int, state: _State, rules: Obj, up: bool, now: float) -> int:
    """``calculateScaleUpLimitWithScalingRules`` / ``calculateScaleDownLimitWithBehaviors``."""
    policy = rules.get("selectPolicy", "Max")
    if policy == "Disabled":
        return current
    proposals: list[int] = []
    for rule in rules.get("policies") or []:
        period = float(rule["periodSeconds"])
        added = _changed_within(state.scale_up_events, period, now)
        deleted = _changed_within(state.scale_down_events, period, now)
        start = current - added + deleted
        value = int(rule["value"])
        if up:
            proposals.append(
                start + value if rule["type"] == "Pods" else math.ceil(start * (1 + value / 100))
            )
        else:
            proposals.append(
                start - value if rule["type"] == "Pods" else int(start * (1 - value / 100))
            )
    if not proposals:
        return current
    # Max picks the biggest change: the highest limit up, the lowest limit down.
    if up:
        return max(proposals) if policy == "Max" else min(proposals)
    return min(proposals) if policy == "Max" else max(proposals)


def normalize_with_behavior(
    state: _State, behavior: Obj, current: int, desired: int, low: int, high: int, now: float
) -> tuple[int, str, str]:
    """Stabilize the recommendation over the windows, then apply the rate policies and
    min/max (``normalizeDesiredReplicasWithBehaviors``); returns (replicas, reason, text)."""
    up_rules, down_rules = behavior["scaleUp"], behavior["scaleDown"]
    up_window = up_rules.get("stabilizationWindowSeconds", 0)
    down_window = down_rules.get("stabilizationWindowSeconds")
    if down_window is None:
        down_window = DOWNSCALE_STABILIZATION_S
    up_recommendation = down_recommendation = desired
    for stamp, recommendation in state.recommendations:
        if stamp > now - up_window:
            up_recommendation = min(recommendation, up_recommendation)
        if stamp > now - down_window:
            down_recommendation = max(recommendation, down_recommendation)
    stabilized = min(max(current, up_recommendation), down_recommendation)
    horizon = max(up_window, down_window)
    state.recommendations = [(s, r) for s, r in state.recommendations if s > now - horizon]
    state.recommendations.append((now, desired))

    if stabilized > current:
        limit = max(_scale_limit(current, state, up_rules, True, now), current)
        if high > limit:
            ceiling, reason = limit, "ScaleUpLimit"
            text = "the desired replica count is increasing faster than the maximum scale rate"
        else:
            ceiling, reason = high, "TooManyReplicas"
            text = "the desired replica count is more than the maximum replica count"
        if stabilized > ceiling:
            return ceiling, reason, text
    elif stabilized < current:
        limit = min(_scale_limit(current, state, down_rules, False, now), current)
        if low < limit:
            floor, reason = limit, "ScaleDownLimit"
            text = "the desired replica count is decreasing faster than the maximum scale rate"
        else:
            floor, reason = low, "TooFewReplicas"
            text = "the desired replica count is less than the minimum replica count"
        if stabilized < floor:
            return floor, reason, text
    return stabilized, "DesiredWithinRange", "the desired count is within the acceptable range"


# Without a behavior the real controller normalizes with its legacy rules (5 min downscale
# stabilization, scale-up to at most max(2 x current, 4)); these defaults behave the same.
_NO_BEHAVIOR = {
    "scaleUp": _default_rules(None, up=True),
    "scaleDown": _default_rules(None, up=False),
}
