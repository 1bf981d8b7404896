"""Helpers for the transfer tests: model directories of random bytes, hashes computed
independently of the code under test."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping
from pathlib import Path

ModelFactory = Callable[[Path, Mapping[str, int]], dict[str, bytes]]


def write_model(root: Path, sizes: Mapping[str, int], seed: int = 7) -> dict[str, bytes]:
    """Create files of random bytes at ``root/<rel>``; returns their contents."""
    rng = random.Random(seed)
    contents: dict[str, bytes] = {}
    for rel, size in sizes.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = rng.randbytes(size)
        path.write_bytes(data)
        contents[rel] = data
    return contents


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tree(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` (relative POSIX path -> bytes)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


SMALL_MODEL = {
    "config.json": 300,
    "tokenizer.json": 5_000,
    "model-00001-of-00002.safetensors": 600_000,
    "model-00002-of-00002.safetensors": 400_000,
    "nested/extra/generation_config.json": 120,
}


RESUMABLE_MODEL = {
    "config.json": 2_000,
    "tokenizer.json": 200_000,
    "model-00001-of-00004.safetensors": 3 << 20,
    "model-00002-of-00004.safetensors": 3 << 20,
    "model-00003-of-00004.safetensors": 3 << 20,
    "model-00004-of-00004.safetensors": 3 << 20,
}
