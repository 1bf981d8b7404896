"""The main job on this machine: a real Prefect server, a real SQLite store, real runtimes.

Flows run in this test process against the server; this machine is a ``hosts`` cluster
reached with ``ansible_connection: local``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.flow_environment import flow_environment

INVENTORY = f"""\
all:
  hosts:
    localhost:
      ansible_connection: local
      ansible_python_interpreter: {sys.executable}
      budcluster_runtime_mode: process
"""


@dataclass(frozen=True)
class MainJob:
    workdir: Path
    model_dir: Path
    database_url: str
    cluster: str = "this-machine"


@pytest.fixture(scope="package")
def main_job(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MainJob]:
    from blocks.hosts import HostInventory
    from budcluster.demo_model import build_demo_model
    from budcluster.job_requests import RegisterClusterRequest
    from flows.register_cluster import register_cluster

    workdir = tmp_path_factory.mktemp("main-job")
    host_state = str(workdir / "host-state")
    with flow_environment(workdir, BUDCLUSTER_HOSTS_STATE_DIR=host_state) as database_url:
        model = build_demo_model(workdir / "models" / "demo-tiny", "tiny", gguf=True)
        HostInventory.from_inventory("this-machine", INVENTORY).save("this-machine")
        register_cluster(
            RegisterClusterRequest(name="this-machine", credentials_block="this-machine")
        )
        yield MainJob(workdir, model.path, database_url)
