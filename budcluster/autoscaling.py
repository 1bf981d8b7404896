"""Autoscaling a runtime on a metric it exports: what the deploy form's ``autoscaling``
asks for, and which Prometheus series each engine exports for it.

Pure: data in, data out. The Kubernetes target renders it as a HorizontalPodAutoscaler, or
as a KEDA ScaledObject where KEDA's CRD is served; a hosts cluster has no controller that
could add or remove runtimes, so deploy-model refuses it there (docs/autoscaling.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "DEFAULT_PROMETHEUS_URL",
    "ENGINE_METRICS",
    "LLAMA_CPP_METRICS_FLAG",
    "AutoscalingSpec",
    "ScalingMetric",
    "prometheus_query",
    "quantity",
]


class ScalingMetric(StrEnum):
    REQUESTS_RUNNING = "requests_running"
    """Requests the engine is working on now (its batch)."""
    REQUESTS_WAITING = "requests_waiting"
    """Requests queued because the batch is full."""


ENGINE_METRICS: dict[str, dict[ScalingMetric, str]] = {
    "vllm": {
        ScalingMetric.REQUESTS_RUNNING: "vllm:num_requests_running",
        ScalingMetric.REQUESTS_WAITING: "vllm:num_requests_waiting",
    },
    "llama.cpp": {
        ScalingMetric.REQUESTS_RUNNING: "llamacpp:requests_processing",
        ScalingMetric.REQUESTS_WAITING: "llamacpp:requests_deferred",
    },
}
"""The Prometheus series each engine exports on its own port at ``/metrics``."""

LLAMA_CPP_METRICS_FLAG = "--metrics"
"""llama-server serves ``/metrics`` only with this flag."""

DEFAULT_PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090"
"""The Service the Prometheus Operator creates for a Prometheus in namespace monitoring."""


@dataclass(frozen=True)
class AutoscalingSpec:
    """How many replicas, on which metric, at what value per replica."""

    min_replicas: int
    max_replicas: int
    metric: ScalingMetric
    target_per_replica: float
    """The metric's average over the replicas that the autoscaler holds them at."""
    scale_up_stabilization_s: int = 0
    scale_down_stabilization_s: int = 300
    prometheus_url: str = DEFAULT_PROMETHEUS_URL
    """Where KEDA's prometheus trigger reads the metric (KEDA only)."""

    def metric_name(self, engine: str) -> str:
        try:
            return ENGINE_METRICS[engine][self.metric]
        except KeyError:
            raise ValueError(
                f"engine {engine!r} exports no metric to autoscale on; known engines: "
                f"{', '.join(sorted(ENGINE_METRICS))}"
            ) from None


def quantity(value: float) -> str:
    """``value`` as a Kubernetes quantity: whole numbers plain, else in milli-units (a
    finer value rounds up, as Kubernetes' own milli-value does)."""
    milli = math.ceil(round(value * 1000, 6))
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def prometheus_query(metric: str, namespace: str, release: str) -> str:
    """PromQL summing ``metric`` over the release's pods (``<release>-<hash>-<suffix>``).

    KEDA hands the sum to the HPA as an AverageValue metric, which divides it by the
    replica count. The pod pattern stops at the Deployment's two generated parts, so
    release ``qwen`` does not match the pods of release ``qwen-2``.
    """
    return f'sum({metric}{{namespace="{namespace}",pod=~"{release}-[a-z0-9]+-[a-z0-9]+"}})'
