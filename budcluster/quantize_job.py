"""A quantized model version: where it goes, its manifest, and what the catalogue records.

A version is one directory holding one GGUF; the catalogue row's ``config_facts`` carry the
facts read from the new file plus a ``quantization`` entry linking it to the model it came
from (catalogue id and URI) with the type asked for and what llama-quantize actually did
per tensor (small tensors may not suit a type's block size; it falls back per tensor).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from budcluster.errors import ConfigurationError
from budcluster.runtimes.llama_quantize import QuantizeResult
from budcluster.transfer.manifest import Manifest, build_manifest, write_manifest

_TYPE_SUFFIX = re.compile(r"\.(f16|f32|bf16|q\d\w*)$", re.IGNORECASE)


def source_gguf(path: Path) -> Path:
    """The GGUF to quantize: ``path`` itself, or the one ``.gguf`` inside the directory."""
    if path.is_file() and path.suffix == ".gguf":
        return path
    if path.is_dir():
        found = sorted(path.glob("*.gguf"))
        if len(found) == 1:
            return found[0]
        raise ConfigurationError(
            f"source {path} holds {len(found)} .gguf files; set source to one .gguf file"
        )
    raise ConfigurationError(
        f"source {path} is not a .gguf file or a directory with one; build one with "
        "`budcluster demo-model build` or convert the model to GGUF first"
    )


def version_name(source: Path, quant_type: str) -> str:
    """``demo-tiny.f16.gguf`` + Q4_K_M -> ``demo-tiny.Q4_K_M``."""
    return f"{_TYPE_SUFFIX.sub('', source.stem)}.{quant_type}"


def default_output_dir(data_dir: Path, source: Path, quant_type: str) -> Path:
    return data_dir / "quantized" / version_name(source, quant_type)


def write_version_manifest(version_dir: Path) -> Manifest:
    """Hash every file of the version and write the manifest beside them (last)."""
    manifest = build_manifest(version_dir)
    write_manifest(version_dir, manifest)
    return manifest


def lineage_facts(
    result: QuantizeResult,
    *,
    parent_model_id: int,
    parent_uri: str,
    parent_weight_bytes: int | None,
    weight_bytes: int | None,
) -> dict[str, Any]:
    """The ``quantization`` entry of the version's catalogue facts."""
    return {
        "type": result.quant_type,
        "tool": "llama-quantize",
        "from_model_id": parent_model_id,
        "from_uri": parent_uri,
        "from_weight_bytes": parent_weight_bytes,
        "weight_bytes": weight_bytes,
        "tensor_types": result.type_counts(),
        "fallbacks": [
            {
                "tensor": f.tensor,
                "ncols": f.ncols,
                "block": f.block,
                "wanted": f.wanted,
                "used": f.used,
            }
            for f in result.fallbacks
        ],
        "duration_s": result.duration_s,
    }
