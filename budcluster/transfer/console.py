"""The terminal side of a transfer: a progress bar on stderr, results as text or JSON.

Shared by ``budcluster model transfer`` and ``python -m budcluster.transfer`` (the entry
the stage_model playbook runs on each host).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from budcluster.errors import BudClusterError, TemporaryError
from budcluster.targets.base import TransferProgress
from budcluster.transfer.engine import TransferResult, transfer_model
from budcluster.transfer.uri import parse_source

THROTTLE_ENV = "BUDCLUSTER_TRANSFER_THROTTLE_BPS"
"""Test-only: caps the copy rate so a test can kill a transfer midway."""

EXIT_OK = 0
EXIT_PERMANENT = 2
EXIT_TEMPORARY = 75  # EX_TEMPFAIL: the caller may retry, and the retry resumes


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"  # pragma: no cover - the loop always returns


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
) -> int:
    """Run one transfer for a command line; returns the process exit status.

    Exit 0 on success, 2 when retrying cannot help (bad URI, unsafe path, mismatch),
    75 when it may (the source did not answer); a rerun resumes where this one stopped.
    """
    environ = os.environ if env is None else env
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    throttle = float(environ[THROTTLE_ENV]) if environ.get(THROTTLE_ENV) else None
    bar = ProgressBar(err) if err.isatty() else None
    try:
        source = parse_source(source_uri, environ)
        result = transfer_model(
            source, dest, workers=workers, progress=bar, throttle_bytes_per_s=throttle
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
