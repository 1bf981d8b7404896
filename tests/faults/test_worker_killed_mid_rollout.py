"""``kill -9`` of the process running deploy-model right after the runtime started.

The killed run leaves a runtime running, its deployment in ``deploying``, a ``started``
rollout attempt, a leased rollout slot and its private secrets directory. The next run of
the same deployment, in another process, waits for the lease to run out, undoes what the
dead run started (from the store's record), sweeps the stale secrets and deploys: one
runtime, the deployment ``ready``, every attempt ended. While the first run holds the
slot, a second one with ``if_busy=fail`` is refused at once and writes nothing.

The rerun is reconcile-deployments, as a scheduled reconcile would meet it: while the
dead run's lease lasts it leaves the deployment to that run (WAIT); once the slot is free
it deploys, and deploy-model repairs first.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL
from sqlalchemy import select

from budcluster.job_requests import DeployModelRequest, TeardownRequest
from budcluster.store import Store
from budcluster.store.models import Deployment, RolloutAttempt
from tasks.exclusive import RolloutInProgress, slot_is_held
from tests.e2e_hosts.conftest import INVENTORY
from tests.support.flow_environment import flow_environment

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PROJECT = Path(__file__).resolve().parents[2]
PORT = 18451
RUN_IN_CHILD = """
import json, sys
from budcluster.job_requests import DeployModelRequest
from flows.deploy_model import deploy_model
deploy_model(DeployModelRequest.model_validate(json.loads(sys.argv[1])))
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    from blocks.hosts import HostInventory
    from budcluster.demo_model import build_demo_model
    from budcluster.job_requests import RegisterClusterRequest
    from flows.register_cluster import register_cluster

    root = tmp_path_factory.mktemp("killed-rollout")
    settings = {
        "BUDCLUSTER_HOSTS_STATE_DIR": str(root / "host-state"),
        "BUDCLUSTER_SECRETS_DIR": str(root / "secrets"),
        "BUDCLUSTER_ROLLOUT_LEASE_S": "60",
    }
    with flow_environment(root, **settings) as database_url:
        build_demo_model(root / "models" / "demo-tiny", "tiny", gguf=True)
        HostInventory.from_inventory("this-machine", INVENTORY).save("this-machine")
        register_cluster(
            RegisterClusterRequest(name="this-machine", credentials_block="this-machine")
        )
        yield root, database_url


def _request(root: Path) -> DeployModelRequest:
    return DeployModelRequest.model_validate(
        {
            "name": "survivor",
            "cluster": "this-machine",
            "model": {"uri": str(root / "models" / "demo-tiny")},
            "device": "cpu",
            "max_model_len": 512,
            "port": PORT,
            "ready_timeout_s": 120,
            "if_busy": "wait",
        }
    )


def _write_catalogue(root: Path, request: DeployModelRequest) -> Path:
    """deployments.yaml with one entry that stands for ``request`` (same spec hash)."""
    entry = {
        "name": request.name,
        "cluster": request.cluster,
        "model": {"uri": request.model.uri},
        "hardware": {"device": request.device},
        "runtime": {
            "max_model_len": request.max_model_len,
            "port": request.port,
            "ready_timeout_s": request.ready_timeout_s,
        },
    }
    path = root / "deployments.yaml"
    path.write_text(json.dumps({"deployments": [entry]}))  # JSON is YAML
    return path


def _runtimes() -> list[int]:
    found = subprocess.run(
        ["pgrep", "-f", f"llama-server.*--port {PORT}"], capture_output=True, text=True, timeout=10
    ).stdout.split()
    return sorted(int(pid) for pid in found)


def _attempts(database_url: str) -> list[tuple[str, str | None]]:
    store = Store(database_url)
    try:
        with store.session() as session:
            rows = session.scalars(select(RolloutAttempt).order_by(RolloutAttempt.id))
            return [(row.state.value, row.detail) for row in rows]
    finally:
        store.dispose()


def _status(database_url: str) -> str:
    store = Store(database_url)
    try:
        with store.session() as session:
            row = session.scalar(select(Deployment).where(Deployment.name == "survivor"))
            assert row is not None
            return row.status.value
    finally:
        store.dispose()


def test_the_rerun_undoes_what_the_killed_run_started_and_converges(
    workdir: tuple[Path, str],
) -> None:
    from budcluster.catalogue import load_catalogue
    from flows.deploy_model import deploy_model
    from flows.reconcile_deployments import reconcile_deployments
    from flows.teardown_deployment import teardown_deployment

    root, database_url = workdir
    request = _request(root)
    catalogue = _write_catalogue(root, request)
    # The entry must be the same rollout as the killed one, or reconcile would redeploy
    # for a changed spec instead of repairing a dead run.
    assert load_catalogue(catalogue).deployments[0].spec_hash() == request.spec_hash()
    env = dict(os.environ)
    env.update(
        PREFECT_API_URL=str(PREFECT_API_URL.value()),
        BUDCLUSTER_FAILPOINTS="after-roll-out=pause:600",
        PYTHONPATH=str(PROJECT),
    )
    child = subprocess.Popen(
        [sys.executable, "-c", RUN_IN_CHILD, request.model_dump_json()],
        cwd=PROJECT,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not (
            _attempts(database_url) and _runtimes() and child.poll() is None
        ):
            assert child.poll() is None, child.communicate()[0].decode()[-3000:]
            time.sleep(1)
        assert _attempts(database_url) == [("started", None)]
        orphan = _runtimes()
        assert len(orphan) == 1, orphan
        secrets_before = {p.name for p in (root / "secrets").iterdir()}
        assert any(name.startswith(f"{child.pid}-") for name in secrets_before), secrets_before
        # A second rollout of the same deployment while the first holds the slot: refused
        # at once with if_busy=fail, naming the limit, and nothing of it is written.
        busy = request.model_copy(update={"if_busy": "fail"})
        with pytest.raises(RolloutInProgress, match="rollout-this-machine-survivor"):
            deploy_model(busy)
        assert _attempts(database_url) == [("started", None)]
        assert _runtimes() == orphan
        assert slot_is_held("this-machine", "survivor") is True
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    killed_at = time.monotonic()
    # What the kill left: the runtime still serves, the deployment says deploying.
    assert _runtimes() == orphan
    assert _status(database_url) == "deploying"

    # Within the lease reconcile cannot tell a dead run from a slow one: it waits.
    early = reconcile_deployments(str(catalogue), check_runtimes=False, dry_run=True)
    assert early["this-machine/survivor"]["action"] == "wait", early
    # The slot frees when the killed run's lease runs out.
    while slot_is_held("this-machine", "survivor") and time.monotonic() - killed_at < 150:
        time.sleep(2)
    freed = time.monotonic() - killed_at
    assert slot_is_held("this-machine", "survivor") is False
    outcome = reconcile_deployments(str(catalogue), check_runtimes=False)
    waited = time.monotonic() - killed_at
    print(f"slot freed {freed:.1f} s after the kill (lease 60 s); converged after {waited:.1f} s")

    try:
        assert outcome["this-machine/survivor"]["action"] == "deploy", outcome
        assert outcome["this-machine/survivor"]["result"] == "Completed", outcome
        running = _runtimes()
        assert len(running) == 1 and running != orphan, (orphan, running)
        assert _status(database_url) == "ready"
        attempts = _attempts(database_url)
        assert [state for state, _ in attempts] == ["undone", "finished"], attempts
        assert not any(p.name.startswith(f"{child.pid}-") for p in (root / "secrets").iterdir())
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/health", timeout=10) as reply:
            assert json.loads(reply.read()).get("status") == "ok"
    finally:
        teardown_deployment(TeardownRequest(cluster="this-machine", deployment="survivor"))
    assert _runtimes() == []
