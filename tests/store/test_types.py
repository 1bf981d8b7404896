"""The portable column types, without a database."""

from __future__ import annotations

import math
import random
import struct

import pytest

from budcluster.store.types import pack_float64, unpack_float64


def test_float64_packing_is_exact_and_little_endian() -> None:
    rng = random.Random(5)
    values = [rng.uniform(0, 1e5) for _ in range(200)] + [0.1, 1e-300, -0.0, 5e-324]
    data = pack_float64(values)
    assert len(data) == 8 * len(values)
    assert data[:8] == struct.pack("<d", values[0])
    unpacked = unpack_float64(data)
    assert unpacked == values
    assert math.copysign(1.0, unpacked[-2]) == -1.0  # the sign of -0.0 survives


def test_empty_and_truncated_arrays() -> None:
    assert unpack_float64(pack_float64([])) == []
    with pytest.raises(ValueError, match="multiple of 8 bytes, got 7"):
        unpack_float64(b"\x00" * 7)
