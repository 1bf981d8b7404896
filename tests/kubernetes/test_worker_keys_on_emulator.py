"""Keys reach Kubernetes workers: the Kubernetes work pool's job template, rendered by
prefect-kubernetes' own code, mounts the keys' Secret that `budcluster keys k8s-secret
--apply` made, and a process started with the pod's environment and the files the kubelet
projected loads a credential block sealed on this machine. Without the Secret, the block
load says which Secret is missing and the command that creates it.

What is simulated: the emulator's kubelet projects the Secret volume (bytes, mode, owner)
and builds the container's environment; the test writes those files under a directory
standing in for the container's root (root-owned, as the kubelet writes them: this test
runs as root) and points BUDCLUSTER_KEYS_DIR there; everything else is real (the Prefect
server, the template merge, the worker's manifest code and Job creation, the block load).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tests.k8s_emulator.emulator import Emulator, start_emulator
from tests.k8s_emulator.nodes import amx_cpu_node
from tests.k8s_emulator.waiting import eventually
from tests.support.prefect_server import running_prefect_server

PROJECT = Path(__file__).resolve().parents[2]
SECRET_ACCESS_KEY = "s3-secret-" + uuid.uuid4().hex
POOL = "budcluster-kubernetes"


@dataclass(frozen=True)
class World:
    emulator: Emulator
    kubeconfig: Path
    keys: Path
    api_url: str
    workdir: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from blocks.s3 import S3Registry
    from budcluster.crypto import init_keys
    from budcluster.settings import get_settings

    workdir = tmp_path_factory.mktemp("worker-keys")
    keys = workdir / "crypto-keys"
    emulator = start_emulator(flavour="kubernetes", nodes=[amx_cpu_node()])
    try:
        with (
            pytest.MonkeyPatch.context() as patch,
            running_prefect_server(workdir / "prefect") as server,
            temporary_settings({PREFECT_API_URL: server.api_url}),
        ):
            patch.setenv("BUDCLUSTER_KEYS_DIR", str(keys))
            get_settings.cache_clear()
            init_keys(keys)
            # Sealed here, with this machine's keys: the pod must open it with the Secret's.
            S3Registry.from_keys(
                "models",
                bucket="models",
                access_key_id="worker-key-id",
                secret_access_key=SECRET_ACCESS_KEY,
            ).save("models")
            kubeconfig = emulator.write_kubeconfig(workdir / "kubeconfig")
            for namespace in ("budcluster", "no-keys"):
                _create(emulator, "/api/v1/namespaces", {"metadata": {"name": namespace}})
                _create(
                    emulator,
                    f"/api/v1/namespaces/{namespace}/secrets",
                    {
                        "metadata": {"name": "budcluster-secrets"},
                        "stringData": {"database-url": "sqlite:////tmp/unused.db"},
                    },
                )
            yield World(emulator, kubeconfig, keys, server.api_url, workdir)
    finally:
        get_settings.cache_clear()
        emulator.stop()


def _create(emulator: Emulator, path: str, body: dict[str, Any]) -> None:
    from tests.k8s_emulator.waiting import raw_request

    status, answer = raw_request(
        emulator.url, "POST", path, body, headers={"Authorization": f"Bearer {emulator.token}"}
    )
    assert status == 201, answer


def _keys_cli(*args: str) -> Any:
    from budcluster.cli.app import app

    return CliRunner().invoke(app, ["keys", "k8s-secret", *args])


def _job_configuration(world: World, namespace: str) -> Any:
    """The Job manifest the Kubernetes worker would create for a flow run of
    deploy-model/deploy-model-kubernetes, built by prefect-kubernetes' own code from the
    pool template (its default merged with prefect.yaml's) and the deployment's variables."""
    from prefect.client.schemas.objects import FlowRun
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect_kubernetes.worker import KubernetesWorker, KubernetesWorkerJobConfiguration

    from budcluster.catalogue.kubernetes_pool import merge_job_template

    project = yaml.safe_load((PROJECT / "prefect.yaml").read_text(encoding="utf-8"))
    template = _pool_template(
        world, merge_job_template(KubernetesWorker.get_default_base_job_template(), project)
    )
    [deployment] = [d for d in project["deployments"] if d["name"] == "deploy-model-kubernetes"]
    properties = template["variables"]["properties"]
    values = {n: s["default"] for n, s in properties.items() if s.get("default") is not None}
    values.update(deployment["work_pool"]["job_variables"], namespace=namespace)
    with temporary_settings({PREFECT_API_URL: world.api_url}):
        configuration = asyncio.run(
            KubernetesWorkerJobConfiguration.from_template_and_values(template, values)
        )
        configuration.prepare_for_flow_run(
            FlowRun(id=uuid.uuid4(), name="keys-check", flow_id=uuid.uuid4())
        )
    return configuration


def _pool_template(world: World, merged: dict[str, Any]) -> dict[str, Any]:
    """The pool's template as the server stores it: created once (the server validates it:
    every placeholder needs its variable), then read back."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        temporary_settings({PREFECT_API_URL: world.api_url}),
        get_client(sync_client=True) as client,
    ):
        with contextlib.suppress(ObjectAlreadyExists):  # made by an earlier test
            client.create_work_pool(
                WorkPoolCreate(name=POOL, type="kubernetes", base_job_template=merged)
            )
        return dict(client.read_work_pool(POOL).base_job_template)


def _create_job_like_the_worker(world: World, configuration: Any) -> str:
    """KubernetesWorker._create_job: the worker's own call that creates the Job."""
    from kubernetes_asyncio import config as k8s_config
    from prefect_kubernetes.worker import KubernetesWorker

    async def create() -> str:
        client = await k8s_config.new_client_from_config_dict(world.emulator.kubeconfig_dict())
        try:
            job = await KubernetesWorker(work_pool_name=POOL)._create_job(configuration, client)
        finally:
            await client.close()
        return str(job.metadata.name)

    return asyncio.run(create())


def _started_pod(emulator: Emulator, namespace: str, job: str) -> dict[str, Any]:
    def started() -> dict[str, Any] | None:
        pods = [
            p
            for p in emulator.objects("pods", namespace=namespace)
            if p["metadata"].get("labels", {}).get("job-name") == job
        ]
        running = [p for p in pods if p.get("status", {}).get("phase") in ("Running", "Succeeded")]
        return running[0] if running else None

    return eventually(started, timeout=30, what=f"a started pod of Job {job}")


def _container_view(
    emulator: Emulator, pod: dict[str, Any], root: Path
) -> tuple[dict[str, str], list[str]]:
    """The container's environment, with its Secret volume's files written under ``root``."""
    container = pod["spec"]["containers"][0]["name"]

    def read() -> tuple[dict[str, str], dict[str, Any]]:
        live = emulator.cluster.store.find(
            emulator.cluster.registry.get("pods"),
            pod["metadata"]["namespace"],
            pod["metadata"]["name"],
        )
        assert live is not None
        kubelet = emulator.cluster.kubelet
        return kubelet.env(live, container), kubelet.secret_files(live, container)

    env, files = emulator.call(read)
    mount = next(
        m for m in pod["spec"]["containers"][0]["volumeMounts"] if m["name"] == "crypto-keys"
    )
    # The volume's directory exists even when an optional Secret is missing.
    (root / mount["mountPath"].lstrip("/")).mkdir(parents=True, exist_ok=True)
    written = []
    for path, projected in sorted(files.items()):
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(projected.data)
        os.chown(target, projected.uid, projected.gid)
        target.chmod(projected.mode)
        written.append(f"{path} {projected.mode:o} {projected.uid}:{projected.gid}")
    env["BUDCLUSTER_KEYS_DIR"] = str(root / env["BUDCLUSTER_KEYS_DIR"].lstrip("/"))
    return env, written


def _load_block_in(env: dict[str, str], home: Path) -> subprocess.CompletedProcess[str]:
    """A new process with the container's environment loads the block and opens it."""
    script = (
        "import hashlib, json\n"
        "from blocks.s3 import S3Registry\n"
        "env = S3Registry.load('models').as_environment()\n"
        "print(json.dumps({'id': env['AWS_ACCESS_KEY_ID'], "
        "'secret_sha256': hashlib.sha256(env['AWS_SECRET_ACCESS_KEY'].encode()).hexdigest()}))\n"
    )
    process_env = {
        **env,
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "PREFECT_HOME": str(home / ".prefect"),
        "PYTHONPATH": str(PROJECT),
    }
    return subprocess.run(
        [sys.executable, "-c", script],
        env=process_env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_pool_template_mounts_the_keys_secret_read_only(world: World) -> None:
    from budcluster.crypto.secret_manifest import DEFAULT_KEYS_SECRET, KEYS_MOUNT_PATH

    manifest = _job_configuration(world, "budcluster").job_manifest
    pod = manifest["spec"]["template"]["spec"]
    assert pod["volumes"] == [
        {
            "name": "crypto-keys",
            "secret": {"secretName": DEFAULT_KEYS_SECRET, "defaultMode": 0o400, "optional": True},
        }
    ]
    container = pod["containers"][0]
    assert container["volumeMounts"] == [
        {"name": "crypto-keys", "mountPath": KEYS_MOUNT_PATH, "readOnly": True}
    ]
    env = {e["name"]: e for e in container["env"]}
    assert env["BUDCLUSTER_KEYS_DIR"] == {"name": "BUDCLUSTER_KEYS_DIR", "value": KEYS_MOUNT_PATH}
    assert env["BUDCLUSTER_KEYS_SECRET"]["value"] == DEFAULT_KEYS_SECRET
    assert env["BUDCLUSTER_KEYS_SECRET_NAMESPACE"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.namespace"}
    }
    # The worker's own env (PREFECT_API_URL, the flow run id) comes first; ours stay.
    assert "PREFECT__FLOW_RUN_ID" in env and "BUDCLUSTER_DATABASE_URL" in env


def test_a_worker_pod_opens_a_block_sealed_here_with_the_mounted_keys(world: World) -> None:
    applied = _keys_cli(
        "--namespace", "budcluster", "--apply",
        "--kubeconfig", str(world.kubeconfig), "--dir", str(world.keys),
    )  # fmt: skip
    assert applied.exit_code == 0, applied.output
    assert applied.output.startswith("created Secret budcluster/budcluster-crypto-keys: ")
    private_pem = (world.keys / "rsa-private-key.pem").read_text()
    assert "PRIVATE KEY" not in applied.output and private_pem[40:80] not in applied.output

    job = _create_job_like_the_worker(world, _job_configuration(world, "budcluster"))
    pod = _started_pod(world.emulator, "budcluster", job)
    root = world.workdir / "pod-root"
    env, written = _container_view(world.emulator, pod, root)
    assert written == [
        "/var/run/secrets/budcluster/crypto-keys/bindings-required 400 0:0",
        "/var/run/secrets/budcluster/crypto-keys/rsa-private-key.pem 400 0:0",
        "/var/run/secrets/budcluster/crypto-keys/symmetric-key-256 400 0:0",
    ]
    assert env["BUDCLUSTER_KEYS_SECRET_NAMESPACE"] == "budcluster"

    done = _load_block_in(env, world.workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    opened = json.loads(done.stdout.strip().splitlines()[-1])
    assert opened == {
        "id": "worker-key-id",
        "secret_sha256": hashlib.sha256(SECRET_ACCESS_KEY.encode()).hexdigest(),
    }


def test_without_the_secret_the_block_load_names_it_and_the_command(world: World) -> None:
    job = _create_job_like_the_worker(world, _job_configuration(world, "no-keys"))
    pod = _started_pod(world.emulator, "no-keys", job)
    env, written = _container_view(world.emulator, pod, world.workdir / "pod-root-no-keys")
    assert written == []

    done = _load_block_in(env, world.workdir)
    assert done.returncode != 0
    assert "MissingKeyError" in done.stderr
    assert "rsa-private-key.pem is missing" in done.stderr
    assert "Kubernetes Secret 'budcluster-crypto-keys' in namespace 'no-keys'" in done.stderr
    assert (
        "`budcluster keys k8s-secret --namespace no-keys --name budcluster-crypto-keys --apply`"
        in done.stderr
    )


def test_apply_again_after_a_rotation_replaces_the_secret_whole(
    world: World, tmp_path: Path
) -> None:
    """`keys rotate` adds a previous key; once retired, a merge patch would leave it in the
    Secret: the second --apply replaces the Secret, so the retired key really goes."""
    import shutil

    from budcluster.crypto import Keyring, rotate_active_key
    from budcluster.crypto.secret_manifest import secret_key_names

    keys = tmp_path / "crypto-keys"
    shutil.copytree(world.keys, keys)
    common = ("--namespace", "budcluster", "--name", "rotating", "--apply",
              "--kubeconfig", str(world.kubeconfig), "--dir", str(keys))  # fmt: skip

    def secret_keys() -> list[str]:
        [secret] = [
            s
            for s in world.emulator.objects("secrets", namespace="budcluster")
            if s["metadata"]["name"] == "rotating"
        ]
        return sorted(secret["data"])

    assert _keys_cli(*common).output.startswith("created Secret budcluster/rotating")
    old, new = rotate_active_key(keys)
    replaced = _keys_cli(*common)
    assert replaced.exit_code == 0 and replaced.output.startswith("replaced Secret")
    assert f"previous-rsa-private-key-{old}.pem" in secret_keys()
    assert new in replaced.output and old not in replaced.output.split("(active key")[1]

    (keys / "previous" / f"rsa-private-key-{old}.pem").unlink()  # what `keys reseal` retires
    assert _keys_cli(*common).exit_code == 0
    assert secret_keys() == sorted(key for key, _ in secret_key_names(keys))
    assert not any(old in key for key in secret_keys())
    assert Keyring.load(keys).key_ids == [new]
