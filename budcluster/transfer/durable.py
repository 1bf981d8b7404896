"""fsync helpers: the manifest vouches for files, so they must be on disk before it is.

Without them a power loss after the manifest's rename can leave a directory that claims
to be complete while its files are empty or short (the kernel writes back data and the
directory entries in any order).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath


def fsync_file(path: Path) -> None:
    """Flush a finished file's data, e.g. one a previous run renamed into place."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(path: Path) -> None:
    """Make the entries of ``path`` (files renamed or created in it) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path, rels: Iterable[str]) -> None:
    """Sync every directory from ``root`` down to the parents of ``rels``, deepest first.

    A directory created by this run is an entry in its parent, so each ancestor is
    synced too, not only the directories that hold files.
    """
    directories: set[PurePosixPath] = {PurePosixPath(".")}
    for rel in rels:
        directories.update(PurePosixPath(rel).parents)
    for directory in sorted(directories, key=lambda d: len(d.parts), reverse=True):
        fsync_directory(root / directory)
