"""ModelFacts: what the planner needs about a model, from config.json, safetensors or GGUF."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from budcluster.errors import ConfigurationError
from budcluster.modelfacts.config import (
    DTYPE_BYTES,
    SAFETENSORS_DTYPE_NAMES,
    estimate_parameters,
    read_config,
    shape_from_config,
)
from budcluster.modelfacts.gguf import read_gguf_header
from budcluster.modelfacts.safetensors import sum_tensors


class ModelFactsError(ConfigurationError):
    """The model path cannot be read as an HF directory, a config.json or a GGUF file."""


class ModelFacts(BaseModel):
    name: str = Field(description="Served model name: the directory or file stem.")
    path: str
    source_format: Literal["hf", "hf-config-only", "gguf"]
    architecture: str | None = None
    model_type: str | None = None
    parameter_count: int | None = None
    dtype: str | None = Field(None, description="Stored weight dtype: bfloat16, float16, Q4_K...")
    num_layers: int | None = None
    hidden_size: int | None = None
    intermediate_size: int | None = None
    num_attention_heads: int | None = None
    num_kv_heads: int | None = None
    head_dim: int | None = None
    vocab_size: int | None = None
    max_position_embeddings: int | None = None
    sliding_window: int | None = None
    quantization: dict[str, Any] | None = None
    weight_bytes: int | None = Field(None, description="Bytes of all weights as stored.")
    weight_bytes_source: str | None = Field(
        None, description="safetensors headers, GGUF tensor infos, or config estimate."
    )
    gguf_file: str | None = None
    notes: list[str] = Field(default_factory=list)

    @property
    def has_attention_shape(self) -> bool:
        return None not in (self.num_layers, self.num_kv_heads, self.head_dim)


def _from_hf_dir(directory: Path, config_path: Path) -> ModelFacts:
    shape = shape_from_config(read_config(config_path))
    notes: list[str] = []
    shards = sorted(directory.glob("*.safetensors"))
    params: int | None
    if shards:
        totals = sum_tensors(shards)
        params = totals.parameters
        weight_bytes: int | None = totals.weight_bytes
        bytes_source = f"safetensors headers ({totals.files} files, {totals.tensors} tensors)"
        stored = totals.dominant_dtype
        dtype = SAFETENSORS_DTYPE_NAMES.get(stored or "", stored) or shape["config_dtype"]
        if shape["quantization"]:
            notes.append(
                "parameter_count counts stored elements; packed quantized tensors hold several "
                "parameters per element"
            )
        source: Literal["hf", "hf-config-only", "gguf"] = "hf"
    else:
        params = estimate_parameters(shape)
        dtype = shape["config_dtype"]
        source = "hf-config-only"
        per_param = DTYPE_BYTES.get(str(dtype).lower()) if dtype else None
        if params is not None and per_param and not shape["quantization"]:
            weight_bytes = int(params * per_param)
            bytes_source = "estimated from config.json shape x torch_dtype (no safetensors found)"
        else:
            weight_bytes = None
            bytes_source = None
            notes.append(
                "weight bytes unknown: no safetensors files and no estimate for "
                f"model_type={shape['model_type']!r}"
            )
    if not shape["num_layers"] or not shape["num_kv_heads"] or not shape["head_dim"]:
        notes.append(
            "KV-cache size cannot be derived: config.json lacks num_hidden_layers, "
            "num_key_value_heads or head_dim for this architecture"
        )
    fields = {k: v for k, v in shape.items() if k not in {"config_dtype", "tie_word_embeddings"}}
    return ModelFacts(
        name=directory.name,
        path=str(directory),
        source_format=source,
        parameter_count=params,
        dtype=dtype,
        weight_bytes=weight_bytes,
        weight_bytes_source=bytes_source,
        notes=notes,
        **fields,
    )


def _from_gguf(path: Path) -> ModelFacts:
    header = read_gguf_header(path)
    meta = header.metadata
    arch = meta.get("general.architecture")
    prefix = f"{arch}." if arch else ""

    def number(key: str) -> int | None:
        value = meta.get(prefix + key)
        return (
            int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        )

    heads = number("attention.head_count")
    hidden = number("embedding_length")
    head_dim = number("attention.key_length") or (hidden // heads if hidden and heads else None)
    notes: list[str] = []
    weight_bytes = header.weight_bytes
    if header.unknown_types:
        # Unknown quant types: fall back to the file size, which is weights plus a small header.
        weight_bytes = path.stat().st_size
        notes.append(f"ggml types {sorted(header.unknown_types)} unknown; weight bytes = file size")
    if arch is None or heads is None:
        notes.append("GGUF metadata lacks general.architecture or attention.head_count")
    return ModelFacts(
        name=str(meta.get("general.name") or path.stem),
        path=str(path),
        source_format="gguf",
        architecture=arch,
        model_type=arch,
        parameter_count=header.parameters,
        dtype=header.dominant_type,
        num_layers=number("block_count"),
        hidden_size=hidden,
        intermediate_size=number("feed_forward_length"),
        num_attention_heads=heads,
        num_kv_heads=number("attention.head_count_kv") or heads,
        head_dim=head_dim,
        max_position_embeddings=number("context_length"),
        sliding_window=number("attention.sliding_window"),
        weight_bytes=weight_bytes,
        weight_bytes_source=f"GGUF tensor infos ({header.tensor_count} tensors)",
        gguf_file=str(path),
        notes=notes,
    )


def load_model_facts(path: str | Path) -> ModelFacts:
    """Facts from an HF directory, a config.json, a .gguf file, or a directory with one GGUF."""
    target = Path(path)
    try:
        if target.is_file() and target.suffix == ".gguf":
            return _from_gguf(target)
        if target.is_file() and target.name.endswith(".json"):
            return _from_hf_dir(target.parent, target)
        if target.is_dir():
            if (target / "config.json").is_file():
                facts = _from_hf_dir(target, target / "config.json")
                ggufs = sorted(target.glob("*.gguf"))
                if ggufs:
                    facts.gguf_file = str(ggufs[0])
                return facts
            ggufs = sorted(target.glob("*.gguf"))
            if ggufs:
                return _from_gguf(ggufs[0])
    except (OSError, ValueError, KeyError) as exc:
        raise ModelFactsError(f"--model {target}: {exc}") from exc
    raise ModelFactsError(
        f"--model {target}: expected an HF model directory (with config.json), a config.json "
        "or a .gguf file; nothing of that kind was found"
    )
