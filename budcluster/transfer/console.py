"""The terminal side of a transfer: a progress bar on stderr, results as text or JSON, and
the progress file a remote caller polls.

Shared by ``budcluster model transfer`` and ``python -m budcluster.transfer`` (the entry
the stage_model playbook runs on each host).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from budcluster.errors import BudClusterError, TemporaryError
from budcluster.transfer.engine import TransferResult, transfer_model
from budcluster.transfer.errors import UnsafeModelPath
from budcluster.transfer.paths import RESERVED_PREFIX, open_no_follow
from budcluster.transfer.progress import ProgressCallback, TransferProgress, human_bytes
from budcluster.transfer.uri import parse_source

THROTTLE_ENV = "BUDCLUSTER_TRANSFER_THROTTLE_BPS"
"""Test-only: caps the copy rate so a test can kill a transfer midway."""

PROGRESS_NAME = RESERVED_PREFIX + "progress.json"
"""How far a running transfer has got, kept in its destination for the hosts target to poll.
The reserved prefix keeps it (and its ``.tmp``) out of listings, manifests and verification."""

EXIT_OK = 0
EXIT_PERMANENT = 2
EXIT_TEMPORARY = 75  # EX_TEMPFAIL: the caller may retry, and the retry resumes


class ProgressBar:
    """Redraws one line on a terminal: percentage, bytes, files and rate."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self._stream = stream
        self._width = width

    def __call__(self, progress: TransferProgress) -> None:
        filled = int(self._width * progress.fraction)
        rate = progress.bytes_done / progress.elapsed_s if progress.elapsed_s > 0 else 0.0
        line = (
            f"\r[{'#' * filled}{'.' * (self._width - filled)}] {progress.fraction:6.1%} "
            f"{human_bytes(progress.bytes_done)}/{human_bytes(progress.bytes_total)} "
            f"files {progress.files_done}/{progress.files_total} {human_bytes(rate)}/s"
        )
        self._stream.write(line)
        self._stream.flush()

    def finish(self) -> None:
        self._stream.write("\n")
        self._stream.flush()


class ProgressFile:
    """Keeps ``<dest>/.budcluster-progress.json`` current while a transfer runs.

    Each write replaces the file whole (temporary file, then rename), so a reader never sees
    half of one; writes come at most every ``interval_s``. A failed write is skipped: the
    file is a courtesy to whoever watches, and must never fail the copy.
    """

    def __init__(self, dest: Path, *, interval_s: float = 1.0) -> None:
        self.path = dest / PROGRESS_NAME
        self._temporary = dest / (PROGRESS_NAME + ".tmp")
        self._interval_s = interval_s
        self._last_write: float | None = None

    def __call__(self, progress: TransferProgress) -> None:
        now = time.monotonic()
        if self._last_write is not None and now - self._last_write < self._interval_s:
            return
        self._last_write = now
        body = {
            "files_done": progress.files_done,
            "files_total": progress.files_total,
            "bytes_done": progress.bytes_done,
            "bytes_total": progress.bytes_total,
            "seconds": round(progress.elapsed_s, 3),
        }
        with contextlib.suppress(OSError, UnsafeModelPath):
            fd = open_no_follow(self._temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            with os.fdopen(fd, "w") as handle:
                handle.write(json.dumps(body) + "\n")
            self._temporary.replace(self.path)

    def remove(self) -> None:
        for path in (self.path, self._temporary):
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)


def _fan_out(listeners: list[ProgressCallback]) -> ProgressCallback | None:
    if not listeners:
        return None

    def report(progress: TransferProgress) -> None:
        for listener in listeners:
            listener(progress)

    return report


def describe(result: TransferResult) -> str:
    return (
        f"{result.source_uri} -> {result.dest}: {result.files} files, "
        f"{human_bytes(result.bytes_total)} verified; copied {result.files_copied} files "
        f"({human_bytes(result.bytes_copied)}), {result.files_skipped} already in place; "
        f"{result.seconds:.2f} s, {human_bytes(result.throughput_bytes_per_s)}/s; "
        f"manifest sha256 {result.manifest.sha256()}"
    )


def read_credentials(stream: TextIO) -> dict[str, str]:
    """The variables a source needs, from a JSON object of names to strings on ``stream``.

    Raises ValueError with one line that never quotes the input (it holds secrets).
    """
    try:
        data = json.loads(stream.read() or "{}")
    except ValueError:
        raise ValueError(
            "--credentials-stdin: stdin is not JSON; send an object such as "
            '{"AWS_ACCESS_KEY_ID": "...", "AWS_SECRET_ACCESS_KEY": "..."}'
        ) from None  # the parser's message quotes the text, which holds secrets
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise ValueError("--credentials-stdin: stdin must hold one JSON object of names to strings")
    return dict(data)


def run_transfer_command(
    source_uri: str,
    dest: Path,
    *,
    workers: int,
    as_json: bool,
    env: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    progress: ProgressCallback | None = None,
) -> int:
    """Run one transfer for a command line; returns the process exit status.

    Exit 0 on success, 2 when retrying cannot help (bad URI, unsafe path, mismatch),
    75 when it may (the source did not answer); a rerun resumes where this one stopped.
    ``progress`` hears what the bar shows (the bar is drawn only on a terminal).
    """
    environ = os.environ if env is None else env
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    throttle = float(environ[THROTTLE_ENV]) if environ.get(THROTTLE_ENV) else None
    bar = ProgressBar(err) if err.isatty() else None
    try:
        source = parse_source(source_uri, environ)
        listeners = [listener for listener in (bar, progress) if listener is not None]
        result = transfer_model(
            source,
            dest,
            workers=workers,
            progress=_fan_out(listeners),
            throttle_bytes_per_s=throttle,
        )
    except BudClusterError as exc:
        if bar is not None:
            bar.finish()
        retryable = isinstance(exc, TemporaryError)
        if as_json:
            error = {"error": type(exc).__name__, "message": str(exc), "retryable": retryable}
            out.write(json.dumps(error) + "\n")
        err.write(f"error: {exc}\n")
        return EXIT_TEMPORARY if retryable else EXIT_PERMANENT
    if bar is not None:
        bar.finish()
    out.write((json.dumps(result.to_dict()) if as_json else describe(result)) + "\n")
    return EXIT_OK
