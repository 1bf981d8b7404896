"""An offline LoRA adapter for the demo model, in Hugging Face PEFT format.

Seeded random ``lora_A``/``lora_B`` matrices for the attention output and MLP down
projections of every layer, written with ``safetensors.numpy`` beside an
``adapter_config.json``. The update (alpha/r x B A) is far larger than the base weights,
so the adapter visibly changes what the model says; the row that writes the demo model's
never-EOS channel stays zero, so completions still run to ``max_tokens``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from budcluster.demo_model import SEED, DemoModelError

TARGET_MODULES = ("o_proj", "down_proj")
_MODULE_PATHS = {"o_proj": "self_attn.o_proj", "down_proj": "mlp.down_proj"}
_LORA_STD = 0.5


def build_demo_lora(
    model_dir: Path, out_dir: Path, *, rank: int = 8, alpha: float = 16.0, seed: int = SEED + 1
) -> Path:
    """Write a PEFT LoRA for the demo model in ``model_dir`` into ``out_dir``; return it."""
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    if rank < 1:
        raise DemoModelError(f"rank={rank} must be at least 1")
    hidden = int(config["hidden_size"])
    inputs = {
        "o_proj": int(config["num_attention_heads"]) * int(config["head_dim"]),
        "down_proj": int(config["intermediate_size"]),
    }
    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    for layer in range(int(config["num_hidden_layers"])):
        for module in TARGET_MODULES:
            prefix = f"base_model.model.model.layers.{layer}.{_MODULE_PATHS[module]}"
            lora_a = rng.standard_normal((rank, inputs[module]), dtype=np.float32) * _LORA_STD
            lora_b = rng.standard_normal((hidden, rank), dtype=np.float32) * _LORA_STD
            lora_b[0, :] = 0.0  # the demo model's never-EOS channel must stay constant
            tensors[f"{prefix}.lora_A.weight"] = lora_a.astype(np.float32)
            tensors[f"{prefix}.lora_B.weight"] = lora_b.astype(np.float32)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out_dir / "adapter_model.safetensors"), metadata={"format": "pt"})
    (out_dir / "adapter_model.safetensors").chmod(0o644)
    adapter_config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": str(model_dir),
        "r": rank,
        "lora_alpha": alpha,
        "lora_dropout": 0.0,
        "bias": "none",
        "fan_in_fan_out": False,
        "target_modules": list(TARGET_MODULES),
    }
    (out_dir / "adapter_config.json").write_text(
        json.dumps(adapter_config, indent=2) + "\n", encoding="utf-8"
    )
    return out_dir
