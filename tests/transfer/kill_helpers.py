"""Start a real, throttled ``python -m budcluster.transfer`` and ``kill -9`` it midway."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from budcluster.transfer.console import THROTTLE_ENV

PART_MIN_BYTES = 256 << 10
PART_MARGIN_BYTES = 1 << 20


@dataclass(frozen=True)
class Interrupted:
    complete: dict[str, tuple[int, int]]
    """Files at their final name when the process died: path -> (inode, mtime_ns)."""
    complete_bytes: int
    part_bytes: dict[str, int]
    """Partial files left behind: path (without .part) -> bytes already there."""


def transfer_command(source_uri: str, dest: Path, *, workers: int = 2) -> list[str]:
    return [
        sys.executable,
        "-m",
        "budcluster.transfer",
        source_uri,
        str(dest),
        "--workers",
        str(workers),
        "--json",
    ]


def run_transfer(source_uri: str, dest: Path, env: Mapping[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        transfer_command(source_uri, dest),
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def start_and_kill(
    source_uri: str,
    dest: Path,
    sizes: Mapping[str, int],
    env: Mapping[str, str],
    *,
    throttle_bps: int = 6 << 20,
    deadline_s: float = 60.0,
) -> Interrupted:
    """Kill the transfer once one file is complete and another is partway (with margin)."""
    process = subprocess.Popen(
        transfer_command(source_uri, dest),
        env={**env, THROTTLE_ENV: str(throttle_bps)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            assert process.poll() is None, "the transfer finished before it could be killed"
            if _midway(dest, sizes):
                break
            time.sleep(0.01)
        else:
            raise AssertionError("the transfer never reached the midpoint")
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    complete = {
        rel: ((dest / rel).stat().st_ino, (dest / rel).stat().st_mtime_ns)
        for rel in sizes
        if (dest / rel).is_file()
    }
    parts = {
        rel: (dest / f"{rel}.part").stat().st_size
        for rel in sizes
        if (dest / f"{rel}.part").is_file()
    }
    return Interrupted(complete, sum(sizes[r] for r in complete), parts)


def _midway(dest: Path, sizes: Mapping[str, int]) -> bool:
    big = [rel for rel, size in sizes.items() if size >= 2 * PART_MARGIN_BYTES]
    if not any((dest / rel).is_file() for rel in big):
        return False
    for rel in big:
        part = dest / f"{rel}.part"
        try:
            size = part.stat().st_size
        except FileNotFoundError:
            continue
        if PART_MIN_BYTES <= size <= sizes[rel] - PART_MARGIN_BYTES:
            return True
    return False
