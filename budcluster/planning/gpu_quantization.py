"""The plan and exact commands for GPU quantization (AWQ, GPTQ, FP8) with the engines' tooling.

Pure: nothing here runs. AWQ and GPTQ need calibration, so they go through llm-compressor's
``oneshot`` (its Python API; llm-compressor has no CLI) driven by a recipe YAML in its own
documented format; the model it saves (compressed-tensors) is what vLLM serves without a
``--quantization`` flag. FP8 needs no calibration: llm-compressor's ``FP8_DYNAMIC`` scheme
writes an FP8 checkpoint, or vLLM quantizes at load with ``--quantization fp8``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

GPU_METHODS = ("AWQ", "GPTQ", "FP8")

# method -> (llm-compressor modifier, scheme, needs calibration data)
_RECIPES: dict[str, tuple[str, str, bool]] = {
    "AWQ": ("AWQModifier", "W4A16_ASYM", True),
    "GPTQ": ("GPTQModifier", "W4A16", True),
    "FP8": ("QuantizationModifier", "FP8_DYNAMIC", False),
}
_DATASET = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-/]{0,199}")


@dataclass(frozen=True)
class GpuQuantizationPlan:
    """What to run, in order, on a node with an NVIDIA GPU; argv lists, never shell strings."""

    method: str
    scheme: str
    recipe: str
    recipe_path: str
    quantize_argv: list[str]
    serve_argv: list[str]
    online_serve_argv: list[str] | None
    needs_calibration: bool
    notes: list[str] = field(default_factory=list)


def recipe_yaml(method: str) -> str:
    """The llm-compressor recipe for ``method`` (its ``<stage>: <modifiers>: {...}`` form)."""
    modifier, scheme, _ = _RECIPES[_method(method)]
    return (
        "quant_stage:\n"
        "  quant_modifiers:\n"
        f"    {modifier}:\n"
        '      ignore: ["lm_head"]\n'
        f'      scheme: "{scheme}"\n'
        '      targets: ["Linear"]\n'
    )


def gpu_quantization_plan(
    method: str,
    model_dir: str,
    output_dir: str,
    *,
    python: str = "python3",
    entry_script: str,
    dataset: str = "open_platypus",
    num_calibration_samples: int = 512,
    max_seq_length: int = 2048,
    served_name: str = "model",
) -> GpuQuantizationPlan:
    """The commands that quantize ``model_dir`` into ``output_dir`` and then serve it."""
    chosen = _method(method)
    modifier, scheme, calibrated = _RECIPES[chosen]
    if not _DATASET.fullmatch(dataset):
        raise ValueError(
            f"dataset {dataset!r} is not a dataset name (letters, digits, _ . - /); "
            "give a Hugging Face dataset id such as open_platypus"
        )
    if not 1 <= num_calibration_samples <= 100_000:
        raise ValueError("num_calibration_samples must be between 1 and 100000")
    recipe_path = str(PurePosixPath(output_dir) / "recipe.yaml")
    argv = [
        python, entry_script,
        "--model", model_dir,
        "--recipe", recipe_path,
        "--output-dir", output_dir,
    ]  # fmt: skip
    if calibrated:
        argv += [
            "--dataset", dataset,
            "--num-calibration-samples", str(num_calibration_samples),
            "--max-seq-length", str(max_seq_length),
        ]  # fmt: skip
    serve = ["vllm", "serve", output_dir, "--served-model-name", served_name]
    online = (
        ["vllm", "serve", model_dir, "--served-model-name", served_name, "--quantization", "fp8"]
        if chosen == "FP8"
        else None
    )
    notes = [
        f"llm-compressor oneshot with {modifier} scheme {scheme}; the output is a "
        "compressed-tensors checkpoint, which vLLM detects from its config.json",
    ]
    if calibrated:
        notes.append(
            f"calibration: {num_calibration_samples} samples of {dataset!r}, "
            f"{max_seq_length} tokens each; the node must reach the dataset or have it cached"
        )
    else:
        notes.append("FP8_DYNAMIC needs no calibration data; vLLM can also do it at load time")
    return GpuQuantizationPlan(
        method=chosen,
        scheme=scheme,
        recipe=recipe_yaml(chosen),
        recipe_path=recipe_path,
        quantize_argv=argv,
        serve_argv=serve,
        online_serve_argv=online,
        needs_calibration=calibrated,
        notes=notes,
    )


def refuse_without_gpu(method: str, cluster: str | None, nvidia_gpus: int) -> str | None:
    """Why ``method`` cannot run on ``cluster`` (None when it can): names the field and the fix."""
    chosen = _method(method)
    if cluster is None:
        return (
            f"quantization={chosen} runs on an NVIDIA GPU node: set cluster to a registered "
            "cluster with NVIDIA GPUs, or choose quantization Q8_0 or Q4_K_M (GGUF, on CPU)"
        )
    if nvidia_gpus == 0:
        return (
            f"quantization={chosen} needs an NVIDIA GPU, but cluster={cluster!r} has none "
            "(CPU-only inventory); set cluster to a cluster with NVIDIA GPUs, or choose "
            "quantization Q8_0 or Q4_K_M, which llama-quantize runs on CPU"
        )
    return None


def _method(method: str) -> str:
    upper = method.upper()
    if upper not in _RECIPES:
        raise ValueError(f"GPU quantization {method!r} is not one of {', '.join(GPU_METHODS)}")
    return upper
