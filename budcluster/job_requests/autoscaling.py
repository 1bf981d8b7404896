"""Form of a deployment's autoscaling (Kubernetes only)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from budcluster.autoscaling import DEFAULT_PROMETHEUS_URL, AutoscalingSpec, ScalingMetric
from budcluster.job_requests._common import _Form
from budcluster.planning.limits import MAX_REPLICAS


class AutoscalingRequest(_Form):
    """Scale the runtime's replicas on a metric it exports (Kubernetes only)."""

    min_replicas: int = Field(1, description="Fewest replicas; at least 1 (no scale to zero).")
    max_replicas: int = Field(
        2, description=f"Most replicas, at most {MAX_REPLICAS}; each needs the plan's devices."
    )
    metric: ScalingMetric = Field(
        ScalingMetric.REQUESTS_RUNNING,
        description=(
            "requests_running: requests in the engine's batch (vllm:num_requests_running, "
            "llamacpp:requests_processing); requests_waiting: requests queued behind it "
            "(vllm:num_requests_waiting, llamacpp:requests_deferred)."
        ),
    )
    target_per_replica: float | None = Field(
        None,
        gt=0,
        description=(
            "The metric's average per replica to hold; empty: the deployment's concurrency "
            "for requests_running, 1 for requests_waiting."
        ),
    )
    scale_up_stabilization_s: int = Field(
        0, ge=0, le=3600, description="Seconds of higher recommendations before scaling up."
    )
    scale_down_stabilization_s: int = Field(
        300, ge=0, le=3600, description="Seconds of lower recommendations before scaling down."
    )
    prometheus_url: str = Field(
        DEFAULT_PROMETHEUS_URL,
        description="KEDA only: the Prometheus its trigger queries for the metric.",
    )

    @field_validator("min_replicas")
    @classmethod
    def _min(cls, value: int) -> int:
        if value < 1:
            raise ValueError(
                f"min_replicas {value} is below 1: scale to zero is not supported, set "
                "min_replicas to 1 or more"
            )
        return value

    @field_validator("max_replicas")
    @classmethod
    def _max(cls, value: int) -> int:
        if not 1 <= value <= MAX_REPLICAS:
            raise ValueError(
                f"max_replicas {value} is out of range: set it from 1 to {MAX_REPLICAS}"
            )
        return value

    @field_validator("prometheus_url")
    @classmethod
    def _prometheus(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s\"{}]+$", value):
            raise ValueError(
                f"prometheus_url {value!r} is not an http(s) URL: give the Prometheus base "
                "URL, e.g. http://prometheus-operated.monitoring.svc:9090"
            )
        return value

    @model_validator(mode="after")
    def _range(self) -> AutoscalingRequest:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas {self.max_replicas} is below min_replicas {self.min_replicas}: "
                f"set max_replicas to {self.min_replicas} or more, or lower min_replicas"
            )
        return self

    def spec(self, concurrency: int) -> AutoscalingSpec:
        target = self.target_per_replica
        if target is None:
            running = self.metric is ScalingMetric.REQUESTS_RUNNING
            # The planner sized each replica for `concurrency` sequences at once.
            target = float(concurrency) if running else 1.0
        return AutoscalingSpec(
            min_replicas=self.min_replicas,
            max_replicas=self.max_replicas,
            metric=self.metric,
            target_per_replica=target,
            scale_up_stabilization_s=self.scale_up_stabilization_s,
            scale_down_stabilization_s=self.scale_down_stabilization_s,
            prometheus_url=self.prometheus_url,
        )


def check_autoscaled_replicas(replicas: int | str, autoscaling: AutoscalingRequest | None) -> None:
    """A fixed replica count and autoscaling contradict each other (a ValueError if so)."""
    if autoscaling is not None and replicas != 1:
        raise ValueError(
            f"replicas {replicas!r} with autoscaling: the autoscaler sets the count between "
            "autoscaling.min_replicas and max_replicas; leave replicas at 1 and set "
            "autoscaling.min_replicas instead"
        )
