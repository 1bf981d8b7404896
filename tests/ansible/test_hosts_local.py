"""The hosts target against this machine (localhost, connection local), for real.

The runtime is tests/ansible/files/health_server.py, run in supervised-process mode (no
container engine daemon and no systemd run here).
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from budcluster.hardware.inventory import NodeInventory
from budcluster.targets.base import RolloutSpec, RuntimeState
from budcluster.targets.hosts import HostsTarget
from tests.ansible.helpers import free_port, health_plan


def _wait(predicate, timeout_s: float = 20.0, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_verify_access_and_detect_nodes_return_this_machine(target: HostsTarget) -> None:
    access = target.verify_access()
    assert access.kind == "hosts" and access.nodes == ["localhost"]
    nodes = target.detect_nodes()
    assert [type(n) for n in nodes] == [NodeInventory]
    node = nodes[0]
    assert node.node_name == "localhost"  # NODE_NAME is the inventory name
    assert node.cpu is not None and node.cpu.logical_cpus == os.cpu_count()
    assert node.memory is not None
    with Path("/proc/meminfo").open() as meminfo:
        total_kib = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
    assert node.memory.total_mib == total_kib // 1024
    assert target.last_result is not None and target.last_result.changed == 0


def test_supervised_process_lifecycle(target: HostsTarget, tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    port = free_port()
    spec = RolloutSpec("demo", health_plan(), str(model), port=port)
    run_dir = Path(target.state_dir) / "runtimes" / "demo"

    first = target.roll_out(spec)
    assert first.state in (RuntimeState.STARTING, RuntimeState.RUNNING)
    assert first.endpoint_url == f"http://127.0.0.1:{port}"
    assert first.detail["mode"] == "process"
    _wait(lambda: _healthy(first.endpoint_url or ""), what="/health")
    status = target.status("demo")
    assert status.state is RuntimeState.RUNNING
    child = _pid(run_dir / "child.pid")
    supervisor = _pid(run_dir / "supervisor.pid")
    assert _alive(child) and _alive(supervisor) and status.detail["pid"] == str(child)
    assert any(f"serving {model} on 127.0.0.1:{port}" in line for line in status.log_tail)
    spec_file = json.loads((run_dir / "spec.json").read_text())
    assert spec_file["argv"][2:] == ["--model", str(model), "--port", str(port)]
    assert spec_file["env"] == {"BUDCLUSTER_TEST": "1"}

    # The same spec again changes nothing and keeps the same process.
    again = target.roll_out(spec)
    assert target.last_result is not None and target.last_result.changed == 0, (
        target.last_result.changed_tasks
    )
    assert again.state is RuntimeState.RUNNING and _pid(run_dir / "child.pid") == child

    # --check with a changed spec reports a change and changes nothing.
    before = (run_dir / "spec.json").read_bytes()
    target.roll_out(replace(spec, plan=health_plan("--host", "0.0.0.0")), check=True)
    assert target.last_result is not None and target.last_result.changed > 0
    assert (run_dir / "spec.json").read_bytes() == before
    assert _pid(run_dir / "child.pid") == child and _alive(child)

    # The restart policy brings a killed runtime back.
    assert child is not None
    os.kill(child, signal.SIGKILL)
    restarted = _wait(
        lambda: (p := _pid(run_dir / "child.pid")) not in (None, child) and _alive(p) and p,
        what="a restarted child",
    )
    _wait(lambda: _healthy(first.endpoint_url or ""), what="/health after the restart")
    assert target.status("demo").detail["pid"] == str(restarted)

    # Delete removes the process tree and the files, keeps the log; twice is fine.
    target.delete("demo")
    assert not _alive(restarted) and not _alive(supervisor)
    assert sorted(p.name for p in run_dir.iterdir()) == ["runtime.log"]
    assert not _healthy(first.endpoint_url or "")
    target.delete("demo")
    assert target.last_result is not None and target.last_result.changed == 0
    assert target.status("demo").state is RuntimeState.ABSENT


def test_runtime_that_cannot_start_ends_failed_with_its_log_and_nothing_running(
    target: HostsTarget, tmp_path: Path
) -> None:
    spec = RolloutSpec("broken", health_plan("--no-such-flag"), str(tmp_path), port=free_port())
    run_dir = Path(target.state_dir) / "runtimes" / "broken"
    target.roll_out(spec)
    _wait(
        lambda: json.loads((run_dir / "state.json").read_text()).get("state") == "failed",
        what="the supervisor to give up",
    )
    status = target.status("broken")
    assert status.state is RuntimeState.FAILED and status.endpoint_url is None
    assert status.reason is not None
    assert "gave up after 2 restarts" in status.reason
    assert "unrecognized arguments: --no-such-flag" in status.reason  # the log tail
    assert not (run_dir / "supervisor.pid").exists() and not (run_dir / "child.pid").exists()
    target.delete("broken", remove_log=True)
    assert not run_dir.exists()


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("budcluster.transfer") is None,
    reason="budcluster.transfer is not in this tree yet",
)
def test_stage_model_from_a_local_directory(target: HostsTarget, tmp_path: Path) -> None:
    from budcluster.targets.base import ModelSourceSpec

    source = tmp_path / "src"
    source.mkdir()
    (source / "config.json").write_text('{"model_type": "llama"}')
    (source / "weights.bin").write_bytes(os.urandom(300_000))
    staged = target.stage_model(ModelSourceSpec(str(source)), "tiny", ["localhost"])
    dest = Path(staged.path)
    assert dest == Path(target.state_dir).resolve() / "models" / "tiny"
    assert (dest / "weights.bin").read_bytes() == (source / "weights.bin").read_bytes()
    assert staged.files == 2 and staged.bytes == staged.bytes_copied > 300_000
    assert staged.manifest_sha256
    again = target.stage_model(ModelSourceSpec(str(source)), "tiny", ["localhost"])
    assert again.bytes_copied == 0 and again.manifest_sha256 == staged.manifest_sha256
    assert target.last_result is not None and target.last_result.changed == 0
