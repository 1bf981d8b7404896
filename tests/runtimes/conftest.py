"""Shared helpers: a free port, a supervised server process, HTTP calls with timeouts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from budcluster.demo_model import DemoModel, build_demo_model


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_json(
    url: str, payload: dict[str, Any] | None = None, timeout: float = 60.0
) -> tuple[int, Any]:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read().decode()
            return response.status, json.loads(body) if body.strip().startswith(
                ("{", "[")
            ) else body
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    started_s: float

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def wait_healthy(server: RunningServer, budget_s: float) -> float:
    """Poll /health until 200; return seconds from spawn. Fails with the log tail."""
    deadline = time.monotonic() + budget_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"server exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            status, _ = http_json(f"{server.base_url}/health", timeout=5)
            if status == 200:
                return time.monotonic() - server.started_s
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.25)
    pytest.fail(f"server not healthy within {budget_s:g} s:\n{server.log_tail()}")


@contextmanager
def running_server(
    cmd: Sequence[str], port: int, log_path: Path, env: dict[str, str] | None = None
) -> Iterator[RunningServer]:
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(cmd),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # its own group, so workers it forks die with it
        )
    server = RunningServer(process, f"http://127.0.0.1:{port}", log_path, time.monotonic())
    try:
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@pytest.fixture(scope="session")
def demo_hf(tmp_path_factory: pytest.TempPathFactory) -> DemoModel:
    """The tiny demo model, HF files only (no runtime cache needed)."""
    return build_demo_model(tmp_path_factory.mktemp("demo-hf") / "demo-tiny", "tiny", gguf=False)


@pytest.fixture(scope="session")
def demo_with_gguf(tmp_path_factory: pytest.TempPathFactory) -> DemoModel:
    """The tiny demo model with its GGUF (builds the converter cache on first use)."""
    return build_demo_model(tmp_path_factory.mktemp("demo-gguf") / "demo-tiny", "tiny", gguf=True)
