"""Path-safety checks: nothing a source lists may land outside the destination root.

Relative paths come from outside (a directory walk, an S3 listing, a manifest someone
uploaded), so they are checked as text first and then, where the filesystem is involved,
against the resolved location.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from budcluster.transfer.errors import UnsafeModelPath

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


def dest_path(dest_root: Path, rel: str) -> Path:
    """Where ``rel`` goes under ``dest_root``; creates its parent and refuses symlinked parents.

    A pre-existing symlink inside the destination (``dest/sub -> /etc``) would make a
    write land elsewhere, so the parent is resolved after it exists and checked.
    """
    target = dest_root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    if not is_within(target.parent, dest_root):
        raise UnsafeModelPath(
            f"destination {target.parent} resolves outside {dest_root} (a symlink in the "
            "destination); remove it and retry"
        )
    for candidate in (target, target.with_name(target.name + PART_SUFFIX)):
        if candidate.is_symlink():
            raise UnsafeModelPath(
                f"destination {candidate} is a symlink; refusing to write through it. Remove it and retry"
            )
    return target
