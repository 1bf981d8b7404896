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
    A key mounted from a Kubernetes Secret is root's, on a read-only mount, and readable by
    the pod's fsGroup when one is set (the kubelet adds 0440 to the Secret's ``defaultMode``
    then): see :func:`key_file_problem`.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except PermissionError as exc:
        raise InsecureKeyFileError(_unreadable(path)) from exc
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        read_only = bool(os.fstatvfs(handle.fileno()).f_flag & os.ST_RDONLY)
        problem = key_file_problem(
            path, info.st_uid, stat.S_IMODE(info.st_mode), os.getuid(), read_only=read_only
        )
        if problem is not None:
            raise InsecureKeyFileError(problem)
        return handle.read()


def _unreadable(path: Path) -> str:
    try:
        info = path.stat()
        what = f"owner uid {info.st_uid}, group {info.st_gid}, mode {stat.S_IMODE(info.st_mode):o}"
    except OSError:
        what = "its directory is not searchable"
    return (
        f"cannot read {path} as uid {os.getuid()} ({what}). On Kubernetes a pod that runs as "
        "non-root needs `securityContext.fsGroup` so that the kubelet lets its group read the "
        'Secret\'s files (docs/credentials.md, "Keys on workers"); elsewhere, copy the keys '
        "to files this user owns, mode 0600."
    )


def key_file_problem(path: Path, owner: int, mode: int, uid: int, *, read_only: bool) -> str | None:
    """Why a key file with this owner and mode must not be used by ``uid``, or None.

    Accepted: a file of this user that group and others can neither read nor change; or
    a root-owned file on a read-only mount that only root and its group can read and no
    one can change. The second is a Kubernetes Secret volume (``readOnly``, root-owned,
    ``defaultMode: 0400``, which the kubelet widens to 0440 for the pod's ``fsGroup``): no
    process in the pod can replace it, and the group is the pod's own.
    """
    if owner == uid and not mode & 0o077:
        return None
    if owner == 0 and read_only and not mode & 0o037:
        return None
    if owner == 0 and read_only:
        return (
            f"{path} has mode {mode:o}, so others can read it or anyone can change it; a key "
            "mounted from a Kubernetes Secret must be mode 0400 (0440 with an fsGroup): set "
            "`defaultMode: 0400` on the Secret volume."
        )
    if owner != uid:
        return (
            f"{path} is owned by uid {owner}, not by this user (uid {uid}); a key another "
            "user controls cannot be trusted. Copy it to a file you own and run `chmod 600` "
            f"on it, or run as uid {owner}. (A root-owned key is accepted only on a "
            "read-only mount such as a Kubernetes Secret volume.)"
        )
    return (
        f"{path} has mode {mode:o}, so group or others can read or change it; keys must be "
        f"private: run `chmod 600 {path}` (and check who may have copied it)."
    )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
