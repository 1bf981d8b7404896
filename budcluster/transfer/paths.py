"""Path-safety checks: nothing a source lists may land outside the destination root.

Relative paths come from outside (a directory walk, an S3 listing, a manifest someone
uploaded), so they are checked as text first and then, where the filesystem is involved,
against the resolved location.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path, PurePosixPath

from budcluster.transfer.errors import InvalidDestination, UnsafeModelPath

RESERVED_PREFIX = ".budcluster-"
"""Names the engine writes itself (manifest, journal); a source file may not use them."""

PART_SUFFIX = ".part"


def check_relative_path(rel: str, *, origin: str) -> str:
    """Return ``rel`` as a normalised POSIX relative path, or raise UnsafeModelPath.

    ``origin`` says where the path came from (e.g. ``"s3://bucket/prefix"``) so the
    message lets a user find the offending entry.
    """
    if not rel or "\x00" in rel:
        raise UnsafeModelPath(f"{origin}: empty or NUL-containing path {rel!r} refused")
    if "\\" in rel:
        raise UnsafeModelPath(
            f"{origin}: path {rel!r} contains a backslash; use '/' separators only"
        )
    if rel.startswith("/") or PurePosixPath(rel).is_absolute():
        raise UnsafeModelPath(
            f"{origin}: absolute path {rel!r} refused; model files must be relative to the model root"
        )
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UnsafeModelPath(
            f"{origin}: path {rel!r} contains '..' and would escape the model root; refused"
        )
    if not parts:
        raise UnsafeModelPath(f"{origin}: path {rel!r} names the root itself, not a file")
    normal = "/".join(parts)
    if parts[-1].startswith(RESERVED_PREFIX):
        raise UnsafeModelPath(
            f"{origin}: file name {parts[-1]!r} is reserved for the transfer engine's own files"
        )
    return normal


def is_within(path: Path, root: Path) -> bool:
    """True when ``path`` (resolved, symlinks followed) is ``root`` or below it."""
    resolved_root = root.resolve()
    resolved = path.resolve()
    return resolved == resolved_root or resolved_root in resolved.parents


def check_source_file(path: Path, *, containment_root: Path, display: str) -> None:
    """Refuse a source file that is, or passes through, a symlink leading outside the root."""
    if not is_within(path, containment_root):
        target = os.path.realpath(path)
        raise UnsafeModelPath(
            f"{display} resolves to {target}, outside {containment_root}; a model directory "
            "may not link out of itself. Replace the symlink with the file it points to."
        )


def prepare_dest_root(dest: Path) -> None:
    """Create ``dest`` and its parents; a path that cannot be a directory is one clear error."""
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        what = (
            "exists and is not a directory"
            if dest.exists()
            else "has a part that is not a directory"
        )
        raise InvalidDestination(
            f"destination {dest} {what}; give DEST_DIR as a directory path (it is created "
            "if missing), or move the file away"
        ) from exc
    except OSError as exc:
        raise InvalidDestination(
            f"destination {dest}: cannot create it ({exc.strerror}); give DEST_DIR a "
            "directory this user can write"
        ) from exc


def dest_path(dest_root: Path, rel: str) -> Path:
    """Where ``rel`` goes under ``dest_root``; creates its parent directories safely.

    A symlink planted inside the destination (``dest/sub -> /etc``) must not make a write,
    or a directory, land elsewhere. So each directory is created relative to the already
    opened one above it and then opened with O_NOFOLLOW: a symlink at any component is
    refused before anything is created below it, and swapping a checked component for a
    symlink afterwards cannot redirect the next ``mkdir``. ``rel`` must have passed
    :func:`check_relative_path`.
    """
    parts = rel.split("/")
    fd = os.open(dest_root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for depth, name in enumerate(parts[:-1], start=1):
            child = _enter_directory(fd, name, dest_root, "/".join(parts[:depth]))
            os.close(fd)
            fd = child
        for name in (parts[-1], parts[-1] + PART_SUFFIX):
            try:
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(info.st_mode):
                shown = "/".join([*parts[:-1], name])
                raise UnsafeModelPath(
                    f"destination {dest_root / shown} is a symlink; refusing to write through "
                    "it. Remove it and retry"
                )
    finally:
        os.close(fd)
    return dest_root / rel


def _enter_directory(parent_fd: int, name: str, dest_root: Path, shown: str) -> int:
    """Open (creating it if missing) the directory ``name`` under ``parent_fd``."""
    try:
        os.mkdir(name, 0o777, dir_fd=parent_fd)
    except FileExistsError:
        pass
    except OSError as exc:
        raise InvalidDestination(
            f"destination {dest_root / shown}: cannot create it ({exc.strerror}); give "
            "DEST_DIR a directory this user can write"
        ) from exc
    try:
        return os.open(
            name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd
        )
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafeModelPath(
                f"destination {dest_root / shown} is a symlink or not a directory; it could "
                f"lead outside {dest_root}, so nothing is written through it. Remove it and "
                "retry"
            ) from exc
        raise InvalidDestination(
            f"destination {dest_root / shown}: cannot open it ({exc.strerror}); give DEST_DIR "
            "a directory this user can write"
        ) from exc


def open_no_follow(path: Path, flags: int) -> int:
    """``os.open(path, flags)`` for writing a file the engine owns in the destination
    (a ``.part``, the journal, a temporary manifest), refusing a symlink at its name:
    one planted after :func:`dest_path` checked it would otherwise redirect the write."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeModelPath(
                f"destination {path} is a symlink; refusing to write through it. Remove it "
                "and retry"
            ) from exc
        raise
