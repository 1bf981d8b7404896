"""deploy-model, benchmark and teardown on a host reached over SSH, for real.

The host has its own root: the model must be copied into it over SSH and llama-server
installed into it (the controller's build path does not exist there), and the runtime must
run inside it and answer on the host's own address.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import urllib.request
from pathlib import Path

import pytest

from budcluster.job_requests import (
    BenchmarkProfile,
    DeployModelRequest,
    ModelSourceRequest,
    TeardownRequest,
)
from budcluster.runtimes.llama_server import cached_llama_server
from budcluster.secretfiles import secrets_root, temporary_secret_file
from budcluster.targets.hosts import HostsTarget, HostsUnavailable
from flows.deploy_model import deploy_model
from flows.teardown_deployment import teardown_deployment
from tests.e2e_ssh.conftest import STATE_DIR, SshJob

pytestmark = pytest.mark.e2e

DEPLOYMENT = "demo-ssh"
PORT = 18451
HOST_STATE = "/home/bud/.budcluster"
"""STATE_DIR (``~/.budcluster``) as the host resolves it for its user."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _completion(endpoint: str, model: str) -> dict[str, object]:
    body = json.dumps({"model": model, "prompt": "Once upon", "max_tokens": 5}).encode()
    request = urllib.request.Request(
        f"{endpoint}/v1/completions", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


def _runtimes(job: SshJob) -> dict[int, list[str]]:
    return {
        pid: argv
        for pid, argv in job.host.processes().items()
        if argv and argv[0].endswith("/llama-server")
    }


@pytest.fixture(scope="module")
def deployed(ssh_job: SshJob) -> dict[str, object]:
    assert STATE_DIR == "~/.budcluster"
    request = DeployModelRequest.model_validate(
        {
            "name": DEPLOYMENT,
            "cluster": ssh_job.cluster,
            "model": ModelSourceRequest(uri=str(ssh_job.model_dir)),
            "device": "cpu",
            "max_model_len": 512,
            "concurrency": 2,
            "port": PORT,
            "ready_timeout_s": 120,
            "benchmark": BenchmarkProfile(
                profile="concurrency:2",
                requests=16,
                warmup_requests=2,
                input_tokens="16",
                output_tokens="16",
            ),
        }
    )
    return deploy_model(request)


def test_the_endpoint_is_the_hosts_own_address(
    deployed: dict[str, object], ssh_job: SshJob
) -> None:
    assert deployed["status"] == "ready" and deployed["changed"] is True
    endpoint = str(deployed["endpoint_url"])
    assert endpoint == f"http://{ssh_job.host.address}:{PORT}"
    answer = _completion(endpoint, DEPLOYMENT)
    assert answer["usage"]["completion_tokens"] >= 1  # type: ignore[index]


def test_the_benchmark_measured_the_host_from_the_controller(
    deployed: dict[str, object],
) -> None:
    summary = deployed["benchmark"]
    assert summary["requests_completed"] == 16 and summary["requests_failed"] == 0  # type: ignore[index]
    assert summary["ttft_ms"]["p50"] > 0 and summary["request_throughput"] > 0  # type: ignore[index]


def test_the_model_was_copied_into_the_hosts_root(
    deployed: dict[str, object], ssh_job: SshJob
) -> None:
    staged = ssh_job.host.path(f"{HOST_STATE}/models/demo-tiny")
    manifest = json.loads((staged / ".budcluster-manifest.json").read_text())
    assert manifest["files"], "the manifest lists no file"
    for entry in manifest["files"]:
        copied = staged / entry["path"]
        assert _sha256(copied) == entry["sha256"] == _sha256(ssh_job.model_dir / entry["path"])
        # A copy of its own, not the controller's file seen through a shared filesystem.
        assert copied.stat().st_ino != (ssh_job.model_dir / entry["path"]).stat().st_ino


def test_llama_server_was_installed_into_the_host_and_runs_from_there(
    deployed: dict[str, object], ssh_job: SshJob
) -> None:
    built = cached_llama_server()
    assert built is not None
    digest = _sha256(built)
    installed = ssh_job.host.path(f"{HOST_STATE}/engines/llama-server-{digest[:16]}/llama-server")
    assert _sha256(installed) == digest
    runtimes = _runtimes(ssh_job)
    assert len(runtimes) == 1, runtimes
    pid, argv = next(iter(runtimes.items()))
    # As the host sees it: its own path; as the controller sees it: inside the host's root.
    assert argv[0] == f"{HOST_STATE}/engines/llama-server-{digest[:16]}/llama-server"
    assert Path(f"/proc/{pid}/exe").readlink() == installed
    assert str(built) not in " ".join(argv)
    assert f"{HOST_STATE}/models/demo-tiny/" in " ".join(argv)


def test_no_ssh_key_file_outlives_its_task(deployed: dict[str, object]) -> None:
    left = [p for p in secrets_root().rglob("*") if p.name in ("id_ssh", "known_hosts")]
    assert left == []


def test_a_host_key_other_than_the_blocks_is_refused(
    deployed: dict[str, object], ssh_job: SshJob, tmp_path: Path
) -> None:
    """Strict host key checking with the block's known_hosts: a host that shows another key
    (here: the known_hosts names a key the host does not have) is not logged into."""
    other = tmp_path / "other"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True, timeout=30
    )
    kind, key = other.with_suffix(".pub").read_text().split()[:2]
    wrong = ssh_job.host.known_hosts.split()[0] + f" {kind} {key}\n"
    with (
        temporary_secret_file(ssh_job.host.private_key, name="id_ssh") as key_file,
        temporary_secret_file(wrong, name="known_hosts") as known_hosts,
    ):
        target = HostsTarget(
            ssh_job.host.inventory(), ssh_key_file=key_file, known_hosts_file=known_hosts
        )
        with pytest.raises(HostsUnavailable, match=r"(?i)host key"):
            target.verify_access()


def test_teardown_leaves_no_runtime_on_the_host(
    deployed: dict[str, object], ssh_job: SshJob
) -> None:
    assert _runtimes(ssh_job)
    outcome = teardown_deployment(TeardownRequest(cluster=ssh_job.cluster, deployment=DEPLOYMENT))
    assert outcome == "deleted"
    # Only sshd is left on the host: no runtime, no supervisor.
    left_running = [argv for argv in ssh_job.host.processes().values() if "sshd" not in argv[0]]
    assert left_running == []
    run_dir = ssh_job.host.path(f"{HOST_STATE}/runtimes/{DEPLOYMENT}")
    left = sorted(p.name for p in run_dir.iterdir()) if run_dir.exists() else []
    assert left in ([], ["runtime.log"]), left  # the log stays for a post-mortem
    with pytest.raises(OSError):
        _completion(str(deployed["endpoint_url"]), DEPLOYMENT)
