"""Memory arithmetic: weights, KV cache and headroom per device. Pure integer maths."""

from __future__ import annotations

import math

from budcluster.modelfacts import ModelFacts
from budcluster.modelfacts.config import DTYPE_BYTES
from budcluster.planning.models import GIB, MemoryArithmetic

ACCELERATOR_OVERHEAD_BYTES = 2 * GIB
"""Per GPU/HPU: runtime context (~0.5 GiB), activation peak at the default batch token budget,
CUDA/HPU graphs and collective buffers. vLLM's own profiling lands near this on 8B-70B models."""

CPU_OVERHEAD_BYTES = 4 * GIB
"""Per CPU replica: Python, tokenizer, activations and the oneDNN scratch space."""

QUANTIZATION_BYTES = {"fp8": 1.0, "int8": 1.0, "awq": 0.5, "gptq": 0.5, "int4": 0.5}


def kv_dtype_bytes(dtype: str) -> int:
    return 4 if dtype in {"float32", "float", "fp32"} else 2


def kv_bytes_per_token(facts: ModelFacts, dtype: str) -> int:
    """K and V, for every layer and KV head: 2 x layers x kv_heads x head_dim x bytes."""
    assert facts.num_layers and facts.num_kv_heads and facts.head_dim
    return 2 * facts.num_layers * facts.num_kv_heads * facts.head_dim * kv_dtype_bytes(dtype)


def runtime_weight_bytes(facts: ModelFacts, dtype: str, quantization: str | None) -> int:
    """Weights as the engine will hold them: stored bytes, unless a cast or quantization
    changes the bytes per parameter."""
    assert facts.weight_bytes is not None
    if quantization and facts.parameter_count:
        return int(facts.parameter_count * QUANTIZATION_BYTES.get(quantization, 1.0))
    stored = facts.dtype
    if facts.quantization or facts.source_format == "gguf" or not facts.parameter_count:
        return facts.weight_bytes  # already quantized: the engine keeps the stored form
    if stored != dtype and dtype in DTYPE_BYTES:
        return int(facts.parameter_count * DTYPE_BYTES[dtype])
    return facts.weight_bytes


def arithmetic(
    *,
    device_memory_bytes: int,
    utilization: float,
    tensor_parallel_size: int,
    weight_bytes: int,
    overhead_bytes: int,
    kv_per_token: int,
    max_model_len: int,
    concurrency: int,
) -> MemoryArithmetic:
    tp = tensor_parallel_size
    usable = int(device_memory_bytes * utilization)
    weights_per_device = math.ceil(weight_bytes / tp)
    kv_tokens = max_model_len * concurrency
    kv_needed = kv_tokens * kv_per_token
    kv_needed_per_device = math.ceil(kv_needed / tp)
    budget = usable - weights_per_device - overhead_bytes
    headroom = budget - kv_needed_per_device
    per_sequence_per_device = max_model_len * kv_per_token / tp
    sequences = max(0, int(budget // per_sequence_per_device)) if per_sequence_per_device else 0
    return MemoryArithmetic(
        device_memory_bytes=device_memory_bytes,
        utilization=utilization,
        usable_bytes=usable,
        tensor_parallel_size=tp,
        weight_bytes=weight_bytes,
        weight_bytes_per_device=weights_per_device,
        overhead_bytes_per_device=overhead_bytes,
        kv_bytes_per_token=kv_per_token,
        kv_tokens_needed=kv_tokens,
        kv_bytes_needed=kv_needed,
        kv_bytes_needed_per_device=kv_needed_per_device,
        kv_budget_bytes_per_device=budget,
        headroom_bytes_per_device=headroom,
        max_sequences_at_max_len=sequences,
        fits=headroom >= 0,
    )


def valid_tensor_parallel_sizes(facts: ModelFacts, devices: int) -> list[int]:
    """TP sizes that split attention evenly: they divide the query heads and the KV heads."""
    heads = facts.num_attention_heads or 1
    kv_heads = facts.num_kv_heads or heads
    return [tp for tp in range(1, devices + 1) if heads % tp == 0 and kv_heads % tp == 0]
