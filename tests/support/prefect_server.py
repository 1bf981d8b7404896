"""A real `prefect server start` in a subprocess, for tests that need the Prefect API."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PREFECT = str(Path(sys.executable).with_name("prefect"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class PrefectServer:
    api_url: str
    home: Path
    database_path: Path | None
    log_path: Path

    @property
    def ui_url(self) -> str:
        return self.api_url.removesuffix("/api")

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a client process that talks to this server."""
        env = dict(os.environ)
        env.update(
            PREFECT_API_URL=self.api_url,
            PREFECT_HOME=str(self.home),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_LOGGING_LEVEL="DEBUG",
        )
        env.update(extra)
        return env


@contextmanager
def running_prefect_server(
    workdir: Path,
    database_url: str | None = None,
    timeout_s: float = 90.0,
    *,
    ui: bool = False,
    extra_env: dict[str, str] | None = None,
) -> Iterator[PrefectServer]:
    """``ui=True`` serves the Prefect UI on the same port (at ``ui_url``)."""
    home = workdir / "prefect-home"
    home.mkdir(parents=True, exist_ok=True)
    db_path = None
    if database_url is None:
        db_path = workdir / "prefect.db"
        database_url = f"sqlite+aiosqlite:///{db_path}"
    port = free_port()
    log_path = workdir / "prefect-server.log"
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_DATABASE_CONNECTION_URL=database_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_UI_ENABLED="true" if ui else "false",
        PREFECT_LOGGING_SERVER_LEVEL="DEBUG",
    )
    if ui:
        # The UI's JavaScript calls the API at this URL; say it plainly.
        env["PREFECT_UI_API_URL"] = f"http://127.0.0.1:{port}/api"
    env.update(extra_env or {})
    env.pop("PREFECT_API_URL", None)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    api_url = f"http://127.0.0.1:{port}/api"
    try:
        _wait_healthy(api_url, process, log_path, timeout_s)
        yield PrefectServer(api_url, home, db_path, log_path)
    finally:
        _drain_client_services()
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _wait_healthy(
    api_url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prefect server exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"prefect server not healthy after {timeout_s}s:\n{log.read_text()[-3000:]}")


def _drain_client_services() -> None:
    """Send this process's queued events and logs while the server still runs.

    Flows run in the test process queue events and logs for background workers; if the
    server stops first, those workers retry against it at interpreter exit and the test
    process never ends.
    """
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for service in (APILogWorker, EventsWorker):
        service.drain_all(timeout=15, at_exit=False)
