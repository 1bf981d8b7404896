"""No credential leaks from the real flows, on success or on failure.

Every credential kind carries a random canary: the kubeconfig's bearer token and client
key, the S3 registry's access key id and secret, the hosts' SSH key and become password.
The worker's environment carries one more. The blocks are added with the real CLI; then
register-cluster, transfer-model, deploy-model and teardown run for a hosts cluster (this
machine, through Ansible) and a Kubernetes cluster (the API emulator), in a process of
their own as on a Prefect worker, followed by their failure paths (an unreachable
cluster, a missing model, a runtime that cannot start, a crashing rollout).

While they run, every process's argv and environment is sampled. Afterwards the Prefect
database, server log and API (blocks with secrets, logs, artifacts, events, runs), the
results store, every file under the run's directories and every file in /tmp changed
during the run, the secrets directory, and every object left in the cluster are scanned
for each canary in raw and base64 forms.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from budcluster.secretfiles import secrets_root
from tests.k8s_emulator.emulator import Emulator, start_emulator
from tests.k8s_emulator.nodes import amx_cpu_node, h100_node
from tests.security.canaries import Canaries, ProcessWatch, scan_files, scan_text
from tests.support.prefect_server import PrefectServer, free_port, running_prefect_server

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
BUDCLUSTER = str(Path(sys.executable).with_name("budcluster"))
LLAMA_8B = REPO / "tests" / "fixtures" / "models" / "Llama-3.1-8B-Instruct"
HOSTS_INVENTORY = f"""\
all:
  hosts:
    localhost:
      ansible_connection: local
      ansible_python_interpreter: {sys.executable}
      budcluster_runtime_mode: process
"""


@dataclass
class CanaryRun:
    canaries: Canaries
    workdir: Path
    server: PrefectServer
    emulator: Emulator
    started: float
    steps: list[dict[str, Any]] = field(default_factory=list)
    watch_hits: set[str] = field(default_factory=set)
    processes_seen: list[str] = field(default_factory=list)
    worker_environ_had_canary: bool = False

    @property
    def store_path(self) -> Path:
        return self.workdir / "data" / "budcluster.db"


def _kubeconfig(canaries: Canaries, server: str) -> str:
    import base64

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "lab", "cluster": {"server": server}}],
            "users": [
                {
                    "name": "admin",
                    "user": {
                        "token": canaries.kube_token,
                        "client-certificate-data": b64(canaries.client_cert_pem),
                        "client-key-data": b64(canaries.client_key_pem),
                    },
                }
            ],
            "contexts": [
                {
                    "name": "lab",
                    "context": {"cluster": "lab", "user": "admin", "namespace": "default"},
                }
            ],
            "current-context": "lab",
        }
    )


def _worker_env(workdir: Path, server: PrefectServer, canaries: Canaries) -> dict[str, str]:
    from budcluster.settings import get_settings

    home = workdir / "home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": os.environ["PATH"],
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        # HOME in the run's directory, so ~/.ansible and ~/.prefect are scanned too.
        "HOME": str(home),
        "PYTHONPATH": str(REPO),
        "PREFECT_API_URL": server.api_url,
        "PREFECT_HOME": str(home / ".prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "DEBUG",
        "BUDCLUSTER_KEYS_DIR": str(workdir / "crypto-keys"),
        "BUDCLUSTER_DATA_DIR": str(workdir / "data"),
        "BUDCLUSTER_DATABASE_URL": f"sqlite:///{workdir / 'data' / 'budcluster.db'}",
        "BUDCLUSTER_REPORTS_DIR": str(workdir / "reports"),
        "BUDCLUSTER_HOSTS_STATE_DIR": str(workdir / "host-state"),
        "BUDCLUSTER_CACHE_DIR": str(get_settings().cache_dir),
        "WORKER_SECRET": canaries.worker_env,
    }


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run(
        [BUDCLUSTER, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, f"budcluster {' '.join(args)}: {done.stderr[-2000:]}"


def _upload_models(endpoint: str, canaries: Canaries, workdir: Path) -> str:
    from budcluster.adapters.s3 import make_s3_client
    from budcluster.demo_model import build_demo_model

    s3 = make_s3_client(
        endpoint_url=endpoint,
        region="us-east-1",
        access_key_id=canaries.s3_access_key_id,
        secret_access_key=canaries.s3_secret_access_key,
    )
    s3.create_bucket(Bucket="models")
    demo = build_demo_model(workdir / "build" / "demo-tiny", "tiny", gguf=True)
    for prefix, directory in (("demo-tiny", demo.path), ("llama-8b", LLAMA_8B)):
        for file in sorted(p for p in directory.iterdir() if p.is_file()):
            s3.put_object(Bucket="models", Key=f"{prefix}/{file.name}", Body=file.read_bytes())
    shutil.rmtree(workdir / "build")
    return "s3://models/demo-tiny"


def _add_credentials(run: CanaryRun, env: dict[str, str], endpoint: str, dead_server: str) -> None:
    inputs = run.workdir / "inputs"
    inputs.mkdir(mode=0o700)
    canaries = run.canaries
    (inputs / "lab.kubeconfig").write_text(_kubeconfig(canaries, run.emulator.url))
    (inputs / "dead.kubeconfig").write_text(_kubeconfig(canaries, dead_server))
    (inputs / "inventory.yml").write_text(HOSTS_INVENTORY)
    key = inputs / "id_ed25519"
    key.write_text(canaries.ssh_private_key)
    key.chmod(0o600)
    secrets_env = env | {
        "AWS_ACCESS_KEY_ID": canaries.s3_access_key_id,
        "AWS_SECRET_ACCESS_KEY": canaries.s3_secret_access_key,
        "BUDCLUSTER_BECOME_PASSWORD": canaries.become_password,
    }
    cwd = run.workdir
    _cli(["keys", "init"], env, cwd)
    _cli(["db", "upgrade"], env, cwd)
    _cli(["credentials", "add-kubeconfig", "lab-k8s", str(inputs / "lab.kubeconfig")], env, cwd)
    _cli(["credentials", "add-kubeconfig", "lab-dead", str(inputs / "dead.kubeconfig")], env, cwd)
    _cli(
        ["credentials", "add-s3", "models", "--endpoint", endpoint, "--bucket", "models"],
        secrets_env,
        cwd,
    )
    _cli(
        [
            "credentials",
            "add-hosts",
            "lab-hosts",
            str(inputs / "inventory.yml"),
            "--ssh-key",
            str(key),
            "--become-password",
        ],
        secrets_env,
        cwd,
    )
    # What the user typed in is theirs; what the project wrote is what is scanned.
    shutil.rmtree(inputs)


def _run_phase(run: CanaryRun, phase: str, env: dict[str, str], settings: Path) -> None:
    canaries = run.canaries
    watch = ProcessWatch(credentials=canaries.credentials(), worker_only=_worker_only(canaries))
    with watch:
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.security.canary_worker", phase, str(settings)],
            env=env,
            cwd=run.workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        watch.worker_pid = worker.pid
        time.sleep(0.2)
        try:
            environ = Path(f"/proc/{worker.pid}/environ").read_bytes()
            run.worker_environ_had_canary |= canaries.worker_env.encode() in environ
        except OSError:
            pass
        output, _ = worker.communicate(timeout=900)
    assert worker.returncode == 0, output[-5000:]
    run.steps += [json.loads(line[5:]) for line in output.splitlines() if line.startswith("STEP ")]
    run.watch_hits |= watch.hits
    run.processes_seen.append(f"{phase}: {len(watch.processes_seen)} pids, {watch.samples} samples")
    (run.workdir / f"worker-{phase}.log").write_text(output)


def _worker_only(canaries: Canaries) -> dict[str, list[bytes]]:
    everything = canaries.everything()
    return {"worker environment": everything["worker environment"]}


@pytest.fixture(scope="module")
def canary_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CanaryRun]:
    from moto.server import ThreadedMotoServer

    canaries = Canaries.fresh()
    workdir = tmp_path_factory.mktemp("canary")
    started = time.time()
    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{moto_port}"
    emulator = start_emulator(
        flavour="kubernetes", nodes=[h100_node(), amx_cpu_node()], token=canaries.kube_token
    )
    try:
        with running_prefect_server(workdir / "prefect") as server:
            run = CanaryRun(canaries, workdir, server, emulator, started)
            env = _worker_env(workdir, server, canaries)
            hosts_model_uri = _upload_models(endpoint, canaries, workdir)
            _add_credentials(run, env, endpoint, f"http://127.0.0.1:{free_port()}")
            settings = workdir / "settings.json"
            settings.write_text(
                json.dumps(
                    {
                        "hosts_model_uri": hosts_model_uri,
                        "k8s_model_uri": "s3://models/llama-8b",
                        "hosts_port": free_port(),
                    }
                )
            )
            _run_phase(run, "happy", env, settings)
            emulator.inject_fault("CrashLoopBackOff", image="vllm")
            try:
                _run_phase(run, "failures", env, settings)
            finally:
                emulator.clear_faults()
            yield run
    finally:
        emulator.stop()
        moto.stop()


def test_every_step_ran_and_ended_as_intended(canary_run: CanaryRun) -> None:
    # Control: the scans below mean something only if the flows really used the secrets.
    assert len(canary_run.steps) == 13, canary_run.steps
    wrong = [s for s in canary_run.steps if s["ok"] != s["expect_ok"]]
    assert not wrong, json.dumps(wrong, indent=1)


def test_no_process_held_a_credential_in_argv_or_environment(canary_run: CanaryRun) -> None:
    assert canary_run.worker_environ_had_canary, "control: the worker's env held its canary"
    assert not canary_run.watch_hits, "\n".join(sorted(canary_run.watch_hits))


def _api(server: PrefectServer, path: str, body: object) -> str:
    request = urllib.request.Request(
        f"{server.api_url}{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(response.read().decode())


def _all_pages(server: PrefectServer, path: str, body: dict[str, Any]) -> list[Any]:
    items: list[Any] = []
    while True:
        page = json.loads(_api(server, path, body | {"limit": 200, "offset": len(items)}))
        items += page
        if len(page) < 200:
            return items


def test_prefect_holds_no_credential(canary_run: CanaryRun) -> None:
    server, needles = canary_run.server, canary_run.canaries.everything()
    blocks = _api(server, "/block_documents/filter", {"include_secrets": True})
    logs = _all_pages(server, "/logs/filter", {})
    artifacts = _all_pages(server, "/artifacts/filter", {})
    flow_runs = _all_pages(server, "/flow_runs/filter", {})
    task_runs = _all_pages(server, "/task_runs/filter", {})
    events = json.loads(_api(server, "/events/filter", {"limit": 50}))
    event_pages = [events]
    while events.get("next_page"):
        with urllib.request.urlopen(events["next_page"], timeout=30) as response:
            events = json.loads(response.read())
        event_pages.append(events)
    # Controls: the blocks are there sealed, and the runs logged and published.
    assert blocks.count("bsc1.") >= 6
    assert len(logs) > 100 and artifacts and len(flow_runs) >= 13 and task_runs
    assert sum(len(p["events"]) for p in event_pages) > 10
    hits = scan_text("block documents (include_secrets)", blocks, needles)
    hits += scan_text("logs", json.dumps(logs), needles)
    hits += scan_text("artifacts", json.dumps(artifacts), needles)
    hits += scan_text("flow runs", json.dumps(flow_runs), needles)
    hits += scan_text("task runs", json.dumps(task_runs), needles)
    hits += scan_text("events", json.dumps(event_pages), needles)
    assert server.database_path is not None
    database_files = list(server.database_path.parent.glob("prefect.db*"))
    assert database_files
    hits += scan_files([*database_files, server.log_path], needles)
    assert not hits, "\n".join(hits)


def test_the_results_store_holds_no_credential(canary_run: CanaryRun) -> None:
    import sqlite3

    with sqlite3.connect(canary_run.store_path) as connection:
        names = {row[0] for row in connection.execute("SELECT name FROM deployments")}
    assert {"canary-cpu", "canary-gpu"} <= names  # control: the store recorded the runs
    hits = scan_files(
        canary_run.store_path.parent.glob("budcluster.db*"), canary_run.canaries.everything()
    )
    assert not hits, "\n".join(hits)


def test_no_file_left_anywhere_holds_a_credential(canary_run: CanaryRun) -> None:
    needles = canary_run.canaries.everything()
    root = secrets_root()
    # Control: the run's files are there to scan.
    assert (canary_run.workdir / "host-state").is_dir()
    hits = scan_files([canary_run.workdir], needles)
    hits += scan_files(
        [Path("/tmp"), Path("/var/tmp"), Path("/dev/shm")], needles, since=canary_run.started
    )
    hits += scan_files([root], needles)
    assert not hits, "\n".join(hits)


def test_the_cluster_holds_no_credential(canary_run: CanaryRun) -> None:
    import copy

    emulator = canary_run.emulator
    objects = emulator.call(lambda: copy.deepcopy(list(emulator.cluster.store.objects.values())))
    # Control: the transfer and the runtime really reached the cluster.
    kinds = {o.get("kind") for o in objects}
    assert {"PersistentVolumeClaim", "Job"} <= kinds, kinds
    hits = scan_text("cluster objects", json.dumps(objects), canary_run.canaries.credentials())
    secrets_left = [o["metadata"]["name"] for o in objects if o.get("kind") == "Secret"]
    assert not hits, f"{hits}; secrets left: {secrets_left}"
