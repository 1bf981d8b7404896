"""The platform for the end-to-end tests: a real Prefect server on Postgres, every
deployment of prefect.yaml, and a process worker, shared by the whole module.

Two throwaway Postgres databases: one for the Prefect server
(postgresql+asyncpg://postgres@127.0.0.1:5432/<db>), one for the results store. Both are
dropped at the end. The worker is stopped BEFORE the server: a worker whose server is gone
hangs on SIGTERM.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.moto_server import PLUGIN_MIRROR, MotoServer, running_moto_server
from tests.support.prefect_server import PREFECT, PrefectServer, running_prefect_server

PROJECT = Path(__file__).resolve().parents[2]
ADMIN_URL = os.environ.get(
    "BUDCLUSTER_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
POOL = "budcluster-process"
# Debian's Chromium, driven by Playwright (no browser download).
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
KUBERNETES_POOL = "budcluster-kubernetes"
# Where CI keeps files after the run (screenshots, reports of the e2e runs).
ARTIFACTS = Path(
    os.environ.get("BUDCLUSTER_CI_ARTIFACTS", PROJECT / "benchmarks_reports/ci-artifacts")
)


@dataclass
class Platform:
    server: PrefectServer
    store_url: str
    reports_dir: Path
    workdir: Path
    worker_log: Path
    moto: MotoServer
    """moto's EC2/IAM/EKS/S3, which the worker's Terraform runs are pointed at."""

    def env(self) -> dict[str, str]:
        return self.server.env(
            # The operator's setting that sends Terraform to moto instead of AWS.
            AWS_ENDPOINT_URL=self.moto.endpoint,
            BUDCLUSTER_TERRAFORM_ENV_PASSTHROUGH="AWS_ENDPOINT_URL",
            BUDCLUSTER_TERRAFORM_PLUGIN_MIRROR=str(PLUGIN_MIRROR),
            BUDCLUSTER_DATABASE_URL=self.store_url,
            BUDCLUSTER_REPORTS_DIR=str(self.reports_dir),
            BUDCLUSTER_DATA_DIR=str(self.workdir / "data"),
            BUDCLUSTER_KEYS_DIR=str(self.workdir / "crypto-keys"),
            BUDCLUSTER_HOSTS_STATE_DIR=str(self.workdir / "host-state"),
            PREFECT_LOGGING_LEVEL="INFO",
        )

    def prefect(self, *args: str, timeout_s: float = 120, check: bool = True) -> str:
        result = subprocess.run(
            [PREFECT, *args],
            cwd=PROJECT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        output = result.stdout + result.stderr
        if check and result.returncode != 0:
            raise AssertionError(f"prefect {' '.join(args)} exited {result.returncode}:\n{output}")
        return output

    def api(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.server.api_url}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def deployment(self, flow: str, name: str) -> dict[str, Any]:
        return self.api("GET", f"/deployments/name/{flow}/{name}")  # type: ignore[no-any-return]

    def flow_runs(self, deployment_id: str) -> list[dict[str, Any]]:
        return self.api(  # type: ignore[no-any-return]
            "POST",
            "/flow_runs/filter",
            {"deployments": {"id": {"any_": [deployment_id]}}, "sort": "EXPECTED_START_TIME_DESC"},
        )

    def wait_for_run(self, run_id: str, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            run = self.api("GET", f"/flow_runs/{run_id}")
            if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                return run  # type: ignore[no-any-return]
            time.sleep(1)
        raise AssertionError(f"flow run {run_id} not finished after {timeout_s}s:\n{self.tail()}")

    def tail(self) -> str:
        return self.worker_log.read_text(errors="replace")[-4000:]


def _admin():  # type: ignore[no-untyped-def]
    from sqlalchemy import create_engine

    return create_engine(
        ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )


@pytest.fixture(scope="package")
def databases() -> Iterator[dict[str, str]]:
    """Two empty databases: ``prefect`` (asyncpg URL) and ``store`` (psycopg2 URL)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    names = {kind: f"budcluster_e2e_{kind}_{secrets.token_hex(4)}" for kind in ("prefect", "store")}
    admin = _admin()
    try:
        with admin.connect() as connection:
            for name in names.values():
                connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except OperationalError as exc:
        pytest.fail(f"Postgres is unreachable at {ADMIN_URL}: {exc.orig}", pytrace=False)
    base = make_url(ADMIN_URL)
    urls = {
        "prefect": base.set(drivername="postgresql+asyncpg", database=names["prefect"]),
        "store": base.set(database=names["store"]),
    }
    try:
        yield {kind: url.render_as_string(hide_password=False) for kind, url in urls.items()}
    finally:
        with admin.connect() as connection:
            for name in names.values():
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="package")
def platform(
    databases: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    from budcluster.store.migrate import upgrade

    upgrade(databases["store"])
    workdir = tmp_path_factory.mktemp("e2e-prefect")
    print(f"\ne2e workdir (server and worker logs): {workdir}")
    with (
        running_moto_server(workdir / "moto.log") as moto,
        running_prefect_server(workdir, databases["prefect"], ui=True) as server,
    ):
        platform = Platform(
            server, databases["store"], workdir / "reports", workdir, workdir / "worker.log", moto
        )
        platform.prefect("work-pool", "create", POOL, "--type", "process")
        # Holding the Kubernetes variants costs nothing without a Kubernetes worker. The
        # pool is made the way docs/operations.md says: default template + prefect.yaml's part.
        default = workdir / "kubernetes-default.json"
        default.write_text(
            platform.prefect("work-pool", "get-default-base-job-template", "--type", "kubernetes"),
            encoding="utf-8",
        )
        template = workdir / "kubernetes-pool.json"
        merged = subprocess.run(
            [sys.executable, "-m", "budcluster.catalogue.kubernetes_pool", str(default), "prefect.yaml"],
            cwd=PROJECT, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        template.write_text(merged.stdout, encoding="utf-8")
        platform.prefect(
            "work-pool", "create", KUBERNETES_POOL, "--type", "kubernetes",
            "--base-job-template", str(template),
        )  # fmt: skip
        platform.prefect("--no-prompt", "deploy", "--all", timeout_s=300)
        worker = _start_worker(platform)
        try:
            yield platform
        finally:
            _stop(worker)


def _start_worker(platform: Platform) -> subprocess.Popen[bytes]:
    env = platform.env()
    # Poll often: the tests wait on the worker, not on a production-friendly interval.
    env.update(PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_WORKER_PREFETCH_SECONDS="5")
    # Only the worker has it: set while `prefect deploy` runs, it would be baked in.
    env["BUDCLUSTER_PROJECT_DIR"] = str(PROJECT)
    with platform.worker_log.open("wb") as log:
        worker = subprocess.Popen(
            [PREFECT, "worker", "start", "--pool", POOL, "--name", "e2e-worker"],
            cwd=PROJECT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited:\n{platform.tail()}")
        workers = platform.api("POST", f"/work_pools/{POOL}/workers/filter", {})
        if any(w["name"] == "e2e-worker" and w["status"] == "ONLINE" for w in workers):
            return worker
        time.sleep(0.5)
    _stop(worker)
    raise RuntimeError(f"the worker did not come online:\n{platform.tail()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
