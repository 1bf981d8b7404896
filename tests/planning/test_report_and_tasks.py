"""The plan's markdown (the Prefect artifact body) and the thin task wrappers."""

from __future__ import annotations

from pathlib import Path

from budcluster.hardware.inventory import NodeInventory
from budcluster.modelfacts import load_model_facts
from budcluster.planning import PlanRequest, plan
from budcluster.planning.report import plan_markdown

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"


def h100x8() -> NodeInventory:
    gpus = [
        {"index": i, "product": "NVIDIA H100 80GB HBM3", "memory_total_mib": 81559}
        for i in range(8)
    ]
    return NodeInventory.model_validate({"node_name": "h100x8", "nvidia": {"gpus": gpus}})


def test_markdown_shows_the_arithmetic_and_the_commands() -> None:
    result = plan(
        load_model_facts(MODELS / "Llama-3.1-70B-Instruct"),
        [h100x8()],
        PlanRequest(max_model_len=8192, concurrency=16),
    )
    text = plan_markdown(result)
    assert "| tensor parallel | 4 |" in text
    assert "weights = 131.42 GiB; per device (TP 4) = 32.85 GiB" in text
    assert "KV per token = 327680 B" in text
    assert "CUDA_VISIBLE_DEVICES=0,1,2,3 python -m vllm.entrypoints.openai.api_server" in text
    assert "replica 1: h100x8: GPU 4" in text


def test_tasks_wrap_the_library() -> None:
    from tasks.planning import artifact_key, plan_runtime, read_model_facts

    facts = read_model_facts.fn(str(MODELS / "Llama-3.1-8B-Instruct"))
    result = plan_runtime.fn(facts, [h100x8()], PlanRequest(replicas=1))
    assert result.replicas == 1 and result.tensor_parallel_size == 1
    assert artifact_key("Llama-3.1-8B_Instruct") == "runtime-plan-llama-3-1-8b-instruct"
