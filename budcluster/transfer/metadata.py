"""Reading a model's metadata without moving its weights.

Planning happens before the transfer, so for a remote source only what the model-facts
reader needs is fetched into a local directory: small files whole (config.json, the
tokenizer files), and for weights only their headers — the safetensors JSON header, or
the leading part of a GGUF file that holds its metadata and tensor table.
"""

from __future__ import annotations

import hashlib
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path

from budcluster.secretfiles import process_secret_dir
from budcluster.transfer.errors import SourceUnavailable
from budcluster.transfer.local import LocalDirSource
from budcluster.transfer.paths import dest_path
from budcluster.transfer.source import ModelSource, SourceFile
from budcluster.transfer.uri import parse_source

WHOLE_FILE_LIMIT = 4 * 1024 * 1024
"""Files up to this size (configs, tokenizers, chat templates) are fetched whole."""
GGUF_HEAD_BYTES = 64 * 1024 * 1024
"""A GGUF file's metadata and tensor table sit at its start; vocabularies make it MiBs."""
_SAFETENSORS_MAX_HEADER = 100 * 1024 * 1024


def fetch_metadata(
    uri: str, env: Mapping[str, str] | None = None, cache_root: Path | None = None
) -> Path:
    """A local directory describing the model at ``uri``; a local source is used as it is.

    The returned directory is named like the model (the last part of the URI), so the
    facts reader names the model the same way it would from the full copy.
    """
    source = parse_source(uri, env)
    if isinstance(source, LocalDirSource):
        return source.root
    # A private per-process directory, not a shared path in /tmp: a private bucket's
    # config is not for other users, and two flows reading the same model at once must not
    # remove each other's files. A fresh directory per fetch also means no stale file
    # outlives the model's; the process directory goes when the process exits.
    root = cache_root or process_secret_dir() / "metadata"
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = uri.rstrip("/").rsplit("/", 1)[-1].split("@", 1)[0] or "model"
    prefix = hashlib.sha256(uri.encode()).hexdigest()[:16] + "-"
    dest = Path(tempfile.mkdtemp(prefix=prefix, dir=root)) / name
    dest.mkdir()
    for file in source.list_files():
        data = _head(source, file)
        if data is None:
            continue
        target = dest_path(dest, file.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return dest


def _head(source: ModelSource, file: SourceFile) -> bytes | None:
    """The part of ``file`` the facts reader needs, or None when it needs none of it."""
    if file.size <= WHOLE_FILE_LIMIT:
        return _read(source, file, file.size)
    if file.path.endswith(".safetensors"):
        prefix = _read(source, file, 8)
        (length,) = struct.unpack("<Q", prefix)
        if length > _SAFETENSORS_MAX_HEADER:
            raise SourceUnavailable(f"{file.path}: header length {length} is not safetensors")
        return _read(source, file, 8 + length)
    if file.path.endswith(".gguf"):
        return _read(source, file, min(file.size, GGUF_HEAD_BYTES))
    return None


def _read(source: ModelSource, file: SourceFile, length: int) -> bytes:
    reader = source.open_range(file, 0)
    try:
        buffer = bytearray(length)
        view = memoryview(buffer)
        filled = 0
        while filled < length:
            got = reader.readinto(view[filled:])
            if got == 0:
                break
            filled += got
        return bytes(buffer[:filled])
    finally:
        reader.close()
