"""Forms of deploy-model, transfer-model and teardown-deployment."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import Field, field_validator, model_validator

from budcluster.autoscaling import AutoscalingSpec
from budcluster.errors import ConfigurationError
from budcluster.job_requests._common import (
    REPLICAS_DESCRIPTION,
    DeviceChoice,
    EngineChoice,
    ModelSourceRequest,
    Replicas,
    _check_name,
    _Form,
)
from budcluster.job_requests.adapters import LoraAdapterRequest
from budcluster.job_requests.autoscaling import AutoscalingRequest, check_autoscaled_replicas
from budcluster.job_requests.benchmark import BenchmarkProfile
from budcluster.job_requests.scheduling import (
    NodeSelector,
    Tolerations,
    check_scheduling_on,
    pod_scheduling,
)
from budcluster.planning.limits import ConcurrencyLimit, ContextLength, Seconds
from budcluster.planning.models import PlannedAdapter, PlanRequest, RuntimePlan
from budcluster.planning.placement import AUTO_CLUSTER
from budcluster.targets.base import PodScheduling


class DeployModelRequest(_Form):
    name: str = Field(description="Deployment name, unique per cluster, e.g. 'qwen-cpu'.")
    cluster: str = Field(
        description=(
            "Name of a registered cluster, or 'auto': plan on every cluster's recorded "
            "inventory and pick the one where it fits at the lowest cost per million tokens, "
            "then on the fewest devices (docs/placement.md)."
        )
    )
    model: ModelSourceRequest
    device: DeviceChoice = Field(
        DeviceChoice.AUTO, description="auto prefers CUDA, then Gaudi, then AMX CPUs, then CPUs."
    )
    engine: EngineChoice = Field(
        EngineChoice.AUTO, description="auto: llama.cpp for a GGUF model on CPU, else vLLM."
    )
    max_model_len: ContextLength | None = Field(
        None, description="Context length (default min(model, 8192))."
    )
    concurrency: ConcurrencyLimit = Field(
        4, description="Sequences that must fit at max_model_len."
    )
    replicas: Replicas = Field(1, description=REPLICAS_DESCRIPTION)
    port: int = Field(8000, gt=1024, lt=65536, description="Port the runtime listens on.")
    ready_timeout_s: Seconds = Field(600, description="How long to wait for a healthy endpoint.")
    benchmark: BenchmarkProfile | None = Field(
        None, description="Benchmark the endpoint once it is ready (leave empty to skip)."
    )
    engine_args: list[str] = Field(
        default_factory=list,
        description="Extra engine arguments, appended after the planned ones (e.g. --seed 1).",
    )
    if_busy: Literal["wait", "fail"] = Field(
        "wait",
        description="When another run is rolling out this deployment: wait for it, or fail.",
    )
    autoscaling: AutoscalingRequest | None = Field(
        None,
        description=(
            "Kubernetes only: scale replicas between min and max on a runtime metric (an "
            "HPA, or a KEDA ScaledObject where KEDA is installed). Empty: a fixed count."
        ),
    )
    adapters: list[LoraAdapterRequest] = Field(
        default_factory=list,
        description=(
            "LoRA adapters to serve beside the model (hosts clusters): llama.cpp takes GGUF "
            "adapters, vLLM PEFT directories. Each is registered under the model and staged "
            "with it."
        ),
    )
    tolerations: Tolerations = Field(default_factory=list)
    node_selector: NodeSelector = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_name(value, "deployment name")

    @model_validator(mode="after")
    def _fixed_or_scaled(self) -> DeployModelRequest:
        check_autoscaled_replicas(self.replicas, self.autoscaling)
        return self

    @model_validator(mode="after")
    def _adapter_names(self) -> DeployModelRequest:
        names = [adapter.name for adapter in self.adapters]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"adapters: the name {name!r} is given twice; name each once")
            if name == self.name:
                raise ValueError(
                    f"adapters: {name!r} is the deployment's own name (its served model name); "
                    "give the adapter another name"
                )
        chosen = self.benchmark.adapter if self.benchmark else None
        if chosen is not None and chosen not in names:
            raise ValueError(
                f"benchmark.adapter {chosen!r} is not one of the adapters {names or '(none)'}; "
                "name one of them, or leave it empty to measure the base model"
            )
        return self

    def autoscaling_spec(self) -> AutoscalingSpec | None:
        return None if self.autoscaling is None else self.autoscaling.spec(self.concurrency)

    def check_cluster_kind(self, cluster_kind: str) -> None:
        """Refuse what the cluster kind cannot do, before anything is planned or staged."""
        if self.autoscaling is not None and cluster_kind == "hosts":
            raise ConfigurationError(
                "autoscaling: a hosts cluster cannot autoscale (nothing there adds or removes "
                "runtimes on load); remove autoscaling from the request, or deploy to a "
                "kubernetes cluster"
            )
        # Off hosts a transfer Job's pod copies each adapter into the model's volume; it
        # cannot read a directory of the controller.
        on_controller = [
            a for a in self.adapters if "://" not in a.uri or a.uri.startswith("file://")
        ]
        if cluster_kind != "hosts" and on_controller:
            adapter = on_controller[0]
            raise ConfigurationError(
                f"adapters: {adapter.name!r} has uri {adapter.uri!r}, a directory on the "
                f"controller, which a pod of the {cluster_kind} cluster {self.cluster!r} "
                "cannot read; put the adapter in a bucket (s3://...) or a node's HF cache "
                "(hf://...)"
            )
        check_scheduling_on(cluster_kind, self.cluster, self.tolerations, self.node_selector)

    def pod_scheduling(self) -> PodScheduling:
        """The tolerations and node selector for the runtime's pods and the transfer Job."""
        return pod_scheduling(self.tolerations, self.node_selector)

    def places_automatically(self) -> bool:
        return self.cluster == AUTO_CLUSTER

    def on_cluster(self, cluster: str) -> DeployModelRequest:
        """The same request for the cluster a placement chose."""
        return self.model_copy(update={"cluster": cluster})

    def plan_request(self, adapters: list[PlannedAdapter] | None = None) -> PlanRequest:
        return PlanRequest(
            device=self.device.value,
            engine=self.engine.value,
            max_model_len=self.max_model_len,
            concurrency=self.concurrency,
            replicas=self.replicas,
            port=self.port,
            served_model_name=self.name,
            extra_args=self.engine_args,
            adapters=list(adapters or []),
            tolerations=self.tolerations,
            node_selector=self.node_selector,
        )

    def check_plan(self, plan: RuntimePlan, cluster_kind: str) -> None:
        """Refuse a plan the cluster would not run as asked, before anything is staged.

        CPU plans are one replica on one node whatever was asked, and a hosts cluster runs
        one runtime per deployment (on the plan's first placement) and cannot autoscale.
        """
        self.check_cluster_kind(cluster_kind)
        if isinstance(self.replicas, int) and plan.replicas != self.replicas:
            raise ConfigurationError(
                f"replicas: {self.replicas} asked, but the {plan.engine} plan on "
                f"{plan.device_kind} runs {plan.replicas} (CPU plans run one replica on one "
                f"node); set replicas to {plan.replicas}, or choose device cuda or hpu"
            )
        if cluster_kind == "hosts" and plan.replicas > 1:
            raise ConfigurationError(
                f"replicas: a hosts cluster runs one runtime per deployment, but the plan has "
                f"{plan.replicas} (replicas={self.replicas!r}, TP {plan.tensor_parallel_size} on "
                f"{plan.placements[0].node_name}); set replicas to 1, or deploy each copy as a "
                "deployment of its own with its own name and port"
            )

    def spec_hash(self) -> str:
        """Hash of what defines the running deployment; a change means redeploy.

        The benchmark and the wait timeout are left out: changing them changes nothing
        that runs.
        """
        spec = self.model_dump(
            mode="json", exclude={"benchmark", "ready_timeout_s", "name", "if_busy"}
        )
        spec["model"].pop("registry_block", None)
        if spec.get("autoscaling") is None:
            # Left out when unset, so deployments recorded before the field keep their hash.
            spec.pop("autoscaling", None)
        # Without adapters the hash is the one it was before adapters existed, so no
        # deployment is redeployed for them.
        if not spec["adapters"]:
            del spec["adapters"]
        for adapter in spec.get("adapters", []):
            adapter.pop("registry_block", None)
        # Left out when empty, so deployments recorded before them keep their hash.
        for unset in ("tolerations", "node_selector"):
            if not spec[unset]:
                del spec[unset]
        canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class TransferModelRequest(_Form):
    cluster: str = Field(description="Name of a registered cluster.")
    model: ModelSourceRequest
    nodes: list[str] = Field(default_factory=list, description="Nodes to stage on (empty: all).")
    # The transfer Job is a pod too: on a tainted or labelled pool it needs what the
    # runtime will need.
    tolerations: Tolerations = Field(default_factory=list)
    node_selector: NodeSelector = Field(default_factory=dict)

    def check_cluster_kind(self, cluster_kind: str) -> None:
        check_scheduling_on(cluster_kind, self.cluster, self.tolerations, self.node_selector)

    def pod_scheduling(self) -> PodScheduling:
        return pod_scheduling(self.tolerations, self.node_selector)


class TeardownRequest(_Form):
    cluster: str = Field(description="Name of a registered cluster.")
    deployment: str = Field(description="Deployment to remove.")
