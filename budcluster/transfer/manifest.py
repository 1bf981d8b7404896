"""The per-file sha256 manifest of a model directory and its JSON form."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from budcluster.transfer.durable import fsync_directory
from budcluster.transfer.errors import InvalidManifest
from budcluster.transfer.paths import check_relative_path, open_no_follow
from budcluster.transfer.walk import walk_files

MANIFEST_NAME = ".budcluster-manifest.json"
"""Written last into a destination: a directory without it is incomplete."""

MANIFEST_FORMAT = "budcluster-manifest/1"
HASH_BUFFER_BYTES = 256 << 10
"""Cache-sized reads: hashlib drops the GIL on updates over 2 KiB, so threads scale."""

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, order=True)
class ManifestEntry:
    path: str
    size: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True)
class Manifest:
    """Every file of a model: relative POSIX path, size in bytes, sha256 (sorted by path)."""

    files: tuple[ManifestEntry, ...]

    @classmethod
    def of(cls, entries: Iterable[ManifestEntry]) -> Manifest:
        ordered = tuple(sorted(entries))
        seen: set[str] = set()
        for entry in ordered:
            if entry.path in seen:
                raise InvalidManifest(f"manifest lists {entry.path!r} twice")
            seen.add(entry.path)
        return cls(ordered)

    @property
    def total_bytes(self) -> int:
        return sum(entry.size for entry in self.files)

    def by_path(self) -> dict[str, ManifestEntry]:
        return {entry.path: entry for entry in self.files}

    def sha256(self) -> str:
        """Digest of the canonical JSON of the entries: equal models, equal digests."""
        canonical = json.dumps(
            [entry.to_dict() for entry in self.files], separators=(",", ":"), sort_keys=True
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    def to_json(self) -> str:
        body = {
            "format": MANIFEST_FORMAT,
            "manifest_sha256": self.sha256(),
            "total_bytes": self.total_bytes,
            "files": [entry.to_dict() for entry in self.files],
        }
        return json.dumps(body, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, *, origin: str = "manifest") -> Manifest:
        """Parse and check a manifest; ``origin`` names it in error messages."""
        try:
            body = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidManifest(f"{origin}: not valid JSON ({exc})") from exc
        if not isinstance(body, dict) or body.get("format") != MANIFEST_FORMAT:
            raise InvalidManifest(f"{origin}: field 'format' must be {MANIFEST_FORMAT!r}")
        raw_files = body.get("files")
        if not isinstance(raw_files, list):
            raise InvalidManifest(f"{origin}: field 'files' must be a list")
        entries = [_entry(raw, index, origin) for index, raw in enumerate(raw_files)]
        manifest = cls.of(entries)
        claimed = body.get("manifest_sha256")
        if claimed is not None and claimed != manifest.sha256():
            raise InvalidManifest(
                f"{origin}: field 'manifest_sha256' ({claimed}) does not match its entries "
                f"({manifest.sha256()}); the file was edited or truncated"
            )
        return manifest


def _entry(raw: Any, index: int, origin: str) -> ManifestEntry:
    where = f"{origin}: files[{index}]"
    if not isinstance(raw, dict):
        raise InvalidManifest(f"{where} must be an object with path, size and sha256")
    path, size, digest = raw.get("path"), raw.get("size"), raw.get("sha256")
    if not isinstance(path, str):
        raise InvalidManifest(f"{where}.path must be a string")
    safe_path = check_relative_path(path, origin=where)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidManifest(f"{where}.size must be a non-negative integer, got {size!r}")
    if not isinstance(digest, str) or not _SHA256_HEX.match(digest):
        raise InvalidManifest(f"{where}.sha256 must be 64 lowercase hex digits, got {digest!r}")
    return ManifestEntry(safe_path, size, digest)


def hash_file(path: Path, buffer_bytes: int = HASH_BUFFER_BYTES) -> tuple[str, int]:
    """sha256 and length of a file, read with one reused buffer."""
    digest = hashlib.sha256()
    buffer = bytearray(buffer_bytes)
    view = memoryview(buffer)
    length = 0
    with path.open("rb", buffering=0) as handle:
        while count := handle.readinto(view):
            digest.update(view[:count])
            length += count
    return digest.hexdigest(), length


def build_manifest(root: Path, *, workers: int = 4) -> Manifest:
    """Hash every file under ``root`` (``workers`` files at a time).

    Symlinks that leave ``root`` raise UnsafeModelPath; the engine's own files
    (``.budcluster-*``) are not listed.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    files = walk_files(root)

    def one(rel: str, path: Path) -> ManifestEntry:
        digest, size = hash_file(path)
        return ManifestEntry(rel, size, digest)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="manifest") as pool:
        entries = list(pool.map(lambda f: one(f.rel, f.path), files))
    return Manifest.of(entries)


def read_manifest(directory: Path) -> Manifest | None:
    """The manifest a completed transfer left in ``directory``, or None if there is none."""
    path = directory / MANIFEST_NAME
    if not path.is_file():
        return None
    return Manifest.from_json(path.read_text(), origin=str(path))


def write_manifest(directory: Path, manifest: Manifest) -> Path:
    """Write atomically (temp file, fsync, rename, fsync the directory) so a reader never
    sees half a manifest and a crash never loses a manifest that was reported written."""
    path = directory / MANIFEST_NAME
    temporary = directory / (MANIFEST_NAME + ".tmp")
    fd = open_no_follow(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with os.fdopen(fd, "w") as handle:
        handle.write(manifest.to_json())
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)
    fsync_directory(directory)
    return path
