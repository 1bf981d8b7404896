"""Short-lived files for tools that only take secrets from a path (ssh, kubectl, helm,
ansible-runner's private data directory, the kubernetes client's decoded client key).

Every such file lives under one private directory per process::

    <secrets root>/<pid>-<process start time>/

The secrets root (``BUDCLUSTER_SECRETS_DIR``, default ``<tmp>/budcluster-secrets-<uid>``)
is ``0700`` and must be owned by this user and not be a symlink, or nothing is written.
Files are created ``0600`` and removed when their ``with`` block ends, even on error; the
process directory is removed at normal exit. A process killed with ``kill -9`` cannot
clean up, so the first use of this module in any later process (each flow run is one)
removes every process directory whose process is gone: a secret outlives its run only
until the next run on that machine, or until ``budcluster secrets sweep``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from budcluster.errors import ConfigurationError

__all__ = [
    "UnsafeSecretsDir",
    "private_tempdir",
    "process_secret_dir",
    "secrets_root",
    "sweep_stale_secret_dirs",
    "temporary_secret_file",
]

_lock = threading.Lock()
_process_dir: Path | None = None
_process_dir_pid: int | None = None


class UnsafeSecretsDir(ConfigurationError):
    """The secrets root is not a private directory of this user."""


def secrets_root() -> Path:
    """The directory that holds every process's secret directory (not created here)."""
    configured = os.environ.get("BUDCLUSTER_SECRETS_DIR")
    if configured:
        return Path(configured).expanduser()
    return Path(tempfile.gettempdir()) / f"budcluster-secrets-{os.getuid()}"


def _ensure_private_root(root: Path) -> Path:
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(root)
    except OSError as exc:
        raise UnsafeSecretsDir(
            f"cannot create the secrets directory {root}: {exc.strerror}. "
            "Set BUDCLUSTER_SECRETS_DIR to a directory this user owns."
        ) from exc
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise UnsafeSecretsDir(
            f"the secrets directory {root} is a symlink or not a directory; remove it, or set "
            "BUDCLUSTER_SECRETS_DIR to a private directory."
        )
    if info.st_uid != os.getuid():
        raise UnsafeSecretsDir(
            f"the secrets directory {root} belongs to uid {info.st_uid}, not to this user "
            f"({os.getuid()}); another user may be waiting to read secrets there. Remove it, "
            "or set BUDCLUSTER_SECRETS_DIR to a private directory."
        )
    if stat.S_IMODE(info.st_mode) & 0o077:
        root.chmod(0o700)
    return root


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks (field 22 of /proc/<pid>/stat), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses; the fields after the
    # last ')' are fixed.
    fields = text[text.rindex(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def _process_tag(pid: int) -> str:
    return f"{pid}-{_start_time(pid) or 'x'}"


def _is_alive(tag: str) -> bool:
    pid_text, _, started = tag.partition("-")
    if not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if Path("/proc").is_dir():
        # A reused pid has another start time, so its owner is gone.
        return _start_time(pid) == started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_secret_dirs(root: Path | None = None) -> list[Path]:
    """Remove the directories of processes that are gone; returns what was removed."""
    root = root or secrets_root()
    if not os.path.lexists(root):
        return []
    _ensure_private_root(root)
    removed: list[Path] = []
    for entry in root.iterdir():
        if entry.is_dir() and not entry.is_symlink() and not _is_alive(entry.name):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _remove_process_dir() -> None:
    if _process_dir is not None and _process_dir_pid == os.getpid():
        shutil.rmtree(_process_dir, ignore_errors=True)


def process_secret_dir() -> Path:
    """This process's private directory, created (and stale ones swept) on first use."""
    global _process_dir, _process_dir_pid
    with _lock:
        pid = os.getpid()
        if _process_dir is not None and _process_dir_pid == pid and _process_dir.is_dir():
            return _process_dir
        root = _ensure_private_root(secrets_root())
        sweep_stale_secret_dirs(root)
        directory = root / _process_tag(pid)
        directory.mkdir(mode=0o700, exist_ok=True)
        if _process_dir_pid is None:
            atexit.register(_remove_process_dir)
        _process_dir, _process_dir_pid = directory, pid
        return directory


@contextmanager
def private_tempdir(prefix: str = "run-") -> Iterator[Path]:
    """A fresh ``0700`` directory under this process's secret directory, removed on exit."""
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir=process_secret_dir()))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def temporary_secret_file(content: str | bytes, *, name: str = "secret") -> Iterator[Path]:
    """``content`` in a ``0600`` file named ``name`` for the duration of the block."""
    data = content.encode() if isinstance(content, str) else content
    with private_tempdir(prefix="file-") as directory:
        path = directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        try:
            yield path
        finally:
            with contextlib.suppress(OSError):
                path.unlink()
