"""Container mode on a host whose engine cannot reach the image's registry, with the real
podman of this machine (its default storage, read only: nothing is pulled or created).

The deploy must fail at once with an error that names the image and how to load it, not
after a pull that hangs, and leave no container behind.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from budcluster.targets.base import RolloutSpec
from budcluster.targets.hosts import HostsOperationFailed, HostsTarget
from tests.ansible.helpers import free_port, health_plan

pytestmark = pytest.mark.skipif(
    shutil.which("podman") is None, reason="podman is not installed (apt-get install podman)"
)


def _inventory(extra: str = "") -> str:
    return (
        "[servers]\n"
        f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}{extra}\n"
    )


def _containers(name: str) -> str:
    listed = subprocess.run(
        ["podman", "ps", "-a", "--filter", f"name=^{name}$", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return listed.stdout.strip()


def _spec(tmp_path: Path, image: str, name: str) -> RolloutSpec:
    plan = health_plan().model_copy(update={"image": image})
    return RolloutSpec(name, plan, str(tmp_path / "model"), free_port())


@pytest.fixture
def silent_registry() -> Iterator[str]:
    """A registry address that accepts connections and never answers (a firewall that
    drops, a proxy that hangs): a pull without a time limit would wait for it for minutes."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in held:
            connection.close()
        server.close()


def test_an_image_no_registry_serves_fails_naming_it_and_how_to_load_it(
    tmp_path: Path,
) -> None:
    image = "registry.invalid/budcluster/absent:1.0"
    target = HostsTarget(_inventory(), state_dir=str(tmp_path / "state"), runtime_mode="podman")
    started = time.monotonic()
    with pytest.raises(HostsOperationFailed) as caught:
        target.roll_out(_spec(tmp_path, image, "no-image"))
    message = str(caught.value)
    assert f"image {image} is not on localhost and podman could not pull it" in message
    assert "podman load -i" in message and f"podman save {image}" in message
    assert "budcluster_runtime_mode: process" in message
    assert time.monotonic() - started < 60
    assert _containers("budcluster-no-image") == ""


def test_a_registry_that_never_answers_is_given_up_on_after_the_pull_timeout(
    tmp_path: Path, silent_registry: str
) -> None:
    image = f"{silent_registry}/budcluster/absent:1.0"
    target = HostsTarget(
        _inventory(" container_pull_timeout_s=3"),
        state_dir=str(tmp_path / "state"),
        runtime_mode="podman",
    )
    started = time.monotonic()
    with pytest.raises(HostsOperationFailed, match=r"could not pull it within 3 s") as caught:
        target.roll_out(_spec(tmp_path, image, "hung-pull"))
    assert image in str(caught.value)
    assert time.monotonic() - started < 60
    assert _containers("budcluster-hung-pull") == ""


def test_auto_mode_picks_podman_where_it_answers_and_then_checks_the_image(
    tmp_path: Path,
) -> None:
    """The host var budcluster_runtime_mode is what keeps local test runs in process mode;
    without it, a host with a working podman gets a container."""
    answers = subprocess.run(["podman", "info"], capture_output=True, timeout=60).returncode
    if answers != 0:
        pytest.skip("podman is installed but `podman info` fails here: auto picks another mode")
    image = "registry.invalid/budcluster/absent:2.0"
    target = HostsTarget(_inventory(), state_dir=str(tmp_path / "state"))
    with pytest.raises(HostsOperationFailed, match=r"podman could not pull it"):
        target.roll_out(_spec(tmp_path, image, "auto-mode"))
