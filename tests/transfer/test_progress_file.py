"""The progress file ``python -m budcluster.transfer`` keeps in its destination while it
copies: readable midway, gone at the end, and never taken for model content."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from budcluster.transfer import MANIFEST_NAME, build_manifest, read_manifest
from budcluster.transfer.console import PROGRESS_NAME, THROTTLE_ENV, ProgressFile
from budcluster.transfer.engine import transfer_model, verify_destination
from budcluster.transfer.progress import TransferProgress
from budcluster.transfer.uri import parse_source
from tests.transfer.model_files import SMALL_MODEL, write_model


def test_progress_file_is_kept_while_copying_and_removed_at_the_end(tmp_path: Path) -> None:
    source, dest = tmp_path / "model", tmp_path / "dest"
    write_model(source, {"a.bin": 1_500_000, "b.bin": 1_500_000})
    stale = {"files_total": 9, "files_done": 9, "bytes_total": 9, "bytes_done": 9, "seconds": 1}
    dest.mkdir()
    (dest / PROGRESS_NAME).write_text(json.dumps(stale))  # left by a killed run
    process = subprocess.Popen(
        [sys.executable, "-m", "budcluster.transfer", str(source), str(dest), "--json"],
        env={**os.environ, THROTTLE_ENV: "1000000"},  # about three seconds
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    readings: list[dict[str, int] | None] = []
    try:
        while process.poll() is None:
            try:
                reading = json.loads((dest / PROGRESS_NAME).read_text())
            except FileNotFoundError:
                reading = None  # removed at the start or the end, or not written yet
            if reading != stale:
                readings.append(reading)
            elif readings:
                raise AssertionError("the stale file was read after the transfer had started")
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            process.kill()
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert json.loads(stdout)["files"] == 2
    written = [r for r in readings if r is not None]
    midway = [r for r in written if 0 < r["bytes_done"] < r["bytes_total"]]
    assert midway, written
    assert all(r["bytes_total"] == 3_000_000 and r["files_total"] == 2 for r in written)
    assert set(midway[0]) == {"files_total", "files_done", "bytes_total", "bytes_done", "seconds"}
    assert not (dest / PROGRESS_NAME).exists()
    assert not (dest / (PROGRESS_NAME + ".tmp")).exists()


def test_progress_file_never_enters_a_manifest(tmp_path: Path) -> None:
    source, dest = tmp_path / "model", tmp_path / "dest"
    write_model(source, SMALL_MODEL)
    first = transfer_model(parse_source(str(source)), dest)
    ProgressFile(dest)(TransferProgress(5, 2, 1000, 400, 1.0))
    (dest / (PROGRESS_NAME + ".tmp")).write_text("{")  # a write cut short
    assert (dest / PROGRESS_NAME).is_file()
    listed = [entry.path for entry in build_manifest(dest).files]
    assert sorted(listed) == sorted(SMALL_MODEL)
    assert verify_destination(dest) == first.manifest == read_manifest(dest)
    again = transfer_model(parse_source(str(source)), dest)
    assert not again.changed and again.bytes_copied == 0
    # A staged directory used as a source does not pass the file on.
    onward = transfer_model(parse_source(str(dest)), tmp_path / "onward")
    assert onward.manifest == first.manifest
    assert not (tmp_path / "onward" / PROGRESS_NAME).exists()
    assert (tmp_path / "onward" / MANIFEST_NAME).is_file()


def test_a_progress_write_that_fails_is_skipped(tmp_path: Path) -> None:
    missing = tmp_path / "not-created"
    writer = ProgressFile(missing)
    writer(TransferProgress(1, 0, 10, 5, 0.5))  # no directory: nothing written, no error
    writer.remove()
    assert not missing.exists()


def test_progress_writes_come_at_most_once_an_interval(tmp_path: Path) -> None:
    writer = ProgressFile(tmp_path, interval_s=60)
    writer(TransferProgress(2, 0, 10, 1, 0.1))
    writer(TransferProgress(2, 1, 10, 9, 0.2))
    assert json.loads((tmp_path / PROGRESS_NAME).read_text())["bytes_done"] == 1
