"""A rollback that itself fails (issue #15, fault 3) on a hosts cluster: the host is
unreachable during the undo.

deploy-model runs for real against the SSH test host (Debian's sshd in its own root and
network namespace, :mod:`tests.support.ssh_host`): it stages the demo model and starts
llama-server there through Ansible. Right after the runtime started (the ``after-roll-out``
failpoint holds the run a few seconds), the host's link goes down: packets to it go
nowhere, and ssh times out. The health wait cannot reach the host, so the rollout fails;
the undo cannot reach it either. The run fails; its
attempt ends ``undo_failed`` with the undo's error; the deployment ends ``failed`` with
both errors and the fix; llama-server still runs on the host. Once the link is back,
teardown-deployment stops it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.support.flow_environment import flow_environment
from tests.support.ssh_host import SshHost, ssh_host

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
CLUSTER = "unreachable-host"
NAME = "undo-unreachable"
PORT = 18471
PAUSE_S = 5


@dataclass(frozen=True)
class Job:
    host: SshHost
    model_dir: Path
    database_url: str


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Job]:
    from blocks.hosts import HostInventory
    from budcluster.demo_model import build_demo_model
    from budcluster.job_requests import RegisterClusterRequest
    from flows.register_cluster import register_cluster

    with ssh_host(tmp_path_factory.mktemp("unreachable-host")) as host:
        if host.link is None:
            pytest.skip("cutting the host off needs a network namespace on this machine")
        workdir = tmp_path_factory.mktemp("undo-over-ssh")
        with flow_environment(workdir, BUDCLUSTER_HOSTS_STATE_DIR="~/.budcluster") as url:
            model = build_demo_model(workdir / "models" / "demo-tiny", "tiny", gguf=True)
            HostInventory.from_inventory(
                CLUSTER,
                host.inventory(),
                ssh_private_key=host.private_key,
                known_hosts=host.known_hosts,
            ).save(CLUSTER)
            register_cluster(RegisterClusterRequest(name=CLUSTER, credentials_block=CLUSTER))
            yield Job(host, model.path, url)


class _LogLine(logging.Handler):
    """Sets ``seen`` once a record whose message contains ``text`` is logged."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen.set()


def _llama_servers(host: SshHost) -> list[int]:
    return sorted(
        pid for pid, argv in host.processes().items() if argv and argv[0].endswith("/llama-server")
    )


def _recorded(database_url: str) -> tuple[str, str, list[tuple[str, str]]]:
    from budcluster.store import Store
    from budcluster.store.models import Deployment, RolloutAttempt

    store = Store(database_url)
    try:
        with store.session() as session:
            row = session.scalar(select(Deployment).where(Deployment.name == NAME))
            assert row is not None
            attempts = session.scalars(
                select(RolloutAttempt)
                .where(RolloutAttempt.deployment_id == row.id)
                .order_by(RolloutAttempt.id)
            )
            return (
                row.status.value,
                row.status_reason or "",
                [(a.state.value, a.detail or "") for a in attempts],
            )
    finally:
        store.dispose()


def test_an_undo_that_cannot_reach_the_host_ends_failed_and_teardown_cleans_up_later(
    job: Job, monkeypatch: pytest.MonkeyPatch
) -> None:
    from budcluster.job_requests import DeployModelRequest, TeardownRequest
    from budcluster.targets.hosts.errors import HostsUnavailable
    from flows.deploy_model import deploy_model
    from flows.teardown_deployment import teardown_deployment

    request = DeployModelRequest.model_validate(
        {
            "name": NAME,
            "cluster": CLUSTER,
            "model": {"uri": str(job.model_dir)},
            "device": "cpu",
            "max_model_len": 512,
            "port": PORT,
            "ready_timeout_s": 120,
        }
    )
    # Hold the run right after llama-server started, long enough to cut the host off.
    monkeypatch.setenv("BUDCLUSTER_FAILPOINTS", f"after-roll-out=pause:{PAUSE_S}")
    cut: dict[str, Any] = {}
    rolled_out = _LogLine(f"{NAME} rolled out: ")
    run_logs = logging.getLogger("prefect.task_runs")

    def cut_off_once_rolled_out() -> None:
        # The roll-out task has returned from its playbook (its own log line says so) and
        # sits in the failpoint's pause: nothing holds a connection to the host now.
        if rolled_out.seen.wait(600):
            cut["runtime"] = _llama_servers(job.host)
            job.host.cut_network()
            cut["at"] = time.monotonic()

    cutter = threading.Thread(target=cut_off_once_rolled_out, daemon=True)
    run_logs.addHandler(rolled_out)
    cutter.start()
    try:
        with pytest.raises(Exception) as failed:
            deploy_model(request)
        failed_at = time.monotonic()
    finally:
        rolled_out.seen.set()
        cutter.join(30)
        run_logs.removeHandler(rolled_out)
        monkeypatch.delenv("BUDCLUSTER_FAILPOINTS")
        job.host.restore_network()  # a failure above must not leave the host cut off
    runtime = cut["runtime"]
    assert len(runtime) == 1, runtime
    # Restored only now: until here the host was unreachable. Its runtime ran on.
    assert _llama_servers(job.host) == runtime

    status, reason, attempts = _recorded(job.database_url)
    [(state, undo_error)] = attempts
    # The rollout failed because the health wait could not reach the host (its runtime
    # status over SSH); the undo could not reach it either.
    unreachable = "host sshhost is unreachable: "
    assert isinstance(failed.value, HostsUnavailable), failed.value
    assert str(failed.value).startswith(f"runtime_status.yml: {unreachable}"), failed.value
    assert state == "undo_failed", attempts
    assert undo_error.startswith(f"HostsUnavailable: delete_runtime.yml: {unreachable}")
    assert job.host.address in undo_error, undo_error
    assert status == "failed"
    rollout_error, _, after = reason.partition("; and undoing the rollout failed too: ")
    assert rollout_error.startswith(f"HostsUnavailable: runtime_status.yml: {unreachable}")
    assert after.startswith(f"HostsUnavailable: delete_runtime.yml: {unreachable}"), reason
    assert reason.endswith("What it started may still run: run teardown-deployment to remove it"), (
        reason
    )
    print(
        f"\nhost cut off: the run failed {failed_at - cut['at']:.1f} s after the cut "
        f"(rollout and undo both unreachable); llama-server {runtime[0]} ran on"
    )

    assert teardown_deployment(TeardownRequest(cluster=CLUSTER, deployment=NAME)) == "deleted"
    assert _llama_servers(job.host) == []
    status, _, attempts = _recorded(job.database_url)
    assert status == "deleted"
    assert [a[0] for a in attempts] == ["undo_failed"]
