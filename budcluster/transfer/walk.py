"""List the regular files under a directory, refusing anything that links out of it."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from budcluster.transfer.errors import SourceNotFound, UnsafeModelPath
from budcluster.transfer.paths import RESERVED_PREFIX, check_relative_path, is_within


@dataclass(frozen=True)
class LocalFile:
    rel: str
    """POSIX path relative to the walked root."""
    path: Path
    """Where to read it (may be a symlink that stays inside the containment root)."""
    size: int
    mtime_ns: int
    real_name: str
    """Basename of the resolved file: for an HF cache, the blob name."""


def walk_files(root: Path, *, containment_root: Path | None = None) -> list[LocalFile]:
    """Every regular file under ``root``, sorted by relative path.

    Symlinks are followed only while they resolve inside ``containment_root`` (default
    ``root``); one that leads elsewhere raises UnsafeModelPath naming it. Names starting
    with ``.budcluster-`` (the engine's own manifest and journal) are left out.
    """
    if not root.is_dir():
        raise SourceNotFound(f"model directory {root} does not exist or is not a directory")
    contain = (containment_root or root).resolve()
    found: list[LocalFile] = []
    visited: set[Path] = set()

    def visit(directory: Path, prefix: str) -> None:
        real_dir = directory.resolve()
        if real_dir in visited:  # a symlink loop inside the root: list each directory once
            return
        visited.add(real_dir)
        with os.scandir(directory) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.name.startswith(RESERVED_PREFIX):
                    continue
                rel = f"{prefix}{entry.name}"
                path = Path(entry.path)
                if entry.is_symlink() and not is_within(path, contain):
                    raise UnsafeModelPath(
                        f"{path} is a symlink to {os.path.realpath(path)}, outside {contain}; "
                        "a model directory may not link out of itself. Replace the link with "
                        "the file it points to"
                    )
                try:
                    info = path.stat()
                except FileNotFoundError as exc:
                    raise UnsafeModelPath(
                        f"{path} is a dangling symlink; remove it or restore its target"
                    ) from exc
                if stat.S_ISDIR(info.st_mode):
                    visit(path, rel + "/")
                elif stat.S_ISREG(info.st_mode):
                    check_relative_path(rel, origin=str(root))
                    found.append(
                        LocalFile(
                            rel=rel,
                            path=path,
                            size=info.st_size,
                            mtime_ns=info.st_mtime_ns,
                            real_name=Path(os.path.realpath(path)).name,
                        )
                    )
                else:
                    raise UnsafeModelPath(
                        f"{path} is not a regular file or directory (a socket, FIFO or device); "
                        "remove it from the model directory"
                    )

    visit(root, "")
    return found
