"""Cache plumbing shared by the runtime builders: a cross-process lock, a stamp, steps.

A cache entry is complete only when its stamp exists: the stamp is written last and
atomically, so a build that was killed half-way leaves no stamp and is redone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from budcluster.runtimes.errors import RuntimeBuildError, RuntimeBuildTimeout
from budcluster.settings import get_settings

STAMP_NAME = "stamp.json"
_LOG_TAIL_LINES = 40


def resolve_cache_dir(cache_dir: Path | None) -> Path:
    """``cache_dir`` if given, else the ``BUDCLUSTER_CACHE_DIR`` setting."""
    chosen = cache_dir if cache_dir is not None else get_settings().cache_dir
    return chosen.expanduser().resolve()


class Deadline:
    """One time budget spread over several steps, so the caller's timeout holds overall."""

    def __init__(self, total_s: float, what: str) -> None:
        if total_s <= 0:
            raise ValueError(f"timeout_s must be > 0 for {what}, got {total_s}")
        self._end = time.monotonic() + total_s
        self._total = total_s
        self._what = what

    def remaining(self) -> float:
        left = self._end - time.monotonic()
        if left <= 0:
            raise RuntimeBuildTimeout(
                f"{self._what} did not finish within timeout_s={self._total:g}; "
                "raise timeout_s or rerun (completed steps are kept)"
            )
        return left


@contextlib.contextmanager
def build_lock(lock_path: Path, deadline: Deadline) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path``; the kernel drops it if we die."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                # Another process is building the same entry; waiting is the point.
                time.sleep(min(1.0, deadline.remaining()))
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def read_stamp(entry_dir: Path) -> dict[str, Any] | None:
    """The stamp of a complete entry, or None if the entry is missing or unfinished."""
    try:
        data = json.loads((entry_dir / STAMP_NAME).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def write_stamp(entry_dir: Path, data: Mapping[str, Any]) -> None:
    """Write the stamp atomically (temp file + rename), as the very last build step."""
    tmp = entry_dir / f".{STAMP_NAME}.tmp"
    tmp.write_text(json.dumps(dict(data), indent=2, sort_keys=True) + "\n")
    tmp.replace(entry_dir / STAMP_NAME)


def remove_stamp(entry_dir: Path) -> None:
    (entry_dir / STAMP_NAME).unlink(missing_ok=True)


def log_tail(log_path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def run_step(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    log_path: Path,
    deadline: Deadline,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Run one build step, appending its output to ``log_path``; fail with the log's tail."""
    argv = [os.fspath(part) for part in cmd]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a") as log:
        log.write(f"\n$ {' '.join(argv)}\n")
        log.flush()
        try:
            result = subprocess.run(
                argv,
                cwd=cwd,
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=deadline.remaining(),
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeBuildTimeout(
                f"step timed out: {' '.join(argv)}\n(log: {log_path})\n{log_tail(log_path)}"
            ) from exc
        except OSError as exc:
            raise RuntimeBuildError(f"cannot run {argv[0]!r}: {exc}") from exc
    if result.returncode != 0:
        raise RuntimeBuildError(
            f"step failed with exit code {result.returncode}: {' '.join(argv)}\n"
            f"(full log: {log_path})\n{log_tail(log_path)}"
        )
