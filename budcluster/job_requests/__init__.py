"""What each job (flow) is asked to do: the parameter forms of the flows.

These are pydantic models so the Prefect UI renders real forms (descriptions, enums,
defaults) and bad input is rejected before any work starts, naming the field.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from budcluster.autoscaling import DEFAULT_PROMETHEUS_URL, AutoscalingSpec, ScalingMetric
from budcluster.bench.config import BenchmarkConfig
from budcluster.bench.specs import parse_profile, parse_slos, parse_token_spec
from budcluster.errors import ConfigurationError
from budcluster.gateway import DEFAULT_NAMESPACE as DEFAULT_GATEWAY_NAMESPACE
from budcluster.gateway import DEFAULT_RELEASE as DEFAULT_GATEWAY_RELEASE
from budcluster.planning.image_refs import ImageReference
from budcluster.planning.limits import (
    MAX_REPLICAS,
    ConcurrencyLimit,
    ContextLength,
    RequestCount,
    Seconds,
    WarmupCount,
)
from budcluster.planning.models import PlannedAdapter, PlanRequest, RuntimePlan
from budcluster.planning.placement import AUTO_CLUSTER

# Deployment and cluster names become host directory names, unit names, Kubernetes
# object names and label values, so they follow the strictest of those: DNS-1123 labels.
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _check_name(value: str, what: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            f"{what} {value!r} must be 1-63 lowercase letters, digits or '-', starting and "
            "ending with a letter or digit (e.g. 'qwen-cpu-1')"
        )
    return value


def _replicas(value: object) -> object:
    # Checked before pydantic's int|"auto" union so the error says what to write instead
    # of listing both union branches; digits in a string (a CLI --param) are accepted.
    if value == "auto":
        return value
    count = int(value.strip()) if isinstance(value, str) and value.strip().isdigit() else value
    if isinstance(count, int) and not isinstance(count, bool) and 1 <= count <= MAX_REPLICAS:
        return count
    raise ValueError(
        f"replicas {value!r} is not a replica count: give a positive integer (1, 2, ...) or "
        f"'auto' (as many replicas as the free devices allow), at most {MAX_REPLICAS}"
    )


Replicas = Annotated[
    Annotated[int, Field(ge=1, le=MAX_REPLICAS)] | Literal["auto"], BeforeValidator(_replicas)
]
"""How many copies of the runtime to run: a positive integer or "auto"."""

REPLICAS_DESCRIPTION = (
    "Copies of the runtime, each on its own devices of one node (a TP-2 model takes 2 GPUs "
    "per replica). auto: as many replicas as the chosen node's free devices allow (1 on CPU)."
)


class ClusterKindChoice(StrEnum):
    HOSTS = "hosts"
    KUBERNETES = "kubernetes"


class DeviceChoice(StrEnum):
    AUTO = "auto"
    CUDA = "cuda"
    HPU = "hpu"
    CPU = "cpu"


class EngineChoice(StrEnum):
    AUTO = "auto"
    VLLM = "vllm"
    LLAMA_CPP = "llama.cpp"


def _parsed(value: str, parser: Callable[[str], object]) -> str:
    try:
        parser(value)
    except ConfigurationError as exc:
        raise ValueError(str(exc)) from exc
    return value


class _Form(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=False)


class RegisterClusterRequest(_Form):
    name: str = Field(description="Name for the cluster, e.g. 'lab-hosts' or 'prod-eks'.")
    kind: ClusterKindChoice = Field(
        ClusterKindChoice.HOSTS,
        description="hosts: servers reached through Ansible; kubernetes: a Kubernetes or OpenShift API.",
    )
    credentials_block: str = Field(
        description=(
            "Name of the credentials block: a Bud Host Inventory for hosts, a Bud Kubeconfig "
            "Credentials for kubernetes (add one with `budcluster credentials ...`)."
        )
    )
    provider: Literal["onprem", "eks", "aks"] = Field("onprem", description="Where it runs.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value == AUTO_CLUSTER:
            # deploy-model reads cluster 'auto' as "pick one for me" (docs/placement.md).
            raise ValueError(
                f"cluster name {value!r} is reserved: deploy-model's cluster '{AUTO_CLUSTER}' "
                "places a model across clusters; pick another name (e.g. 'auto-1')"
            )
        return _check_name(value, "cluster name")


class DeregisterClusterRequest(_Form):
    name: str = Field(description="Name of a registered cluster.")
    force: bool = Field(
        False,
        description=(
            "Forget it even while deployments are recorded as running there (their runtimes "
            "are left running)."
        ),
    )


class BenchmarkProfile(_Form):
    """How to load an endpoint. The strings use the `budcluster bench run` syntax."""

    profile: str = Field(
        "concurrency:4",
        description="concurrency:N, rate:R, poisson:R, gamma:R,BURSTINESS or sweep.",
    )
    requests: RequestCount | None = Field(64, description="Stop after this many requests.")
    duration_s: Seconds | None = Field(None, description="Or stop after this many seconds.")
    warmup_requests: WarmupCount = Field(4, description="Requests sent first and not measured.")
    input_tokens: str = Field("128", description="N, uniform:A-B or normal:MEAN,SD[,MIN,MAX].")
    output_tokens: str = Field("64", description="N, uniform:A-B or normal:MEAN,SD[,MIN,MAX].")
    api: Literal["completions", "chat"] = Field("completions", description="Which OpenAI API.")
    slo: str | None = Field(None, description="Goodput SLOs, e.g. 'ttft=200ms,tpot=50ms'.")
    ignore_eos: bool = Field(False, description="Ask the server to ignore EOS (if it accepts it).")
    adapter: str | None = Field(
        None,
        description=(
            "Measure this LoRA adapter of the deployment instead of the base model (one of "
            "deploy-model's adapters). Empty: the base model."
        ),
    )

    # The parsers raise ConfigurationError; pydantic reports field locations only for
    # ValueError, so each is re-raised as one.
    @field_validator("profile")
    @classmethod
    def _profile(cls, value: str) -> str:
        return _parsed(value, parse_profile)

    @field_validator("input_tokens", "output_tokens")
    @classmethod
    def _tokens(cls, value: str) -> str:
        return _parsed(value, parse_token_spec)

    @field_validator("slo")
    @classmethod
    def _slo(cls, value: str | None) -> str | None:
        return value if value is None else _parsed(value, parse_slos)

    def to_config(
        self,
        *,
        url: str,
        model: str,
        name: str,
        deployment: str | None,
        extra_body: dict[str, object] | None = None,
    ) -> BenchmarkConfig:
        """``extra_body``: fields every request carries (llama-server's adapter selection)."""
        return BenchmarkConfig(
            url=url,
            model=model,
            api=self.api,
            profile=parse_profile(self.profile),
            duration_s=self.duration_s,
            max_requests=self.requests,
            warmup_requests=self.warmup_requests,
            input_tokens=parse_token_spec(self.input_tokens, "input_tokens"),
            output_tokens=parse_token_spec(self.output_tokens, "output_tokens"),
            slos_ms=parse_slos(self.slo),
            ignore_eos=self.ignore_eos,
            name=name,
            deployment_name=deployment,
            extra_body=dict(extra_body or {}),
        )


class ModelSourceRequest(_Form):
    uri: str = Field(
        description=(
            "The model: a directory on the controller (/models/x), s3://bucket/prefix, or "
            "hf://org/name[@revision] from the local Hugging Face cache."
        )
    )
    registry_block: str | None = Field(
        None, description="Bud S3 Registry block holding the keys for an s3:// URI."
    )

    @property
    def model_name(self) -> str:
        """The model's name: the last part of the URI, without an @revision."""
        tail = self.uri.rstrip("/").rsplit("/", 1)[-1]
        return tail.split("@", 1)[0] or "model"

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        if not value.strip():
            raise ValueError(
                "model uri is empty; give a directory, s3://bucket/prefix or hf://org/name"
            )
        return value.strip()


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


MAX_ADAPTER_NAME = 40
"""An adapter is staged as ``lora-<name>-<12 hex>``, which must stay a 63-character name."""


class LoraAdapterRequest(_Form):
    """A LoRA adapter of the deployment's model, served beside it."""

    name: str = Field(
        description=(
            "Adapter name, e.g. 'support-tone': what a request names to use it (vLLM's model "
            "name) and how the store lists it under the base model."
        )
    )
    uri: str = Field(
        description=(
            "The adapter: a directory on the controller, s3://bucket/prefix or "
            "hf://org/name[@revision]. A GGUF adapter for llama.cpp, a PEFT directory "
            "(adapter_config.json + adapter_model.safetensors) for vLLM."
        )
    )
    registry_block: str | None = Field(
        None, description="Bud S3 Registry block holding the keys for an s3:// URI."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if len(value) > MAX_ADAPTER_NAME:
            raise ValueError(
                f"adapter name {value!r} is longer than {MAX_ADAPTER_NAME} characters; "
                "give a shorter one"
            )
        return _check_name(value, "adapter name")

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("adapter uri is empty; give a directory, s3://... or hf://...")
        return value.strip()

    def source(self) -> ModelSourceRequest:
        """The adapter as a model source: it is fetched and staged the same way."""
        return ModelSourceRequest(uri=self.uri, registry_block=self.registry_block)


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
        if self.adapters and cluster_kind != "hosts":
            raise ConfigurationError(
                f"adapters: LoRA adapters are served on hosts clusters; {self.cluster!r} is a "
                f"{cluster_kind} cluster (docs/lora.md); deploy without adapters there"
            )

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
        )

    def check_plan(self, plan: RuntimePlan, cluster_kind: str) -> None:
        """Refuse a plan the cluster would not run as asked, before anything is staged.

        CPU plans are one replica on one node whatever was asked, and a hosts cluster runs
        one runtime per deployment (on the plan's first placement), cannot autoscale and is
        the only kind that serves LoRA adapters.
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
        canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class TransferModelRequest(_Form):
    cluster: str = Field(description="Name of a registered cluster.")
    model: ModelSourceRequest
    nodes: list[str] = Field(default_factory=list, description="Nodes to stage on (empty: all).")


class BenchmarkEndpointRequest(_Form):
    cluster: str | None = Field(None, description="Cluster of the deployment to measure.")
    deployment: str | None = Field(None, description="Deployment to measure (with cluster).")
    url: str | None = Field(None, description="Or any OpenAI-compatible base URL.")
    model: str | None = Field(None, description="Served model name (needed with url).")
    profile: BenchmarkProfile = Field(default_factory=BenchmarkProfile)

    @model_validator(mode="after")
    def _target(self) -> BenchmarkEndpointRequest:
        if not self.url and not (self.cluster and self.deployment):
            raise ValueError("give cluster and deployment, or url and model")
        if self.url and not self.model:
            raise ValueError("model is required with url: the served model name")
        if self.profile.adapter is not None and not (self.cluster and self.deployment):
            raise ValueError(
                "profile.adapter needs cluster and deployment (their plan says how the engine "
                "selects it); with a url, give a vLLM adapter's name as the model instead"
            )
        return self


class TeardownRequest(_Form):
    cluster: str = Field(description="Name of a registered cluster.")
    deployment: str = Field(description="Deployment to remove.")


_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class PublishGatewayRequest(_Form):
    """Publish the LiteLLM gateway of one Kubernetes or OpenShift cluster: it routes every
    ready deployment of the cluster under its served model name."""

    cluster: str = Field(description="Name of a registered kubernetes or openshift cluster.")
    release: str = Field(
        DEFAULT_GATEWAY_RELEASE,
        description="Release name of the gateway; also its Deployment and Service name.",
    )
    namespace: str = Field(
        DEFAULT_GATEWAY_NAMESPACE, description="Namespace of the gateway (created if missing)."
    )
    master_key_secret: str | None = Field(
        None,
        description=(
            "Secret in the gateway's namespace whose key 'master-key' holds the proxy's master "
            "key; clients then send it as a bearer token. Empty: no key."
        ),
    )
    image: ImageReference | None = Field(
        None, description="LiteLLM proxy image; empty: the chart's pinned default."
    )
    ready_timeout_s: Seconds = Field(
        300, description="How long to wait for the gateway to route every model."
    )

    @field_validator("release")
    @classmethod
    def _release(cls, value: str) -> str:
        # Helm's limit: the release name prefixes object names and is a label value.
        if len(value) > 53:
            raise ValueError(f"release {value!r} is longer than 53 characters")
        return _check_name(value, "release")

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return _check_name(value, "namespace")

    @field_validator("master_key_secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value and not (len(value) <= 253 and _SUBDOMAIN.match(value)):
            raise ValueError(
                f"master_key_secret {value!r} is not a Secret name: lowercase letters, digits, "
                "'-' and '.', starting and ending with a letter or digit"
            )
        return value or None


class QuantizeModelRequest(_Form):
    """Quantize a model into a new catalogue version linked to the one it came from."""

    source: str = Field(
        description=(
            "The model on the controller: a .gguf file or a directory holding one (GGUF "
            "types), or an HF safetensors directory (AWQ, GPTQ, FP8)."
        )
    )
    quantization: Literal["Q8_0", "Q4_K_M", "Q4_0", "Q5_K_M", "Q6_K", "AWQ", "GPTQ", "FP8"] = Field(
        "Q4_K_M",
        description=(
            "Q8_0, Q4_K_M, Q4_0, Q5_K_M, Q6_K: llama-quantize on this worker's CPU. "
            "AWQ, GPTQ, FP8: llm-compressor on an NVIDIA GPU node (needs cluster)."
        ),
    )
    output_dir: str | None = Field(
        None,
        description=(
            "Directory of the new version (created). Empty: <data_dir>/quantized/"
            "<model>.<quantization>."
        ),
    )
    cluster: str | None = Field(
        None, description="Registered cluster with NVIDIA GPUs; only for AWQ, GPTQ and FP8."
    )
    threads: int | None = Field(
        None, ge=1, le=1024, description="llama-quantize threads. Empty: all cores."
    )

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if not value.strip() or "://" in value:
            raise ValueError(
                f"source {value!r} is not a local path; give a .gguf file or a model directory "
                "on the controller (transfer-model copies remote models there)"
            )
        return value.strip()

    @field_validator("cluster")
    @classmethod
    def _cluster(cls, value: str | None) -> str | None:
        return _check_name(value, "cluster") if value else None

    @property
    def on_gpu(self) -> bool:
        return self.quantization in {"AWQ", "GPTQ", "FP8"}
