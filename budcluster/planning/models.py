"""The planner's input (PlanRequest) and output (RuntimePlan, MemoryArithmetic)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from budcluster.planning.image_refs import check_image_reference
from budcluster.planning.images import DEFAULT_IMAGES
from budcluster.planning.limits import (
    MAX_REPLICAS,
    ConcurrencyLimit,
    ContextLength,
    MemoryFraction,
    check_whole_number,
)
from budcluster.planning.scheduling import Toleration

GIB = 1024**3

DeviceKind = Literal["cuda", "hpu", "cpu"]
Engine = Literal["vllm", "llama.cpp"]


class PlannedAdapter(BaseModel):
    """A LoRA adapter served beside the base model (see :mod:`budcluster.planning.lora`)."""

    name: str = Field(description="What a request names to use it (vLLM's model name).")
    format: Literal["gguf", "peft"]
    rank: int | None = None
    source_path: str = Field(description="The adapter's directory as the controller sees it.")
    file: str | None = Field(None, description="The GGUF file in it; None for a PEFT directory.")


class PlanRequest(BaseModel):
    device: Literal["auto", "cuda", "hpu", "cpu"] = Field(
        "auto", description="auto prefers CUDA, then Gaudi (HPU), then AMX CPUs, then other CPUs."
    )
    max_model_len: ContextLength | None = Field(
        None, description="Context length; default min(model maximum, 8192)."
    )
    concurrency: ConcurrencyLimit = Field(
        1, description="Sequences that must fit at max_model_len."
    )
    replicas: int | Literal["auto"] = Field(
        "auto", description="auto: as many as the chosen node's free devices hold (1 on CPU)."
    )
    engine: Literal["auto", "vllm", "llama.cpp"] = "auto"
    dtype: str | None = Field(None, description="Runtime dtype; default the model's own.")
    quantization: str | None = Field(None, description="e.g. fp8: weights at 1 byte/param.")
    gpu_memory_utilization: MemoryFraction = 0.90
    cpu_memory_utilization: MemoryFraction = 0.80
    images: dict[str, str] = Field(
        default_factory=dict, description="Overrides DEFAULT_IMAGES: key -> OCI image reference."
    )
    served_model_name: str | None = None
    model_mount: str = Field("/models", description="Where the model is mounted in the pod.")
    host: str = "0.0.0.0"
    port: int = Field(8000, gt=0, lt=65536)
    extra_args: list[str] = Field(
        default_factory=list, description="Engine arguments appended after the planned ones."
    )
    adapters: list[PlannedAdapter] = Field(
        default_factory=list, description="LoRA adapters served beside the base model."
    )
    tolerations: list[Toleration] = Field(
        default_factory=list,
        description="The pods' tolerations: only nodes whose NoSchedule/NoExecute taints "
        "they all tolerate are planned on.",
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="Only nodes with all these labels are planned on."
    )

    @field_validator("replicas", mode="before")
    @classmethod
    def _replicas(cls, value: object) -> object:
        if value == "auto":
            return value
        try:
            return check_whole_number(value, 1, MAX_REPLICAS)
        except ValueError as exc:
            raise ValueError(f"replicas {exc} (or 'auto')") from exc

    @field_validator("images")
    @classmethod
    def _images(cls, value: dict[str, str]) -> dict[str, str]:
        for key, image in value.items():
            if key not in DEFAULT_IMAGES:
                raise ValueError(
                    f"unknown image key {key!r}; the keys are {', '.join(DEFAULT_IMAGES)}"
                )
            try:
                check_image_reference(image)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from exc
        return value


class MemoryArithmetic(BaseModel):
    """Every number behind a fit decision, per device (or per node for CPU)."""

    device_memory_bytes: int
    utilization: float
    usable_bytes: int = Field(description="device_memory_bytes x utilization")
    tensor_parallel_size: int
    weight_bytes: int = Field(description="All weights at the runtime dtype")
    weight_bytes_per_device: int
    overhead_bytes_per_device: int = Field(
        description="Runtime context, activations, graphs, communication buffers"
    )
    kv_bytes_per_token: int = Field(description="2 x layers x kv_heads x head_dim x kv dtype bytes")
    kv_tokens_needed: int = Field(description="max_model_len x concurrency")
    kv_bytes_needed: int
    kv_bytes_needed_per_device: int
    kv_budget_bytes_per_device: int = Field(description="usable - weights/TP - overhead")
    headroom_bytes_per_device: int = Field(description="kv budget - kv needed; >= 0 means it fits")
    max_sequences_at_max_len: int = Field(
        description="How many full-length sequences the budget holds"
    )
    fits: bool

    def lines(self) -> list[str]:
        def gib(value: int) -> str:
            return f"{value / GIB:.2f} GiB"

        tp = self.tensor_parallel_size
        return [
            f"usable per device = {gib(self.device_memory_bytes)} x {self.utilization:.2f}"
            f" = {gib(self.usable_bytes)}",
            f"weights = {gib(self.weight_bytes)}; per device (TP {tp}) = "
            f"{gib(self.weight_bytes_per_device)}",
            f"overhead per device = {gib(self.overhead_bytes_per_device)}",
            f"KV per token = {self.kv_bytes_per_token} B; needed = {self.kv_tokens_needed} tokens"
            f" x {self.kv_bytes_per_token} B = {gib(self.kv_bytes_needed)}"
            f" ({gib(self.kv_bytes_needed_per_device)} per device)",
            f"KV budget per device = {gib(self.usable_bytes)} - "
            f"{gib(self.weight_bytes_per_device)} - {gib(self.overhead_bytes_per_device)}"
            f" = {gib(self.kv_budget_bytes_per_device)}",
            f"headroom per device = {gib(self.headroom_bytes_per_device)} -> "
            f"{'fits' if self.fits else 'does not fit'}"
            f" ({self.max_sequences_at_max_len} sequences of max_model_len)",
        ]


class Placement(BaseModel):
    node_name: str
    devices: list[str] = Field(description="Human labels of the devices this replica uses.")
    device_indices: list[int] = Field(default_factory=list)
    mig_profile: str | None = None
    numa_node: int | None = None
    cpus: str | None = Field(None, description="CPU list the engine threads are bound to.")


class RuntimePlan(BaseModel):
    model_name: str
    served_model_name: str
    device_kind: DeviceKind
    device_product: str | None = Field(
        None,
        description="The accelerator product (nvidia-smi's name, hl-smi's model code, MIG "
        "profile included) or the CPU model: what the price table is matched on.",
    )
    engine: Engine
    image: str
    args: list[str] = Field(description="Container arguments (the image's entrypoint runs them).")
    host_command: list[str] = Field(description="argv for a bare-metal host.")
    env: dict[str, str]
    host_env: dict[str, str]
    resources: dict[str, dict[str, str]]
    placements: list[Placement]
    replicas: int
    tensor_parallel_size: int
    max_model_len: int
    dtype: str
    gpu_memory_utilization: float | None
    memory: MemoryArithmetic
    decisions: list[str] = Field(default_factory=list, description="Why this plan, in words.")
    rejected: list[str] = Field(default_factory=list, description="Candidates that did not fit.")
    adapters: list[PlannedAdapter] = Field(
        default_factory=list, description="LoRA adapters, in the order the engine loads them."
    )
