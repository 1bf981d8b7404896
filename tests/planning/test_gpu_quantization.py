"""GPU quantization plans: llm-compressor recipes and the exact argv, and the CPU refusal."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from budcluster.job_requests import QuantizeModelRequest
from budcluster.planning.gpu_quantization import (
    gpu_quantization_plan,
    recipe_yaml,
    refuse_without_gpu,
)


def test_gptq_argv_carries_calibration_and_the_recipe() -> None:
    plan = gpu_quantization_plan(
        "gptq", "/models/llama", "/models/llama-GPTQ", entry_script="oneshot.py",
        num_calibration_samples=256, served_name="llama",
    )  # fmt: skip
    assert plan.quantize_argv == [
        "python3", "oneshot.py", "--model", "/models/llama",
        "--recipe", "/models/llama-GPTQ/recipe.yaml", "--output-dir", "/models/llama-GPTQ",
        "--dataset", "open_platypus", "--num-calibration-samples", "256",
        "--max-seq-length", "2048",
    ]  # fmt: skip
    assert plan.serve_argv == [
        "vllm", "serve", "/models/llama-GPTQ", "--served-model-name", "llama"
    ]  # fmt: skip
    assert plan.online_serve_argv is None
    recipe = yaml.safe_load(plan.recipe)
    assert recipe["quant_stage"]["quant_modifiers"]["GPTQModifier"] == {
        "ignore": ["lm_head"], "scheme": "W4A16", "targets": ["Linear"],
    }  # fmt: skip


def test_awq_and_fp8_schemes() -> None:
    awq = yaml.safe_load(recipe_yaml("AWQ"))["quant_stage"]["quant_modifiers"]
    assert awq["AWQModifier"]["scheme"] == "W4A16_ASYM"
    fp8 = gpu_quantization_plan("FP8", "/m", "/m-fp8", entry_script="e.py")
    assert "--dataset" not in fp8.quantize_argv and not fp8.needs_calibration
    assert fp8.online_serve_argv is not None
    assert fp8.online_serve_argv[-2:] == ["--quantization", "fp8"]
    modifiers = yaml.safe_load(fp8.recipe)["quant_stage"]["quant_modifiers"]
    assert modifiers["QuantizationModifier"]["scheme"] == "FP8_DYNAMIC"


def test_a_dataset_name_cannot_smuggle_an_option() -> None:
    with pytest.raises(ValueError, match="dataset"):
        gpu_quantization_plan("GPTQ", "/m", "/o", entry_script="e.py", dataset="--evil x")


def test_cpu_only_cluster_is_refused_naming_field_and_fix() -> None:
    refusal = refuse_without_gpu("AWQ", "cpu-lab", 0)
    assert refusal is not None
    assert "cluster='cpu-lab'" in refusal and "Q4_K_M" in refusal and "quantization=AWQ" in refusal
    assert refuse_without_gpu("FP8", None, 0) is not None
    assert refuse_without_gpu("GPTQ", "gpu-lab", 2) is None


def test_quantize_request_fields() -> None:
    request = QuantizeModelRequest(source="/models/demo/demo-tiny.f16.gguf")
    assert request.quantization == "Q4_K_M" and not request.on_gpu
    assert QuantizeModelRequest(source="/m", quantization="FP8", cluster="gpu-1").on_gpu
    with pytest.raises(ValidationError, match="source"):
        QuantizeModelRequest(source="s3://bucket/model")
    with pytest.raises(ValidationError, match="quantization"):
        QuantizeModelRequest(source="/m", quantization="Q3_XS")  # type: ignore[arg-type]
