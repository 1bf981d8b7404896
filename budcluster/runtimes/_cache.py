"""Cache plumbing shared by the runtime builders: :func:`cached_install` and its parts.

Each runtime (llama-server, its sources, the vLLM CPU venv, the GGUF converter venv) is one
entry under the cache directory, built once per machine by :func:`cached_install`: check,
take the entry's cross-process lock, check again, build with progress lines, stamp. An
entry is complete only when its stamp exists: the stamp is written last and atomically,
so a build that was killed half-way leaves no stamp and is redone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from budcluster.runtimes.errors import RuntimeBuildError, RuntimeBuildTimeout
from budcluster.runtimes.progress import BuildProgress, ProgressSink
from budcluster.settings import get_settings

STAMP_NAME = "stamp.json"
_LOG_TAIL_LINES = 40
_POLL_S = 1.0
"""How often a running step's log is read for progress."""

T = TypeVar("T")


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
def build_lock(
    lock_path: Path, deadline: Deadline, on_wait: Callable[[], None] | None = None
) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path``; the kernel drops it if we die.

    ``on_wait`` is called once if another process holds it.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                # Another process is building the same entry; waiting is the point.
                if on_wait is not None:
                    on_wait()
                    on_wait = None
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
    progress: BuildProgress | None = None,
) -> None:
    """Run one build step, appending its output to ``log_path``; fail with the log's tail.

    The step writes straight to the log; ``progress`` is fed the log's new lines as they
    appear, so the step runs the same with or without it.
    """
    argv = [os.fspath(part) for part in cmd]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a") as log:
        log.write(f"\n$ {' '.join(argv)}\n")
        log.flush()
        follow = _LogFollower(log_path, log.tell(), progress)
        timeout_s = deadline.remaining()
        try:
            process = subprocess.Popen(
                argv,
                cwd=cwd,
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        except OSError as exc:
            raise RuntimeBuildError(f"cannot run {argv[0]!r}: {exc}") from exc
        try:
            returncode = _wait(process, timeout_s, follow)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeBuildTimeout(
                f"step timed out: {' '.join(argv)}\n(log: {log_path})\n{log_tail(log_path)}"
            ) from exc
    if returncode != 0:
        raise RuntimeBuildError(
            f"step failed with exit code {returncode}: {' '.join(argv)}\n"
            f"(full log: {log_path})\n{log_tail(log_path)}"
        )


def _wait(process: subprocess.Popen[bytes], timeout_s: float, follow: _LogFollower) -> int:
    """``process.wait`` within ``timeout_s``, reading its log meanwhile; kill it on any
    exception (a timeout, Ctrl-C), as ``subprocess.run`` does."""
    end = time.monotonic() + timeout_s
    try:
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(process.args, timeout_s)
            try:
                return process.wait(timeout=min(left, _POLL_S))
            except subprocess.TimeoutExpired:
                follow()
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        follow()


class _LogFollower:
    """Feeds the complete lines a step appended to its log since ``offset`` to ``progress``."""

    def __init__(self, log_path: Path, offset: int, progress: BuildProgress | None) -> None:
        self._path = log_path
        self._offset = offset
        self._progress = progress
        self._partial = b""

    def __call__(self) -> None:
        if self._progress is None:
            return
        try:
            with self._path.open("rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except OSError:
            return
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            self._progress.line(line.decode("utf-8", errors="replace"))
        self._progress.tick()


def stderr_lines(text: str) -> None:
    """The default progress sink: one line on stderr."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


@dataclass(frozen=True)
class Build:
    """One build of a cache entry, under its lock: the time budget, the log, the progress."""

    deadline: Deadline
    log_path: Path
    progress: BuildProgress
    started: float = dataclasses.field(default_factory=time.monotonic)

    def run(
        self,
        step: str,
        cmd: Sequence[str | os.PathLike[str]],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Announce ``step``, then run ``cmd`` as one step of the build."""
        self.progress.step(step)
        run_step(
            cmd,
            log_path=self.log_path,
            deadline=self.deadline,
            cwd=cwd,
            env=env,
            progress=self.progress,
        )

    def elapsed_s(self) -> float:
        return round(time.monotonic() - self.started, 1)

    def logging_to(self, log_path: Path) -> Build:
        return dataclasses.replace(self, log_path=log_path)


def cached_install(
    entry: Path,
    *,
    ready: Callable[[], T | None],
    install: Callable[[Build], tuple[T, Mapping[str, Any]]],
    what: str,
    name: str,
    timeout_s: float,
    log_name: str = "install.log",
    stamp_dir: Path | None = None,
    progress: ProgressSink | None = None,
) -> T:
    """``ready()`` if the entry is complete, else build it once and return what it built.

    One process builds under ``entry/.lock``; the others wait, then find it ready.
    ``install`` returns its result and the stamp's fields; the stamp (in ``stamp_dir``,
    default ``entry``) is removed before it runs and written after it returns. Progress
    lines go to ``progress`` (default: stderr) prefixed with ``name``; ``what`` names the
    build in a timeout error, and ``timeout_s`` bounds the wait for the lock and the build.
    """
    found = ready()
    if found is not None:
        return found
    deadline = Deadline(timeout_s, what)
    reporter = BuildProgress(name, progress or stderr_lines)
    stamp_at = stamp_dir if stamp_dir is not None else entry
    with build_lock(
        entry / ".lock", deadline, on_wait=lambda: reporter.waiting("another process's build")
    ):
        found = ready()
        if found is None:
            remove_stamp(stamp_at)
            found, stamp = install(Build(deadline, entry / log_name, reporter))
            write_stamp(stamp_at, stamp)
    reporter.finished()
    return found
