"""LoRA adapters for tests that stage them: a PEFT adapter's files, built in memory."""

from __future__ import annotations

import json
import struct
from typing import Any


def peft_adapter(rank: int, seed: int) -> dict[str, bytes]:
    """A PEFT adapter for Llama 3.1 8B: its config and a safetensors file of rank ``rank``
    (two layers' q_proj A and B matrices, bytes derived from ``seed``)."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    data = b""
    for layer in range(2):
        for part, shape in (("lora_A", [rank, 4096]), ("lora_B", [4096, rank])):
            name = f"base_model.model.model.layers.{layer}.self_attn.q_proj.{part}.weight"
            size = shape[0] * shape[1] * 2
            header[name] = {
                "dtype": "BF16",
                "shape": shape,
                "data_offsets": [len(data), len(data) + size],
            }
            data += bytes((seed + i) % 251 for i in range(size))
    raw = json.dumps(header).encode()
    config = {
        "peft_type": "LORA",
        "r": rank,
        "lora_alpha": 2 * rank,
        "target_modules": ["q_proj"],
        "base_model_name_or_path": "meta-llama/Llama-3.1-8B-Instruct",
    }
    return {
        "adapter_config.json": json.dumps(config).encode(),
        "adapter_model.safetensors": struct.pack("<Q", len(raw)) + raw + data,
    }
