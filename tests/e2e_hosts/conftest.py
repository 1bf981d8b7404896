"""The main job on this machine: a real Prefect server, a real SQLite store, real runtimes.

Flows run in this test process against the server; this machine is a ``hosts`` cluster
reached with ``ansible_connection: local``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from budcluster.settings import get_settings
from tests.support.prefect_server import running_prefect_server

INVENTORY = """\
all:
  hosts:
    localhost:
      ansible_connection: local
      ansible_python_interpreter: "{{ ansible_playbook_python }}"
"""


@dataclass(frozen=True)
class MainJob:
    workdir: Path
    model_dir: Path
    database_url: str
    cluster: str = "this-machine"


def _clear_caches() -> None:
    from tasks._store import results_store

    get_settings.cache_clear()
    results_store.cache_clear()


@pytest.fixture(scope="package")
def main_job(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MainJob]:
    from blocks.hosts import HostInventory
    from budcluster.crypto import init_keys
    from budcluster.demo_model import build_demo_model
    from budcluster.job_requests import RegisterClusterRequest
    from budcluster.store.migrate import upgrade
    from flows.register_cluster import register_cluster

    workdir = tmp_path_factory.mktemp("main-job")
    database_url = f"sqlite:///{workdir / 'data' / 'budcluster.db'}"
    (workdir / "data").mkdir()
    env = {
        "BUDCLUSTER_KEYS_DIR": str(workdir / "crypto-keys"),
        "BUDCLUSTER_DATA_DIR": str(workdir / "data"),
        "BUDCLUSTER_DATABASE_URL": database_url,
        "BUDCLUSTER_REPORTS_DIR": str(workdir / "reports"),
        "BUDCLUSTER_HOSTS_STATE_DIR": str(workdir / "host-state"),
    }
    with (
        pytest.MonkeyPatch.context() as patch,
        running_prefect_server(workdir / "prefect") as server,
    ):
        for key, value in env.items():
            patch.setenv(key, value)
        _clear_caches()
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            init_keys(workdir / "crypto-keys")
            upgrade(database_url)
            model = build_demo_model(workdir / "models" / "demo-tiny", "tiny", gguf=True)
            HostInventory.from_inventory("this-machine", INVENTORY).save("this-machine")
            register_cluster(
                RegisterClusterRequest(name="this-machine", credentials_block="this-machine")
            )
            yield MainJob(workdir, model.path, database_url)
        _clear_caches()
