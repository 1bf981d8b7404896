"""deploy-model against a real SSH host that shares nothing with the controller.

The host (:mod:`tests.support.ssh_host`) is Debian's sshd chrooted into its own Debian root,
in its own network namespace where this machine allows one. It is registered as a ``hosts``
cluster whose credentials block holds its inventory, the sealed SSH key and its known_hosts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.flow_environment import flow_environment
from tests.support.ssh_host import SshHost, ssh_host

CLUSTER = "ssh-host"
STATE_DIR = "~/.budcluster"


@dataclass(frozen=True)
class SshJob:
    workdir: Path
    host: SshHost
    model_dir: Path
    database_url: str
    cluster: str = CLUSTER


@pytest.fixture(scope="package")
def test_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshHost]:
    with ssh_host(tmp_path_factory.mktemp("ssh-host")) as host:
        yield host


@pytest.fixture(scope="package")
def ssh_job(tmp_path_factory: pytest.TempPathFactory, test_host: SshHost) -> Iterator[SshJob]:
    from blocks.hosts import HostInventory
    from budcluster.demo_model import build_demo_model
    from budcluster.job_requests import RegisterClusterRequest
    from flows.register_cluster import register_cluster

    host = test_host
    workdir = tmp_path_factory.mktemp("ssh-job")
    with flow_environment(workdir, BUDCLUSTER_HOSTS_STATE_DIR=STATE_DIR) as database_url:
        model = build_demo_model(workdir / "models" / "demo-tiny", "tiny", gguf=True)
        HostInventory.from_inventory(
            CLUSTER,
            host.inventory(),
            ssh_private_key=host.private_key,
            known_hosts=host.known_hosts,
        ).save(CLUSTER)
        register_cluster(RegisterClusterRequest(name=CLUSTER, credentials_block=CLUSTER))
        yield SshJob(workdir, host, model.path, database_url)
