"""The hosts target's playbooks over SSH, without Prefect: stage a model directory, install
an executable, run it supervised, and do each again with nothing to change.

The runtime is the stand-in health server of tests/ansible, made an executable script so
that it is installed like llama-server: the host has no path of the controller's.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from budcluster.secretfiles import temporary_secret_file
from budcluster.targets.base import ModelSourceSpec, RolloutSpec, RuntimeState
from budcluster.targets.hosts import HostsTarget, RestartPolicy
from tests.ansible.helpers import HEALTH_SERVER, free_port, plan
from tests.support.ssh_host import SshHost

pytestmark = pytest.mark.e2e

STATE = "~/.budcluster-target"
HOST_STATE = "/home/bud/.budcluster-target"


@pytest.fixture(scope="module")
def target(test_host: SshHost, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostsTarget]:
    tools = tmp_path_factory.mktemp("tools")
    server = tools / "health-server"
    server.write_text("#!/usr/bin/python3\n" + HEALTH_SERVER.read_text())
    server.chmod(0o755)
    with (
        temporary_secret_file(test_host.private_key, name="id_ssh") as key,
        temporary_secret_file(test_host.known_hosts, name="known_hosts") as known_hosts,
    ):
        yield HostsTarget(
            test_host.inventory(),
            ssh_key_file=key,
            known_hosts_file=known_hosts,
            executables={"health-server": str(server)},
            installed_executables=frozenset({"health-server"}),
            state_dir=STATE,
            restart=RestartPolicy(max_restarts=1, backoff_s=0.2, stable_s=30, stop_timeout_s=5),
        )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = tmp_path_factory.mktemp("model")
    (model / "config.json").write_text('{"model_type": "llama"}\n')
    (model / "weights").mkdir()
    (model / "weights" / "part-1.bin").write_bytes(bytes(range(256)) * 4096)
    return model


def _health(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_a_model_directory_is_copied_and_verified_on_the_host(
    target: HostsTarget, model_dir: Path, test_host: SshHost
) -> None:
    staged = target.stage_model(ModelSourceSpec(str(model_dir)), "tiny", ["sshhost"])
    assert staged.path == f"{HOST_STATE}/models/tiny"
    assert staged.files == 2 and staged.bytes == staged.bytes_copied == 24 + 256 * 4096
    on_host = test_host.path(staged.path)
    manifest = json.loads((on_host / ".budcluster-manifest.json").read_text())
    assert manifest["manifest_sha256"] == staged.manifest_sha256
    for entry in manifest["files"]:
        data = (on_host / entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert data == (model_dir / entry["path"]).read_bytes()

    again = target.stage_model(ModelSourceSpec(str(model_dir)), "tiny", ["sshhost"])
    assert again.bytes_copied == 0 and again.manifest_sha256 == staged.manifest_sha256
    assert target.last_result is not None and target.last_result.changed == 0


def test_the_executable_is_installed_on_the_host_and_run_from_there(
    target: HostsTarget, test_host: SshHost
) -> None:
    port = 8000 if test_host.network == "netns" else free_port()
    served = plan(
        host_command=[
            "health-server",
            "--model",
            "/controller/tiny",
            "--port",
            "8000",
            "--host",
            "0.0.0.0",
        ],
        node="sshhost",
    )
    spec = RolloutSpec("probe", served, f"{HOST_STATE}/models/tiny", port)
    status = target.roll_out(spec)
    assert status.endpoint_url == f"http://{test_host.address}:{port}", status.reason
    deadline = time.monotonic() + 30
    while not _health(status.endpoint_url) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _health(status.endpoint_url)

    digest = hashlib.sha256(Path(target.executables["health-server"]).read_bytes()).hexdigest()
    installed = f"{HOST_STATE}/engines/health-server-{digest[:16]}/health-server"
    assert (
        test_host.path(installed).read_bytes()
        == Path(target.executables["health-server"]).read_bytes()
    )
    running = [argv for argv in test_host.processes().values() if installed in argv]
    assert len(running) == 1, test_host.processes()
    assert target.executables["health-server"] not in json.dumps(test_host.processes())

    target.roll_out(spec)
    assert target.last_result is not None and target.last_result.changed == 0
    assert target.status("probe").state is RuntimeState.RUNNING


def test_delete_stops_it_on_the_host(target: HostsTarget, test_host: SshHost) -> None:
    target.delete("probe")
    left = [argv for argv in test_host.processes().values() if "sshd" not in argv[0]]
    assert left == []
    assert target.status("probe").state is RuntimeState.ABSENT
