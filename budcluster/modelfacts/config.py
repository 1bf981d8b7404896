"""Read the shape of a model from a Hugging Face ``config.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Bytes per parameter of the dtype names config.json and the CLI use.
DTYPE_BYTES: dict[str, float] = {
    "float32": 4,
    "float": 4,
    "fp32": 4,
    "bfloat16": 2,
    "bf16": 2,
    "float16": 2,
    "half": 2,
    "fp16": 2,
    "fp8": 1,
    "float8": 1,
    "int8": 1,
    "int4": 0.5,
}
SAFETENSORS_DTYPE_NAMES = {
    "BF16": "bfloat16",
    "F16": "float16",
    "F32": "float32",
    "F8_E4M3": "fp8",
    "F8_E5M2": "fp8",
    "I8": "int8",
    "I32": "int32",
    "U8": "uint8",
}


def read_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: config.json must be a JSON object")
    # Multimodal configs keep the language model's shape under text_config.
    text = data.get("text_config")
    if isinstance(text, dict) and "num_hidden_layers" not in data:
        merged = dict(data)
        merged.update(text)
        return merged
    return data


def shape_from_config(config: dict[str, Any]) -> dict[str, Any]:
    heads = config.get("num_attention_heads")
    hidden = config.get("hidden_size")
    head_dim = config.get("head_dim")
    if head_dim is None and heads and hidden:
        head_dim = hidden // heads
    sliding = config.get("sliding_window")
    if config.get("use_sliding_window") is False:
        sliding = None  # Qwen2 configs carry a window size but turn it off
    quant = config.get("quantization_config")
    return {
        "architecture": (config.get("architectures") or [None])[0],
        "model_type": config.get("model_type"),
        "num_layers": config.get("num_hidden_layers"),
        "hidden_size": hidden,
        "intermediate_size": config.get("intermediate_size"),
        "num_attention_heads": heads,
        "num_kv_heads": config.get("num_key_value_heads", heads),
        "head_dim": head_dim,
        "vocab_size": config.get("vocab_size"),
        "max_position_embeddings": config.get("max_position_embeddings"),
        "sliding_window": sliding,
        "tie_word_embeddings": bool(config.get("tie_word_embeddings", False)),
        "config_dtype": config.get("torch_dtype") or config.get("dtype"),
        "quantization": quant if isinstance(quant, dict) else None,
    }


# Decoder-only transformers with Llama's layout: q/k/v/o attention and a gated 3-matrix MLP.
LLAMA_LIKE = {"llama", "mistral", "qwen2", "qwen3", "granite"}
QKV_BIAS = {"qwen2"}


def estimate_parameters(shape: dict[str, Any]) -> int | None:
    """Parameter count from the config, for Llama-like models only (None otherwise).

    Per layer: q and o are hidden x (heads*head_dim), k and v hidden x (kv_heads*head_dim),
    the MLP three hidden x intermediate matrices, plus two RMSNorm vectors. Add the
    embeddings, the final norm and an untied LM head.
    """
    if shape.get("model_type") not in LLAMA_LIKE:
        return None
    try:
        hidden = int(shape["hidden_size"])
        layers = int(shape["num_layers"])
        q_dim = int(shape["num_attention_heads"]) * int(shape["head_dim"])
        kv_dim = int(shape["num_kv_heads"]) * int(shape["head_dim"])
        inter = int(shape["intermediate_size"])
        vocab = int(shape["vocab_size"])
    except (KeyError, TypeError):
        return None
    attention = 2 * hidden * q_dim + 2 * hidden * kv_dim
    if shape.get("model_type") in QKV_BIAS:
        attention += q_dim + 2 * kv_dim
    per_layer = attention + 3 * hidden * inter + 2 * hidden
    embeddings = vocab * hidden
    head = 0 if shape.get("tie_word_embeddings") else vocab * hidden
    return embeddings + layers * per_layer + hidden + head
