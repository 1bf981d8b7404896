"""The plan on a CPU node: one NUMA node's physical cores, llama.cpp for a GGUF model, else
vLLM's CPU build, with the KV space the RAM left after the weights allows."""

from __future__ import annotations

import functools
import math

from budcluster.hardware._text import format_cpu_list
from budcluster.hardware.inventory import NodeInventory, NumaNode
from budcluster.modelfacts import ModelFacts
from budcluster.planning import commands
from budcluster.planning.candidates import Miss
from budcluster.planning.devices import MIB
from budcluster.planning.errors import Candidate
from budcluster.planning.images import image_for
from budcluster.planning.memory import (
    CPU_OVERHEAD_BYTES,
    arithmetic,
    kv_bytes_per_token,
    runtime_weight_bytes,
)
from budcluster.planning.models import GIB, MemoryArithmetic, Placement, PlanRequest, RuntimePlan

CPU_DEFAULT_KV_SPACE_GIB = 4


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


def cpu_attempt(
    inventory: NodeInventory,
    name: str,
    facts: ModelFacts,
    request: PlanRequest,
    max_len: int,
    misses: list[Miss],
) -> tuple[MemoryArithmetic, str, NumaNode | None] | None:
    """Memory, dtype and NUMA node where the model fits in the node's RAM; else None,
    and a miss in ``misses`` when the node has the facts to tell."""
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
            Miss(
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


def cpu_plan(
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
    """llama.cpp for a GGUF model (unless vLLM was asked for), else vLLM's CPU build."""
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
            device_product=inventory.cpu.model_name if inventory.cpu else None,
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
    # The same server arguments in a pod (the model at its mount) and on a host (in place).
    vllm_args = functools.partial(
        commands.vllm_args,
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
    args = vllm_args(model=f"{request.model_mount}/{facts.name}")
    host_args = vllm_args(model=facts.path)
    decisions.insert(0, "engine vLLM CPU build")
    return RuntimePlan(
        model_name=facts.name,
        served_model_name=served,
        device_kind="cpu",
        device_product=inventory.cpu.model_name if inventory.cpu else None,
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
