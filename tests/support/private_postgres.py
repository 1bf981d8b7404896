"""A Postgres cluster of the test's own, to stop, crash and restart at will.

The shared server on 5432 serves other people; fault tests never touch it. This one is
initialised in a fresh directory under /tmp (pytest's tmp_path is 0700, and as root the
server runs as ``postgres``, which Postgres requires; as any other user it runs as that
user), listens on a free TCP port on 127.0.0.1 only, with no Unix socket and fsync off,
and is removed when the test module ends.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

_SERVER_USER = "postgres"


def _binaries() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivatePostgres:
    """One cluster: ``start``, ``stop`` (``fast`` or ``immediate``, a crash), ``url``."""

    def __init__(self, bin_dir: Path, data_dir: Path, port: int) -> None:
        self.bin_dir = bin_dir
        self.data_dir = data_dir
        self.port = port
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"

    def _as_server_user(self, *argv: str, timeout_s: float = 60) -> None:
        # Postgres refuses to run as root; any other user runs it as itself.
        prefix = ["runuser", "-u", _SERVER_USER, "--"] if os.geteuid() == 0 else []
        completed = subprocess.run(
            [*prefix, *argv],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv)} exited {completed.returncode}: "
                f"{completed.stderr.strip() or completed.stdout.strip()}"
            )

    def init(self) -> None:
        self._as_server_user(
            str(self.bin_dir / "initdb"),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-D",
            str(self.data_dir),
        )

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            "-c unix_socket_directories='' -c fsync=off"
        )
        log = self.data_dir / "server.log"
        self._as_server_user(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-l",
            str(log),
            "-w",
            "-t",
            "30",
            "-o",
            options,
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """``fast``: the server ends every session and shuts down cleanly; ``immediate``:
        it quits at once, as in a crash, and recovers from its log at the next start."""
        self._as_server_user(
            str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"
        )

    def is_running(self) -> bool:
        return (self.data_dir / "postmaster.pid").exists()


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started cluster, stopped and deleted on exit; skips where it cannot be made."""
    bin_dir = _binaries()
    if bin_dir is None:
        pytest.skip("no /usr/lib/postgresql/*/bin/initdb: install postgresql")
    as_root = os.geteuid() == 0
    if as_root and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser to start Postgres as postgres")
    root = Path(tempfile.mkdtemp(prefix="budcluster-private-pg-", dir="/tmp"))
    if as_root:
        shutil.chown(root, user=_SERVER_USER)
    server = PrivatePostgres(bin_dir, root / "data", _free_port())
    try:
        server.init()
        server.start()
        yield server
    finally:
        if server.is_running():
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
