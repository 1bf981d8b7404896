"""Advice when nothing fits: concrete ways out, sized on the closest candidate."""

from __future__ import annotations

from budcluster.modelfacts import ModelFacts
from budcluster.planning.candidates import Miss
from budcluster.planning.devices import Occupancy
from budcluster.planning.memory import QUANTIZATION_BYTES
from budcluster.planning.models import GIB, PlanRequest


def fixes(
    facts: ModelFacts,
    misses: list[Miss],
    request: PlanRequest,
    max_len: int,
    occupied: list[Occupancy],
) -> list[str]:
    """Concrete ways out, computed on the closest candidate's device size."""
    freeing = [
        f"free {o.resource_name} on {o.node_name}: tear down a deployment there (or wait for "
        "its pods to end), then plan again"
        for o in occupied
    ]
    best = min(
        (m for m in misses if m.memory), key=lambda m: m.candidate.shortfall_bytes, default=None
    )
    if best is None or best.memory is None:
        return [
            *freeing,
            "add a node with a free CUDA GPU, a Gaudi card, or a CPU with enough RAM",
        ]
    mem = best.memory
    heads = facts.num_attention_heads or 1
    kv_heads = facts.num_kv_heads or heads
    tps = [t for t in range(1, 257) if heads % t == 0 and kv_heads % t == 0]
    size = f"{mem.device_memory_bytes / GIB:.1f} GiB"

    def fits(weights: float, tp: int) -> bool:
        need = weights / tp + mem.overhead_bytes_per_device + mem.kv_bytes_needed / tp
        return need <= mem.usable_bytes

    fixes: list[str] = []
    params = facts.parameter_count or 0
    for quant in ("fp8", "int4"):
        weights = params * QUANTIZATION_BYTES[quant]
        tp_ok = next((t for t in tps if fits(weights, t)), None) if params else None
        if tp_ok is not None:
            fixes.append(
                f"quantize to {quant} (weights {weights / GIB:.1f} GiB instead of "
                f"{mem.weight_bytes / GIB:.1f} GiB): fits {tp_ok} device(s) of {size} (TP {tp_ok})"
            )
            break
    else:
        if params:
            top = tps[-1]
            int4 = params * QUANTIZATION_BYTES["int4"]
            need = (int4 / top + mem.overhead_bytes_per_device + mem.kv_bytes_needed / top) / (
                mem.utilization
            )
            fixes.append(
                f"quantize to int4 (weights {int4 / GIB:.1f} GiB) and use {top} devices of at "
                f"least {need / GIB:.0f} GiB each on one node"
            )
    if mem.kv_budget_bytes_per_device > 0:
        per_token = mem.kv_bytes_per_token * request.concurrency
        shorter = mem.kv_budget_bytes_per_device * mem.tensor_parallel_size // per_token
        if shorter >= 256:
            fixes.append(
                f"shorten the context: --max-model-len {shorter} fits at concurrency "
                f"{request.concurrency} (asked {max_len})"
            )
    tp_ok = next((t for t in tps if fits(mem.weight_bytes, t)), None)
    if tp_ok is not None:
        fixes.append(f"more devices: {tp_ok} devices of {size} on one node (TP {tp_ok})")
    else:
        top = tps[-1]
        need = (
            mem.weight_bytes / top + mem.overhead_bytes_per_device + mem.kv_bytes_needed / top
        ) / mem.utilization
        fixes.append(
            f"bigger devices: TP is capped at {top} (it must divide {heads} heads and "
            f"{kv_heads} KV heads), so {top} devices of at least {need / GIB:.0f} GiB each "
            "are needed on one node"
        )
    return [*freeing, *fixes]
