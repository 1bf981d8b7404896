"""Engine arguments from the request are appended after the planned ones."""

from __future__ import annotations

from pathlib import Path

from budcluster.hardware.inventory import NodeInventory
from budcluster.modelfacts import load_model_facts
from budcluster.planning import PlanRequest, plan

MODELS = Path(__file__).parents[1] / "fixtures" / "models"


def _cpu_node() -> NodeInventory:
    return NodeInventory.model_validate(
        {
            "node_name": "cpu-1",
            "cpu": {
                "architecture": "x86_64",
                "logical_cpus": 8,
                "sockets": 1,
                "cores_per_socket": 8,
                "threads_per_core": 1,
                "numa_nodes": [{"id": 0, "cpus": list(range(8))}],
                "isa_flags": ["avx2", "avx512f"],
            },
            "memory": {"total_mib": 65536, "available_mib": 60000},
        }
    )


def test_extra_args_come_last_in_both_argument_lists() -> None:
    facts = load_model_facts(MODELS / "Qwen2.5-0.5B-Instruct")
    base = plan(facts, [_cpu_node()], PlanRequest(device="cpu"))
    extended = plan(facts, [_cpu_node()], PlanRequest(device="cpu", extra_args=["--seed", "7"]))
    assert extended.args == [*base.args, "--seed", "7"]
    assert extended.host_command == [*base.host_command, "--seed", "7"]
    assert any("--seed 7" in d for d in extended.decisions)
