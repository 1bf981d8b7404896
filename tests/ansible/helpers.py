"""Helpers for the hosts-target tests: a local-connection inventory and small plans."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from budcluster.planning.models import MemoryArithmetic, Placement, RuntimePlan

HERE = Path(__file__).parent
HEALTH_SERVER = HERE / "files" / "health_server.py"


def local_inventory(runtime_mode: str = "process") -> str:
    """This machine; its runtimes run as supervised processes unless ``runtime_mode`` says
    otherwise (``auto`` would pick docker or podman wherever one is installed)."""
    return (
        "[servers]\n"
        f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}"
        f" budcluster_runtime_mode={runtime_mode}\n"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def memory() -> MemoryArithmetic:
    return MemoryArithmetic(
        device_memory_bytes=8, utilization=1.0, usable_bytes=8, tensor_parallel_size=1,
        weight_bytes=1, weight_bytes_per_device=1, overhead_bytes_per_device=1,
        kv_bytes_per_token=1, kv_tokens_needed=1, kv_bytes_needed=1,
        kv_bytes_needed_per_device=1, kv_budget_bytes_per_device=6,
        headroom_bytes_per_device=5, max_sequences_at_max_len=6, fits=True,
    )  # fmt: skip


def plan(
    *,
    engine: str = "vllm",
    host_command: list[str],
    args: list[str] | None = None,
    host_env: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    device_kind: str = "cpu",
    device_indices: list[int] | None = None,
    node: str = "localhost",
) -> RuntimePlan:
    return RuntimePlan(
        model_name="tiny",
        served_model_name="tiny",
        device_kind=device_kind,  # type: ignore[arg-type]
        engine=engine,  # type: ignore[arg-type]
        image="example.org/runtime:1.0",
        args=args or ["--model", "/models/tiny", "--port", "8000"],
        host_command=host_command,
        env=env or {},
        host_env=host_env or {},
        resources={},
        placements=[Placement(node_name=node, devices=[], device_indices=device_indices or [])],
        replicas=1,
        tensor_parallel_size=1,
        max_model_len=128,
        dtype="float32",
        gpu_memory_utilization=None,
        memory=memory(),
    )


def health_plan(*extra: str) -> RuntimePlan:
    """The stand-in runtime, as the planner would write it (python, controller model path)."""
    return plan(
        host_command=[
            "python", str(HEALTH_SERVER), "--model", "/controller/tiny", "--port", "8000", *extra,
        ],
        host_env={"BUDCLUSTER_TEST": "1"},
    )  # fmt: skip
