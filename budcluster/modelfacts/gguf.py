"""Read a GGUF header (metadata key/values and tensor infos). Weights are never read.

Layout (GGUF v2/v3, little endian): magic "GGUF", u32 version, u64 tensor count, u64 kv
count, the key/values, then per tensor: name, u32 n_dims, u64 dims[n_dims], u32 ggml type,
u64 offset.
"""

from __future__ import annotations

import math
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

# ggml type id -> (name, elements per block, bytes per block)
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2),
}

_SCALARS: dict[int, str] = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
MAX_STRING_BYTES = 64 * 1024 * 1024


@dataclass
class GgufHeader:
    version: int
    metadata: dict[str, Any]
    tensor_count: int
    parameters: int = 0
    weight_bytes: int = 0
    unknown_types: set[int] = field(default_factory=set)
    bytes_by_type: Counter[str] = field(default_factory=Counter)
    lora_rank: int | None = None
    """For a LoRA adapter: the largest rank of its ``*.lora_a`` tensors (their second dim)."""

    @property
    def dominant_type(self) -> str | None:
        return self.bytes_by_type.most_common(1)[0][0] if self.bytes_by_type else None


def _read(handle: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = handle.read(size)
    if len(data) != size:
        raise ValueError("GGUF header ends early (truncated file)")
    return struct.unpack(fmt, data)[0]


def _string(handle: BinaryIO) -> str:
    length = _read(handle, "<Q")
    if length > MAX_STRING_BYTES:
        raise ValueError(f"GGUF string of {length} bytes; the header is corrupt")
    return handle.read(length).decode("utf-8", errors="replace")


def _value(handle: BinaryIO, kind: int) -> Any:
    if kind in _SCALARS:
        return _read(handle, _SCALARS[kind])
    if kind == _STRING:
        return _string(handle)
    if kind == _ARRAY:
        item_kind = _read(handle, "<I")
        count = _read(handle, "<Q")
        items = [_value(handle, item_kind) for _ in range(count)]
        # Token tables hold 100k+ entries; keep only their length, the planner needs no vocab.
        return items if count <= 64 else {"array_length": count}
    raise ValueError(f"GGUF metadata value type {kind} is unknown")


def read_gguf_header(path: Path) -> GgufHeader:
    with path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise ValueError(f"{path}: does not start with the GGUF magic bytes")
        version = _read(handle, "<I")
        if version < 2:
            raise ValueError(f"{path}: GGUF version {version} is too old (v2+ supported)")
        tensor_count = _read(handle, "<Q")
        kv_count = _read(handle, "<Q")
        metadata: dict[str, Any] = {}
        for _ in range(kv_count):
            key = _string(handle)
            metadata[key] = _value(handle, _read(handle, "<I"))
        header = GgufHeader(version=version, metadata=metadata, tensor_count=tensor_count)
        for _ in range(tensor_count):
            name = _string(handle)
            dims = [_read(handle, "<Q") for _ in range(_read(handle, "<I"))]
            if name.endswith(".lora_a") and len(dims) == 2:
                header.lora_rank = max(header.lora_rank or 0, dims[1])
            type_id = _read(handle, "<I")
            _read(handle, "<Q")
            elements = math.prod(dims)
            header.parameters += elements
            if type_id in GGML_TYPES:
                name, block, block_bytes = GGML_TYPES[type_id]
                size = elements // block * block_bytes
                header.weight_bytes += size
                header.bytes_by_type[name] += size
            else:
                header.unknown_types.add(type_id)
    return header
