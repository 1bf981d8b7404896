"""Key material on disk: private permissions from the first byte, atomic replacement, and
refusal to read a key that anyone but this user could have read or replaced."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from budcluster.crypto.errors import InsecureKeyFileError, KeyDirectoryError


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and its parents) and make it 0700; one clear error if it cannot be."""
    if path.exists() and not path.is_dir():
        raise KeyDirectoryError(
            f"{path} is not a directory; pass a directory for the keys (it is created if "
            "missing), e.g. --dir crypto-keys."
        )
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.chmod(0o700)
    except OSError as exc:
        raise KeyDirectoryError(
            f"cannot use {path} as the key directory: {exc.strerror}. Pass a directory "
            "this user may create and write, e.g. --dir crypto-keys."
        ) from exc


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` with mode 0600 and atomically replace ``path``.

    The temporary file is created 0600 (never world-readable, not even briefly) and
    fsynced before the rename, so a crash leaves either the old file or the new one.
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def read_private_file(path: Path) -> bytes:
    """The bytes of a key file, refused (as ssh does) unless only this user can use it.

    The checks are made on the opened descriptor, so the file read is the file checked.
    """
    fd = os.open(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        uid = os.getuid()
        if info.st_uid != uid:
            raise InsecureKeyFileError(
                f"{path} is owned by uid {info.st_uid}, not by this user (uid {uid}); a key "
                "another user controls cannot be trusted. Copy it to a file you own and run "
                f"`chmod 600` on it, or run as uid {info.st_uid}."
            )
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise InsecureKeyFileError(
                f"{path} has mode {mode:o}, so group or others can read or change it; keys "
                f"must be private: run `chmod 600 {path}` (and check who may have copied it)."
            )
        return handle.read()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
