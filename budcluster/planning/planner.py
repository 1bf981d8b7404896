"""The runtime planner: ModelFacts + NodeInventories + PlanRequest -> RuntimePlan. Pure."""

from __future__ import annotations

import math
from dataclasses import dataclass

from budcluster.errors import ConfigurationError
from budcluster.hardware._text import format_cpu_list
from budcluster.hardware.inventory import NodeInventory, NumaNode
from budcluster.modelfacts import ModelFacts
from budcluster.planning import commands
from budcluster.planning.devices import (
    MIB,
    DeviceGroup,
    Occupancy,
    cuda_groups,
    hpu_groups,
    node_name,
    occupancy,
)
from budcluster.planning.errors import Candidate, NoFeasiblePlan
from budcluster.planning.images import image_for
from budcluster.planning.memory import (
    ACCELERATOR_OVERHEAD_BYTES,
    CPU_OVERHEAD_BYTES,
    QUANTIZATION_BYTES,
    arithmetic,
    kv_bytes_per_token,
    runtime_weight_bytes,
    valid_tensor_parallel_sizes,
)
from budcluster.planning.models import GIB, MemoryArithmetic, Placement, PlanRequest, RuntimePlan

DEFAULT_MAX_MODEL_LEN = 8192
CPU_DEFAULT_KV_SPACE_GIB = 4
AUTO_ORDER = ("cuda", "hpu", "cpu")


@dataclass
class _Fit:
    group: DeviceGroup
    tp: int
    memory: MemoryArithmetic


@dataclass
class _Miss:
    candidate: Candidate
    memory: MemoryArithmetic | None


def _check_facts(facts: ModelFacts) -> None:
    if facts.weight_bytes is None:
        raise ConfigurationError(
            f"model {facts.name}: weight bytes unknown ({'; '.join(facts.notes)}); "
            "point --model at a directory with safetensors files or a GGUF file"
        )
    if not facts.has_attention_shape:
        raise ConfigurationError(
            f"model {facts.name}: layers, KV heads or head_dim missing, so the KV cache cannot "
            "be sized; give a config.json with num_hidden_layers and num_key_value_heads"
        )


def _max_model_len(facts: ModelFacts, request: PlanRequest) -> int:
    limit = facts.max_position_embeddings
    if request.max_model_len is None:
        return min(limit or DEFAULT_MAX_MODEL_LEN, DEFAULT_MAX_MODEL_LEN)
    if limit and request.max_model_len > limit:
        raise ConfigurationError(
            f"--max-model-len {request.max_model_len} exceeds the model's "
            f"max_position_embeddings {limit}; use at most {limit}"
        )
    return request.max_model_len


def _accelerator_dtype(facts: ModelFacts, request: PlanRequest) -> str:
    if request.dtype:
        return request.dtype
    if facts.dtype in {"bfloat16", "float16"}:
        return facts.dtype
    return "bfloat16"


def _fit_groups(
    groups: list[DeviceGroup],
    facts: ModelFacts,
    request: PlanRequest,
    dtype: str,
    max_len: int,
    misses: list[_Miss],
) -> list[_Fit]:
    weights = runtime_weight_bytes(facts, dtype, request.quantization)
    kv_token = kv_bytes_per_token(facts, dtype)
    fits: list[_Fit] = []
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
                fits.append(_Fit(group, tp, memory))
                break
        if last is not None and not last.fits:
            misses.append(
                _Miss(
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


def _choose(fits: list[_Fit], replicas: int | str) -> _Fit:
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


def _replicas(request: PlanRequest, fit: _Fit) -> int:
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


def _accelerator_plan(
    fit: _Fit,
    facts: ModelFacts,
    request: PlanRequest,
    dtype: str,
    max_len: int,
    inventory: NodeInventory,
    rejected: list[str],
) -> RuntimePlan:
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
    args = commands.vllm_args(
        model=f"{request.model_mount}/{facts.name}",
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
    host_args = commands.vllm_args(
        model=facts.path,
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


def _cpu_dtype(inventory: NodeInventory, request: PlanRequest) -> str:
    if request.dtype:
        return request.dtype
    flags = set(inventory.cpu.isa_flags if inventory.cpu else [])
    # bf16 GEMMs need AVX512-BF16 or AMX (x86) or the BF16 extension (Arm); else float32.
    return "bfloat16" if flags & {"avx512_bf16", "amx_bf16", "bf16"} else "float32"


def _bind_node(inventory: NodeInventory) -> NumaNode | None:
    nodes = [n for n in (inventory.cpu.numa_nodes if inventory.cpu else []) if n.cpus]
    if not nodes:
        return None
    return max(nodes, key=lambda n: (len(n.physical_cpus or n.cpus), -n.id))


def _cpu_attempt(
    inventory: NodeInventory,
    name: str,
    facts: ModelFacts,
    request: PlanRequest,
    max_len: int,
    misses: list[_Miss],
) -> tuple[MemoryArithmetic, str, NumaNode | None] | None:
    if inventory.memory is None or inventory.cpu is None:
        return None
    dtype = _cpu_dtype(inventory, request)
    numa = _bind_node(inventory)
    ram_mib = inventory.memory.available_mib or inventory.memory.total_mib
    memory = arithmetic(
        device_memory_bytes=ram_mib * MIB,
        utilization=request.cpu_memory_utilization,
        tensor_parallel_size=1,
        weight_bytes=runtime_weight_bytes(facts, dtype, request.quantization),
        overhead_bytes=CPU_OVERHEAD_BYTES,
        kv_per_token=kv_bytes_per_token(facts, dtype),
        max_model_len=max_len,
        concurrency=request.concurrency,
    )
    if not memory.fits:
        misses.append(
            _Miss(
                Candidate(
                    node_name=name,
                    device_kind="cpu",
                    devices=f"{inventory.cpu.model_name or 'CPU'} with {ram_mib / 1024:.0f} GiB RAM",
                    tensor_parallel_size=1,
                    lacks=f"{-memory.headroom_bytes_per_device / GIB:.1f} GiB of RAM short",
                    shortfall_bytes=-memory.headroom_bytes_per_device,
                ),
                memory,
            )
        )
        return None
    return memory, dtype, numa


def _cpu_plan(
    inventory: NodeInventory,
    name: str,
    memory: MemoryArithmetic,
    dtype: str,
    numa: NumaNode | None,
    facts: ModelFacts,
    request: PlanRequest,
    max_len: int,
    rejected: list[str],
) -> RuntimePlan:
    served = request.served_model_name or facts.name
    use_llama_cpp = facts.gguf_file is not None and request.engine != "vllm"
    physical = (numa.physical_cpus or numa.cpus) if numa else []
    # Leave one core of the node to the HTTP server and tokenizer when there are enough.
    bind = physical[:-1] if len(physical) > 4 else physical
    bind_list = format_cpu_list(bind) if bind else None
    # KV space: twice what max_model_len x concurrency needs (room for prefix caching), at
    # least vLLM's 4 GiB default, never more than the RAM budget left after weights+overhead.
    budget_gib = memory.kv_budget_bytes_per_device // GIB
    wanted_gib = max(CPU_DEFAULT_KV_SPACE_GIB, math.ceil(2 * memory.kv_bytes_needed / GIB))
    kv_space_gib = max(1, min(budget_gib, wanted_gib))
    ram_request_gib = (
        math.ceil((memory.weight_bytes + memory.overhead_bytes_per_device) / GIB) + kv_space_gib
    )
    cpu_count = len(numa.cpus) if numa else (inventory.cpu.logical_cpus if inventory.cpu else 1)
    resources = {
        "requests": {"cpu": str(cpu_count), "memory": f"{ram_request_gib}Gi"},
        "limits": {"cpu": str(cpu_count), "memory": f"{ram_request_gib}Gi"},
    }
    placement = Placement(
        node_name=name,
        devices=[f"NUMA node {numa.id}" if numa else "CPU"],
        numa_node=numa.id if numa else None,
        cpus=bind_list,
    )
    has_amx = bool(inventory.cpu and inventory.cpu.has_amx)
    decisions = [
        f"device kind cpu on {name}" + (" (AMX: bf16 matrix tiles)" if has_amx else " (no AMX)"),
        f"dtype {dtype}: "
        + ("the CPU has bf16 instructions" if dtype == "bfloat16" else "no bf16 instructions"),
        f"threads bound to {bind_list} (NUMA node {numa.id} physical cores"
        + (", one left for the server)" if len(bind) < len(physical) else ")")
        if numa and bind_list
        else "no NUMA layout known: thread binding left to the engine (auto)",
        f"KV space {kv_space_gib} GiB = min(RAM budget {budget_gib} GiB, max("
        f"{CPU_DEFAULT_KV_SPACE_GIB}, 2 x {memory.kv_bytes_needed / GIB:.2f} GiB needed))",
    ]
    if use_llama_cpp:
        assert facts.gguf_file is not None
        ctx = max_len * request.concurrency  # llama.cpp splits --ctx-size across --parallel slots
        threads = len(bind) or (inventory.cpu.physical_cores if inventory.cpu else None) or 1
        gguf_in_pod = f"{request.model_mount}/{facts.gguf_file.rsplit('/', 1)[-1]}"
        args = commands.llama_cpp_args(
            gguf_in_pod, request.host, request.port, request.concurrency, ctx, threads, served
        )
        host_args = commands.llama_cpp_args(
            facts.gguf_file, request.host, request.port, request.concurrency, ctx, threads, served
        )
        decisions.insert(
            0, "engine llama.cpp: the model has a GGUF file and vLLM was not asked for"
        )
        return RuntimePlan(
            model_name=facts.name,
            served_model_name=served,
            device_kind="cpu",
            engine="llama.cpp",
            image=image_for("llama.cpp", request.images),
            args=args,
            host_command=["llama-server", *host_args],
            env={},
            host_env={},
            resources=resources,
            placements=[placement],
            replicas=1,
            tensor_parallel_size=1,
            max_model_len=max_len,
            dtype=facts.dtype or dtype,
            gpu_memory_utilization=None,
            memory=memory,
            decisions=decisions,
            rejected=rejected,
        )
    env = {"VLLM_CPU_KVCACHE_SPACE": str(kv_space_gib)}
    env["VLLM_CPU_OMP_THREADS_BIND"] = bind_list or "auto"
    arm = bool(inventory.cpu and inventory.cpu.architecture == "aarch64")
    args = commands.vllm_args(
        model=f"{request.model_mount}/{facts.name}",
        served=served,
        tp=1,
        max_len=max_len,
        dtype=dtype,
        gpu_util=None,
        concurrency=request.concurrency,
        host=request.host,
        port=request.port,
        quantization=request.quantization,
        device=None,
    )
    host_args = commands.vllm_args(
        model=facts.path,
        served=served,
        tp=1,
        max_len=max_len,
        dtype=dtype,
        gpu_util=None,
        concurrency=request.concurrency,
        host=request.host,
        port=request.port,
        quantization=request.quantization,
        device=None,
    )
    decisions.insert(0, "engine vLLM CPU build")
    return RuntimePlan(
        model_name=facts.name,
        served_model_name=served,
        device_kind="cpu",
        engine="vllm",
        image=image_for("vllm-cpu-arm64" if arm else "vllm-cpu", request.images),
        args=args,
        host_command=["python", "-m", "vllm.entrypoints.openai.api_server", *host_args],
        env=env,
        host_env=dict(env),
        resources=resources,
        placements=[placement],
        replicas=1,
        tensor_parallel_size=1,
        max_model_len=max_len,
        dtype=dtype,
        gpu_memory_utilization=None,
        memory=memory,
        decisions=decisions,
        rejected=rejected,
    )


def _fixes(
    facts: ModelFacts,
    misses: list[_Miss],
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


def plan(
    facts: ModelFacts, inventories: list[NodeInventory], request: PlanRequest | None = None
) -> RuntimePlan:
    """The plan for ``facts`` on the first device kind (in preference order) where it fits."""
    request = request or PlanRequest()
    chosen = _best_plan(facts, inventories, request)
    if not request.extra_args:
        return chosen
    # The user's own engine flags go last, so they override the planner's where the
    # engine takes the last occurrence of a flag.
    return chosen.model_copy(
        update={
            "args": [*chosen.args, *request.extra_args],
            "host_command": [*chosen.host_command, *request.extra_args],
            "decisions": [
                *chosen.decisions,
                f"extra engine arguments from the request: {' '.join(request.extra_args)}",
            ],
        }
    )


def _best_plan(
    facts: ModelFacts, inventories: list[NodeInventory], request: PlanRequest
) -> RuntimePlan:
    _check_facts(facts)
    if not inventories:
        raise ConfigurationError("no inventories given; pass at least one --inventory file")
    max_len = _max_model_len(facts, request)
    kinds = AUTO_ORDER if request.device == "auto" else (request.device,)
    misses: list[_Miss] = []
    occupied: list[Occupancy] = []
    named = [(node_name(inv, i), inv) for i, inv in enumerate(inventories)]
    # A redeploy's own pods go before its new ones start: their devices count as free.
    replacing = request.served_model_name
    for kind in kinds:
        if kind in {"cuda", "hpu"}:
            if request.engine == "llama.cpp":
                continue
            dtype = _accelerator_dtype(facts, request)
            groups = [
                g
                for name, inv in named
                for g in (
                    cuda_groups(inv, name, replacing)
                    if kind == "cuda"
                    else hpu_groups(inv, name, replacing)
                )
            ]
            occupied += [o for name, inv in named for o in occupancy(inv, name, kind, replacing)]
            fits = _fit_groups(groups, facts, request, dtype, max_len, misses)
            if fits:
                chosen = _choose(fits, request.replicas)
                inventory = next(inv for name, inv in named if name == chosen.group.node_name)
                return _accelerator_plan(
                    chosen,
                    facts,
                    request,
                    dtype,
                    max_len,
                    inventory,
                    [m.candidate.lacks for m in misses],
                )
        else:
            # AMX nodes first: bf16 tiles make them several times faster than AVX-512 alone.
            ordered = sorted(named, key=lambda p: not (p[1].cpu and p[1].cpu.has_amx))
            for name, inv in ordered:
                attempt = _cpu_attempt(inv, name, facts, request, max_len, misses)
                if attempt:
                    memory, dtype, numa = attempt
                    return _cpu_plan(
                        inv,
                        name,
                        memory,
                        dtype,
                        numa,
                        facts,
                        request,
                        max_len,
                        [f"{m.candidate.node_name}: {m.candidate.lacks}" for m in misses],
                    )
    closest = sorted((m.candidate for m in misses), key=lambda c: c.shortfall_bytes)[:3]
    searched = ", ".join(kinds)
    reason = (
        f"{facts.name} ({(facts.weight_bytes or 0) / GIB:.1f} GiB of weights, "
        f"{max_len} tokens x {request.concurrency} sequences) fits no {searched} device"
        + ("" if misses else " (no such devices are free in the inventories)")
        + (
            "; devices exist but are in use: " + "; ".join(o.describe() for o in occupied)
            if occupied
            else ""
        )
    )
    raise NoFeasiblePlan(reason, closest, _fixes(facts, misses, request, max_len, occupied))
