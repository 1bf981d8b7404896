"""Read safetensors headers: an 8-byte little-endian length, then a JSON header. No weights."""

from __future__ import annotations

import json
import math
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

MAX_HEADER_BYTES = 100 * 1024 * 1024
"""The format caps headers at 100 MB; a bigger length means a corrupt or foreign file."""


@dataclass
class TensorTotals:
    files: int = 0
    tensors: int = 0
    parameters: int = 0
    weight_bytes: int = 0
    bytes_by_dtype: Counter[str] = field(default_factory=Counter)

    @property
    def dominant_dtype(self) -> str | None:
        return self.bytes_by_dtype.most_common(1)[0][0] if self.bytes_by_dtype else None


def read_header(path: Path) -> dict[str, object]:
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) != 8:
            raise ValueError(f"{path}: shorter than the 8-byte safetensors header length")
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_HEADER_BYTES:
            raise ValueError(f"{path}: header length {length} is over 100 MB; not safetensors")
        raw = handle.read(length)
    header = json.loads(raw)
    if not isinstance(header, dict):
        raise ValueError(f"{path}: safetensors header is not a JSON object")
    return header


def sum_tensors(paths: list[Path]) -> TensorTotals:
    totals = TensorTotals()
    for path in paths:
        totals.files += 1
        for name, info in read_header(path).items():
            if name == "__metadata__" or not isinstance(info, dict):
                continue
            start, end = info["data_offsets"]
            size = int(end) - int(start)
            totals.tensors += 1
            totals.parameters += math.prod(int(d) for d in info["shape"])
            totals.weight_bytes += size
            totals.bytes_by_dtype[str(info["dtype"])] += size
    return totals
