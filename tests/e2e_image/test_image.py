"""The image built from the Containerfile: its user, its contents, and the in-pod code of
the node-info collector and the model-transfer Job run inside it.

The image is really built (buildah, from a Debian bookworm base; tests/support/container_image.py)
and every command here runs in it with ``buildah run``. What stands in for a cluster: the
Kubernetes API is the emulator over HTTPS with a service-account folder mounted where the
kubelet mounts it, S3 is moto's server, and ``nvidia-smi``/``hl-smi`` are scripts that print
the outputs captured on real machines (../shared/fixtures/hardware): test doubles of the
tools, while the collector, its parsers and the ConfigMap writer are the image's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from budcluster.adapters.s3 import make_s3_client
from tests.e2e_image.conftest import InClusterApi
from tests.support.container_image import (
    IMAGE_UID,
    REPO_ROOT,
    BuiltImage,
    ImageContainer,
    build_args,
)
from tests.support.hardware_fixtures import hardware_fixtures_dir
from tests.support.prefect_server import free_port
from tests.transfer.model_files import SMALL_MODEL, tree, write_model

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

COLLECTOR_FILES = REPO_ROOT / "charts" / "node_info_collector" / "files"
TRANSFER_FILES = REPO_ROOT / "charts" / "model_transfer" / "files"
IMAGE_PATH = "/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
A100_XML = "nvidia-smi-xml/a100-sxm4-40gb-mig_netdata.xml"
GAUDI2_HL_SMI = "hl-smi/hl-smi_8x-HL-225-gaudi2_driver-1.21.1_vdwarakn-readme-excerpt.txt"
PUBLISH_TIMEOUT_S = 120.0


# --- the image itself ---------------------------------------------------------------------


def test_image_runs_as_the_fixed_non_root_user(
    built_image: BuiltImage, container: ImageContainer
) -> None:
    user = built_image.storage.buildah(
        "inspect", "--type", "image", "--format", "{{.OCIv1.Config.User}}", built_image.name
    ).strip()
    # Numeric, so a kubelet can check runAsNonRoot without reading /etc/passwd.
    assert user == f"{IMAGE_UID}:{IMAGE_UID}"
    done = container.run(
        [
            "sh",
            "-c",
            "id -u; id -g; touch /opt/bud-serve-cluster/budcluster/x 2>&1;"
            ' touch "$HOME/ok" && echo home-writable',
        ]
    )
    lines = done.stdout.splitlines()
    assert lines[:2] == [str(IMAGE_UID), str(IMAGE_UID)]
    assert "Permission denied" in lines[2], "the user must not be able to change the code"
    assert lines[3] == "home-writable"


def test_image_holds_the_project_with_its_extras_and_nothing_private(
    container: ImageContainer,
) -> None:
    listing = container.run(["ls", "-A", "/opt/bud-serve-cluster"])
    assert listing.returncode == 0, listing.stderr
    assert set(listing.stdout.split()) == {
        "README.md",
        "blocks",
        "budcluster",
        "charts",
        "deployments.yaml",
        "flows",
        "playbooks",
        "prefect.yaml",
        "pyproject.toml",
        "tasks",
        "terraform",
    }
    probe = (
        "import json, pynvml, uvloop, budcluster, flows.deploy_model;"
        "from budcluster.targets.kubernetes.target import CHARTS_DIR;"
        "from budcluster.adapters.ansible import PLAYBOOKS_DIR;"
        "from budcluster.adapters.terraform import MODULES_DIR;"
        "print(json.dumps({'package': budcluster.__file__, 'dirs': [str(p) for p in"
        " (CHARTS_DIR, PLAYBOOKS_DIR, MODULES_DIR) if p.is_dir()]}))"
    )
    done = container.run(["python", "-c", probe])
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["package"] == "/opt/bud-serve-cluster/budcluster/__init__.py"
    assert found["dirs"] == [
        "/opt/bud-serve-cluster/charts",
        "/opt/bud-serve-cluster/playbooks",
        "/opt/bud-serve-cluster/terraform",
    ]
    # Every installed distribution's requirements are met (what `pip install` resolved).
    check = container.run(["python", "-m", "pip", "check"])
    assert check.returncode == 0, check.stdout + check.stderr
    cli = container.run(["budcluster", "--help"])
    assert cli.returncode == 0 and "Usage: budcluster" in cli.stdout, cli.stderr


def test_the_charts_run_the_image_as_its_user() -> None:
    from budcluster.adapters.helm import render_chart

    for chart, values in (
        ("node_info_collector", {}),
        ("model_transfer", {"modelBytes": 1}),
    ):
        objects = render_chart(REPO_ROOT / "charts" / chart, values, "rel", "ns")
        pods = [
            obj["spec"]["template"]["spec"]
            for obj in objects
            if obj["kind"] in {"DaemonSet", "Job"}
        ]
        assert pods, chart
        for pod in pods:
            context = pod["securityContext"]
            assert context["runAsNonRoot"] is True
            assert context["runAsUser"] == IMAGE_UID and context["runAsGroup"] == IMAGE_UID
            assert context["fsGroup"] == IMAGE_UID
            for box in pod["containers"]:
                assert box["securityContext"]["allowPrivilegeEscalation"] is False
                assert box["securityContext"]["capabilities"] == {"drop": ["ALL"]}


# --- the node-info collector in the image -------------------------------------------------


def _fake_tool(directory: Path, name: str, fixture: str, argv: str) -> None:
    """A test double of ``name``: prints the captured real output for ``argv`` (the call the
    collector makes) and fails like a tool without that capability otherwise."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    script = directory / name
    script.write_text(
        "#!/bin/sh\n"
        f"# Test double of {name}: the output captured on a real machine.\n"
        f'if [ "$*" = "{argv}" ]; then exec cat /fixtures/{fixture}; fi\n'
        f'echo "{name} test double: only \\"{argv}\\" was captured" >&2\n'
        "exit 9\n"
    )
    script.chmod(0o755)


@pytest.fixture
def fixtures_dir() -> Path:
    return hardware_fixtures_dir()


def _run_writer(
    container: ImageContainer,
    api: InClusterApi,
    node: str,
    tools: Path,
    fixtures: Path,
) -> dict[str, Any]:
    """Run the chart's writer as the DaemonSet does until its ConfigMap appears; stop it."""
    env = {
        **api.env,
        "PATH": f"/opt/fake-tools:{IMAGE_PATH}",
        "NODE_NAME": node,
        "POD_NAMESPACE": "default",
        "RELEASE_NAME": "node-info-collector",
        "REFRESH_SECONDS": "300",
        "COLLECT_TIMEOUT_SECONDS": "120",
    }
    volumes = {
        **api.volumes,
        COLLECTOR_FILES: "/scripts:ro",
        tools: "/opt/fake-tools:ro",
        fixtures: "/fixtures:ro",
    }
    # The chart's command: ["python", "/scripts/write_node_info.py"].
    argv = container.argv(["python", "/scripts/write_node_info.py"], env=env, volumes=volumes)
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as writer:
        deadline = time.monotonic() + PUBLISH_TIMEOUT_S
        config_map = None
        while config_map is None and writer.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
            config_map = api.config_map(f"node-info-{node}")
        # buildah passes the signal on to the writer in the chroot.
        writer.terminate()
        try:
            output, _ = writer.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            writer.kill()
            output, _ = writer.communicate(timeout=30)
    assert config_map is not None, f"no ConfigMap node-info-{node}; the writer said:\n{output}"
    assert f"node-info-{node} refreshed" in output, output
    labels = config_map["metadata"]["labels"]
    assert labels["budcluster.io/node"] == node
    assert labels["app.kubernetes.io/managed-by"] == "bud-serve-cluster"
    inventory: dict[str, Any] = json.loads(config_map["data"]["inventory.json"])
    return inventory


def _tools(inventory: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {record["name"]: record for record in inventory["tools"]}


def test_writer_publishes_the_nvidia_inventory_from_real_nvidia_smi_output(
    container: ImageContainer, in_cluster_api: InClusterApi, fixtures_dir: Path, tmp_path: Path
) -> None:
    _fake_tool(tmp_path / "tools", "nvidia-smi", A100_XML, "-q -x")
    inventory = _run_writer(
        container, in_cluster_api, "image-gpu-1", tmp_path / "tools", fixtures_dir
    )
    assert inventory["node_name"] == "image-gpu-1"
    xml = (fixtures_dir / A100_XML).read_text()
    nvidia = inventory["nvidia"]
    assert nvidia["driver_version"] == "510.47.03" and "<driver_version>510.47.03<" in xml
    assert [gpu["product"] for gpu in nvidia["gpus"]] == ["NVIDIA A100-SXM4-40GB"]
    gpu = nvidia["gpus"][0]
    assert gpu["mig_mode"] == "enabled"
    assert len(gpu["mig_devices"]) == xml.count("<mig_device>")
    tools = _tools(inventory)
    # nvidia-ml-py is installed (the nvidia extra) but there is no NVML library here: the
    # collector records why and falls back to nvidia-smi, as on a node without the driver's
    # libnvidia-ml mounted.
    assert tools["nvml"]["present"] is False and "NVML" in tools["nvml"]["reason"]
    assert tools["nvidia-smi"]["present"] is True
    assert tools["hl-smi"] == {
        "name": "hl-smi",
        "present": False,
        "reason": "hl-smi not found on PATH",
    }
    # The CPU and memory come from the live /proc of this machine, read by the non-root user.
    assert inventory["cpu"]["logical_cpus"] == os.cpu_count()
    assert inventory["memory"]["total_mib"] > 0


def test_writer_publishes_the_gaudi_inventory_from_real_hl_smi_output(
    container: ImageContainer, in_cluster_api: InClusterApi, fixtures_dir: Path, tmp_path: Path
) -> None:
    _fake_tool(tmp_path / "tools", "hl-smi", GAUDI2_HL_SMI, "")
    inventory = _run_writer(
        container, in_cluster_api, "image-gaudi-1", tmp_path / "tools", fixtures_dir
    )
    text = (fixtures_dir / GAUDI2_HL_SMI).read_text()
    devices = inventory["gaudi"]["devices"]
    assert len(devices) == text.count(" HL-225 ") == 8
    assert {device["model"] for device in devices} == {"HL-225"}
    assert inventory["gaudi"]["hl_smi_version"] == "hl-1.21.1-fw-59.2.3.0"
    tools = _tools(inventory)
    assert tools["hl-smi"]["present"] is True
    assert tools["nvidia-smi"]["present"] is False


# --- the model-transfer Job in the image --------------------------------------------------


BUCKET = "models"


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[str, Any]]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = make_s3_client(
        endpoint_url=endpoint,
        region="us-east-1",
        access_key_id="image-test-key",
        secret_access_key="image-test-secret",
        timeout_s=10,
    )
    client.create_bucket(Bucket=BUCKET)
    try:
        yield endpoint, client
    finally:
        server.stop()


def _volume_like_fs_group(path: Path) -> Path:
    """A fresh PVC as the kubelet hands it over with fsGroup 10001: group-owned, setgid."""
    path.mkdir(parents=True)
    os.chown(path, 0, IMAGE_UID)
    path.chmod(0o2775)
    return path


def _run_transfer(
    container: ImageContainer,
    api: InClusterApi,
    s3: tuple[str, Any],
    models: Path,
    source_uri: str,
    job: str,
) -> subprocess.CompletedProcess[str]:
    endpoint, _client = s3
    env = {
        **api.env,
        "POD_NAMESPACE": "default",
        "PROGRESS_CONFIGMAP": f"{job}-progress",
        "RELEASE_NAME": job,
        "PROGRESS_INTERVAL_SECONDS": "1",
        "AWS_ACCESS_KEY_ID": "image-test-key",
        "AWS_SECRET_ACCESS_KEY": "image-test-secret",
        "BUDCLUSTER_S3_ENDPOINT_URL": endpoint,
    }
    volumes = {**api.volumes, TRANSFER_FILES: "/scripts:ro", models: "/models"}
    # The chart's command and args for modelName "tiny".
    return container.run(
        [
            "python",
            "/scripts/transfer_job.py",
            source_uri,
            "/models/tiny",
            "--workers",
            "2",
            "--json",
        ],
        env=env,
        volumes=volumes,
    )


def test_transfer_job_copies_and_verifies_a_model_from_s3(
    container: ImageContainer, in_cluster_api: InClusterApi, s3: tuple[str, Any], tmp_path: Path
) -> None:
    _endpoint, client = s3
    contents = write_model(tmp_path / "model", SMALL_MODEL)
    for rel, data in contents.items():
        client.put_object(Bucket=BUCKET, Key=f"tiny/v1/{rel}", Body=data)
    models = _volume_like_fs_group(tmp_path / "pvc")
    done = _run_transfer(container, in_cluster_api, s3, models, f"s3://{BUCKET}/tiny/v1", "mt-ok")
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["files"] == len(SMALL_MODEL)
    assert summary["bytes_total"] == sum(SMALL_MODEL.values())
    copied = {k: v for k, v in tree(models / "tiny").items() if not k.startswith(".budcluster-")}
    assert copied == contents
    # Written by the image's user into the fsGroup volume, as on a real PVC.
    assert {p.stat().st_uid for p in (models / "tiny").rglob("*") if p.is_file()} == {IMAGE_UID}
    progress = in_cluster_api.config_map("mt-ok-progress")
    assert progress is not None
    assert progress["metadata"]["labels"]["budcluster.io/release"] == "mt-ok"
    state = json.loads(progress["data"]["progress.json"])
    assert state["state"] == "done" and state["files_done"] == len(SMALL_MODEL)


def test_transfer_job_fails_permanently_on_a_missing_prefix(
    container: ImageContainer, in_cluster_api: InClusterApi, s3: tuple[str, Any], tmp_path: Path
) -> None:
    models = _volume_like_fs_group(tmp_path / "pvc")
    done = _run_transfer(
        container, in_cluster_api, s3, models, f"s3://{BUCKET}/no-such-model", "mt-missing"
    )
    # Exit 2 is the chart's podFailurePolicy FailJob code: retrying cannot help.
    assert done.returncode == 2, done.stdout + done.stderr
    error = json.loads(done.stdout.strip().splitlines()[-1])
    assert error["retryable"] is False
    progress = in_cluster_api.config_map("mt-missing-progress")
    assert progress is not None
    assert json.loads(progress["data"]["progress.json"])["state"] == "failed"


# --- scripts/build-image ------------------------------------------------------------------


def test_build_image_script_builds_the_same_image(built_image: BuiltImage, tmp_path: Path) -> None:
    """The users' script with buildah, on the tests' storage and base: every step is a cache
    hit of the build above, so it yields the very same image under the tag it is given."""
    storage = built_image.storage
    tag = "localhost/bud-serve-cluster:script"
    env = {
        **os.environ,
        "ENGINE": "buildah",
        "IMAGE": tag,
        "CONTAINERS_STORAGE_CONF": str(storage.conf(tmp_path / "storage.conf")),
    }
    done = subprocess.run(
        [
            str(REPO_ROOT / "scripts" / "build-image"),
            *build_args(built_image.base, built_image.wheelhouse),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    try:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert f"buildah building {tag}" in done.stderr
        assert storage.image_id(tag) == storage.image_id(built_image.name)
    finally:
        storage.buildah("rmi", tag, check=False)
