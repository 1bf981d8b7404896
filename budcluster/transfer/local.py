"""A model in a local directory, and the Hugging Face cache layout built on it."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from budcluster.transfer.errors import InvalidSourceUri, SourceNotFound
from budcluster.transfer.manifest import MANIFEST_NAME, Manifest
from budcluster.transfer.source import RangeReader, SourceFile
from budcluster.transfer.walk import walk_files

PREFETCH_BYTES = 64 << 20
PREFETCH_LOW_WATER_BYTES = 32 << 20
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_HF_NAME_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class LocalDirSource:
    """Files under ``root``; symlinks may point anywhere inside ``containment_root``.

    With ``blob_names_are_sha256`` (the HF cache), a symlink whose target's name is 64 hex
    digits declares that file's sha256 (LFS blobs are stored under their sha256).
    """

    def __init__(
        self,
        root: Path,
        *,
        containment_root: Path | None = None,
        uri: str | None = None,
        blob_names_are_sha256: bool = False,
    ) -> None:
        self.root = root
        self.containment_root = containment_root or root
        self._uri = uri or str(root)
        self._blob_names_are_sha256 = blob_names_are_sha256
        self._paths: dict[str, Path] = {}

    @property
    def uri(self) -> str:
        return self._uri

    def list_files(self) -> list[SourceFile]:
        files = walk_files(self.root, containment_root=self.containment_root)
        self._paths = {f.rel: f.path for f in files}
        listed = []
        for f in files:
            known = (
                f.real_name
                if self._blob_names_are_sha256 and _SHA256_HEX.match(f.real_name)
                else None
            )
            # Size, mtime and the resolved name change whenever the content can have.
            version = f"{f.size}:{f.mtime_ns}:{f.real_name}"
            listed.append(SourceFile(path=f.rel, size=f.size, version=version, sha256=known))
        return listed

    def expected_manifest(self) -> Manifest | None:
        path = self.root / MANIFEST_NAME
        if not path.is_file():
            return None
        return Manifest.from_json(path.read_text(), origin=str(path))

    def open_range(self, file: SourceFile, offset: int) -> RangeReader:
        path = self._paths.get(file.path) or self.root / file.path
        return PrefetchingReader(path, offset)


class PrefetchingReader:
    """Reads a file sequentially while asking the kernel to fetch the next MiBs ahead.

    Small reads keep the data in the CPU cache for hashing, but on a cold page cache each
    one would wait for the disk; WILLNEED hints start the disk reads early (``cp`` gets
    the same effect from the kernel's large in-kernel copies).
    """

    def __init__(self, path: Path, offset: int) -> None:
        self._handle = path.open("rb", buffering=0)
        self._fd = self._handle.fileno()
        if offset:
            self._handle.seek(offset)
        self._position = offset
        self._prefetched = offset
        os.posix_fadvise(self._fd, offset, 0, os.POSIX_FADV_SEQUENTIAL)

    def readinto(self, buffer: memoryview, /) -> int:
        if self._prefetched - self._position < PREFETCH_LOW_WATER_BYTES:
            os.posix_fadvise(self._fd, self._prefetched, PREFETCH_BYTES, os.POSIX_FADV_WILLNEED)
            self._prefetched += PREFETCH_BYTES
        count = self._handle.readinto(buffer) or 0
        self._position += count
        return count

    def close(self) -> None:
        self._handle.close()


def hf_cache_dir(env: Mapping[str, str]) -> Path:
    """The HF hub cache, resolved the way huggingface_hub does."""
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    if env.get("XDG_CACHE_HOME"):
        return Path(env["XDG_CACHE_HOME"]).expanduser() / "huggingface" / "hub"
    return Path("~/.cache/huggingface/hub").expanduser()


def hf_cache_source(repo_id: str, revision: str | None, cache_dir: Path) -> LocalDirSource:
    """The snapshot of ``repo_id`` at ``revision`` (a branch, tag or commit; default main).

    Snapshot files are symlinks into ``blobs/``; they are allowed because they stay inside
    the repository's cache folder, which is the containment root.
    """
    parts = repo_id.split("/")
    if not 1 <= len(parts) <= 2 or not all(_HF_NAME_PART.match(p) for p in parts):
        raise InvalidSourceUri(
            f"hf://{repo_id}: the model id must be 'org/name' or 'name' with letters, digits, "
            "'.', '_' or '-'"
        )
    wanted = revision or "main"
    if not _HF_NAME_PART.match(wanted):
        raise InvalidSourceUri(
            f"hf://{repo_id}@{wanted}: invalid revision {wanted!r}; use a branch, tag or commit"
        )
    repo_dir = cache_dir / ("models--" + "--".join(parts))
    if not repo_dir.is_dir():
        raise SourceNotFound(
            f"hf://{repo_id} is not in the Hugging Face cache at {cache_dir} (no {repo_dir.name}); "
            "download it there first or set HF_HUB_CACHE / HF_HOME to the cache that holds it"
        )
    ref = repo_dir / "refs" / wanted
    commit = ref.read_text().strip() if ref.is_file() else wanted
    snapshot = repo_dir / "snapshots" / commit
    if not _HF_NAME_PART.match(commit) or not snapshot.is_dir():
        snapshots = repo_dir / "snapshots"
        available = sorted(p.name for p in snapshots.iterdir()) if snapshots.is_dir() else []
        refs = repo_dir / "refs"
        names = sorted(p.name for p in refs.iterdir()) if refs.is_dir() else []
        raise SourceNotFound(
            f"hf://{repo_id}@{wanted}: no such revision in {repo_dir}; refs: {names or 'none'}, "
            f"snapshots: {available or 'none'}"
        )
    uri = f"hf://{repo_id}@{commit}"
    return LocalDirSource(snapshot, containment_root=repo_dir, uri=uri, blob_names_are_sha256=True)
