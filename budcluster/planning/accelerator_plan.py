"""The plan on an accelerator (CUDA GPU, MIG slice or Gaudi card): the smallest TP that
fits on a device group, the replicas that group holds, vLLM's arguments and resources."""

from __future__ import annotations

import functools
import math

from budcluster.hardware.inventory import NodeInventory
from budcluster.modelfacts import ModelFacts
from budcluster.planning import commands
from budcluster.planning.candidates import Fit, Miss
from budcluster.planning.devices import MIB, DeviceGroup
from budcluster.planning.errors import Candidate, NoFeasiblePlan
from budcluster.planning.images import image_for
from budcluster.planning.memory import (
    ACCELERATOR_OVERHEAD_BYTES,
    arithmetic,
    kv_bytes_per_token,
    runtime_weight_bytes,
    valid_tensor_parallel_sizes,
)
from budcluster.planning.models import GIB, MemoryArithmetic, Placement, PlanRequest, RuntimePlan


def accelerator_dtype(facts: ModelFacts, request: PlanRequest) -> str:
    """The dtype asked for, else the model's own half precision, else bfloat16."""
    if request.dtype:
        return request.dtype
    if facts.dtype in {"bfloat16", "float16"}:
        return facts.dtype
    return "bfloat16"


def fit_groups(
    groups: list[DeviceGroup],
    facts: ModelFacts,
    request: PlanRequest,
    dtype: str,
    max_len: int,
    misses: list[Miss],
) -> list[Fit]:
    """Each group's smallest valid TP that fits; groups where none does go to ``misses``."""
    weights = runtime_weight_bytes(facts, dtype, request.quantization)
    kv_token = kv_bytes_per_token(facts, dtype)
    fits: list[Fit] = []
    for group in groups:
        tps = valid_tensor_parallel_sizes(facts, group.count)
        last: MemoryArithmetic | None = None
        for tp in tps:
            memory = arithmetic(
                device_memory_bytes=group.memory_bytes,
                utilization=request.gpu_memory_utilization,
                tensor_parallel_size=tp,
                weight_bytes=weights,
                overhead_bytes=ACCELERATOR_OVERHEAD_BYTES,
                kv_per_token=kv_token,
                max_model_len=max_len,
                concurrency=request.concurrency,
            )
            last = memory
            if memory.fits:
                fits.append(Fit(group, tp, memory))
                break
        if last is not None and not last.fits:
            misses.append(
                Miss(
                    Candidate(
                        node_name=group.node_name,
                        device_kind=group.kind,
                        devices=f"{group.count}x {group.product} "
                        f"({group.memory_bytes / GIB:.1f} GiB each)",
                        tensor_parallel_size=last.tensor_parallel_size,
                        lacks=f"{-last.headroom_bytes_per_device / GIB:.1f} GiB per device short "
                        f"at the largest valid TP {last.tensor_parallel_size} "
                        f"(needs {(last.usable_bytes - last.headroom_bytes_per_device) / GIB:.1f}"
                        f" of {last.usable_bytes / GIB:.1f} GiB usable)",
                        shortfall_bytes=-last.headroom_bytes_per_device,
                    ),
                    last,
                )
            )
    return fits


def choose(fits: list[Fit], replicas: int | str) -> Fit:
    """The fit to plan on."""
    # A group that can hold the replicas asked for comes first (else another node with
    # room would be refused because a fuller one sorts earlier); then the smallest TP
    # (least communication), then the smallest device that fits (best fit: a small model
    # takes a small MIG slice and leaves the big ones free).
    wanted = replicas if isinstance(replicas, int) else 1
    return min(
        fits,
        key=lambda f: (
            f.group.count // f.tp < wanted,
            f.tp,
            f.group.memory_bytes,
            f.group.node_name,
        ),
    )


def _held_note(group: DeviceGroup) -> str:
    if not group.held_by_pods:
        return ""
    return f" ({group.held_by_pods} more {group.resource_name} in use by other pods)"


def _replicas(request: PlanRequest, fit: Fit) -> int:
    available = fit.group.count // fit.tp
    if request.replicas == "auto":
        return max(1, available)
    if request.replicas > available:
        raise NoFeasiblePlan(
            f"{request.replicas} replicas of TP {fit.tp} need {request.replicas * fit.tp} free "
            f"devices on one node; {fit.group.node_name} has {fit.group.count} free"
            + _held_note(fit.group),
            [],
            [
                f"set replicas (deploy-model's replicas, runtime.replicas in deployments.yaml, "
                f"--replicas of `budcluster plan`) to at most {available}, or to 'auto' for as "
                "many as the free devices allow",
                f"free {fit.group.resource_name} on {fit.group.node_name}, or add a node with "
                f"{request.replicas * fit.tp} free {fit.group.resource_name}",
            ],
        )
    return request.replicas


def accelerator_plan(
    fit: Fit,
    facts: ModelFacts,
    request: PlanRequest,
    dtype: str,
    max_len: int,
    inventory: NodeInventory,
    rejected: list[str],
) -> RuntimePlan:
    """vLLM on the chosen group: placements, arguments, environment and resources."""
    group, tp = fit.group, fit.tp
    replicas = _replicas(request, fit)
    served = request.served_model_name or facts.name
    placements = [
        Placement(
            node_name=group.node_name,
            devices=group.labels[r * tp : (r + 1) * tp],
            device_indices=group.indices[r * tp : (r + 1) * tp],
            mig_profile=group.mig_profile,
        )
        for r in range(replicas)
    ]
    # The same server arguments in a pod (the model at its mount) and on a host (in place).
    vllm_args = functools.partial(
        commands.vllm_args,
        served=served,
        tp=tp,
        max_len=max_len,
        dtype=dtype,
        gpu_util=request.gpu_memory_utilization,
        concurrency=request.concurrency,
        host=request.host,
        port=request.port,
        quantization=request.quantization,
        device="hpu" if group.kind == "hpu" else None,
    )
    args = vllm_args(model=f"{request.model_mount}/{facts.name}")
    host_args = vllm_args(model=facts.path)
    first = placements[0]
    env: dict[str, str] = {}
    host_env: dict[str, str] = {}
    if group.kind == "hpu":
        # The Habana device plugin mounts only the allocated cards, so "all" inside the pod.
        env["HABANA_VISIBLE_DEVICES"] = "all"
        host_env["HABANA_VISIBLE_DEVICES"] = ",".join(str(i) for i in first.device_indices)
        env["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"
        if tp > 1:
            env["PT_HPU_ENABLE_LAZY_COLLECTIVES"] = "true"  # needed for TP with HPU graphs
        host_env.update({k: v for k, v in env.items() if k != "HABANA_VISIBLE_DEVICES"})
        image = image_for("vllm-hpu", request.images)
    else:
        visible = group.uuids[:tp] if group.mig_profile else [str(i) for i in first.device_indices]
        host_env["CUDA_VISIBLE_DEVICES"] = ",".join(visible)
        image = image_for("vllm-cuda", request.images)
    node_mem = inventory.memory.total_mib * MIB if inventory.memory else None
    host_ram = math.ceil(fit.memory.weight_bytes_per_device * tp / GIB) + 8
    if node_mem:
        host_ram = min(host_ram, node_mem // GIB)
    cpus = 4 * tp
    if inventory.cpu and inventory.cpu.logical_cpus:
        cpus = min(cpus, inventory.cpu.logical_cpus)
    resources = {
        "requests": {"cpu": str(cpus), "memory": f"{host_ram}Gi", group.resource_name: str(tp)},
        "limits": {group.resource_name: str(tp), "memory": f"{host_ram}Gi"},
    }
    decisions = [
        f"device kind {group.kind}: {group.count}x {group.product} free on {group.node_name}"
        + _held_note(group),
        f"TP {tp}: smallest size that divides {facts.num_attention_heads} heads and "
        f"{facts.num_kv_heads} KV heads and fits weights + KV for {max_len} tokens x "
        f"{request.concurrency} sequences",
        f"replicas {replicas}: {group.count} free devices // TP {tp}"
        if request.replicas == "auto"
        else f"replicas {replicas}: requested",
    ]
    if group.mig_profile:
        decisions.append(
            f"MIG slice {group.mig_profile} used as a device of "
            f"{group.memory_bytes / GIB:.1f} GiB; TP across MIG slices is not supported"
        )
    return RuntimePlan(
        model_name=facts.name,
        served_model_name=served,
        device_kind="hpu" if group.kind == "hpu" else "cuda",
        device_product=group.product,
        engine="vllm",
        image=image,
        args=args,
        host_command=["python", "-m", "vllm.entrypoints.openai.api_server", *host_args],
        env=env,
        host_env=host_env,
        resources=resources,
        placements=placements,
        replicas=replicas,
        tensor_parallel_size=tp,
        max_model_len=max_len,
        dtype=dtype,
        gpu_memory_utilization=request.gpu_memory_utilization,
        memory=fit.memory,
        decisions=decisions,
        rejected=rejected,
    )
