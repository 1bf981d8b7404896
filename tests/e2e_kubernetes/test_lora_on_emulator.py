"""LoRA adapters on a Kubernetes cluster (the API emulator) through the real deploy-model flow.

The adapters come from S3 (moto) like the model. The emulator keeps its volumes' files
(``volumes_dir``), so each transfer Job really copies its source with the transfer engine
into the model's PVC, and the checks read the files from there:

- vLLM on the H100 node with two PEFT adapters: each adapter's own Job copies it into
  ``lora-<name>-<hash>`` of the model's PVC (no PVC of its own), the PVC is sized for the
  adapters too, the Deployment's args load them from ``/adapters/<name>`` where the pod
  mounts those directories, the engine serves each under its name, and the store holds
  them under the model. A redeploy that adds an adapter copies only the new one and
  benchmarks that adapter; a teardown leaves the model's volume, adapters included, as it
  leaves the model.
- llama.cpp on the CPU node with a GGUF model and a GGUF adapter: ``--lora-scaled
  /adapters/tone/tone.gguf:0``, ``GET /lora-adapters`` lists that in-pod path, and the
  deploy's benchmark of the adapter sends its ``lora`` selection with every request.

Each benchmark streams through the API server's service proxy (the worker cannot dial a
Service), and the engine's log shows what every request asked for: vLLM the adapter's
name as the model, llama-server the ``lora`` field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.k8s_emulator.emulator import Emulator, start_emulator
from tests.k8s_emulator.nodes import amx_cpu_node, h100_node
from tests.k8s_emulator.waiting import raw_request
from tests.modelfacts.test_modelfacts import tiny_gguf, write_gguf
from tests.support.flow_environment import flow_environment
from tests.support.lora_adapters import peft_adapter
from tests.support.prefect_server import free_port

pytestmark = pytest.mark.e2e
LLAMA_8B = Path(__file__).parents[1] / "fixtures" / "models" / "Llama-3.1-8B-Instruct"
S3_ENV = {"AWS_ACCESS_KEY_ID": "e2e-id", "AWS_SECRET_ACCESS_KEY": "e2e-secret"}
TONE_URI = "s3://models/adapters/tone"
SQL_URI = "s3://models/adapters/sql"
TONE_GGUF_URI = "s3://models/adapters/tone-gguf"


@dataclass(frozen=True)
class Platform:
    emulator: Emulator
    database_url: str
    volumes: Path
    adapters: dict[str, dict[str, bytes]]
    """Adapter URI -> {file name: bytes} as uploaded."""


def _gguf_adapter(tmp: Path) -> dict[str, bytes]:
    path = tmp / "tone.gguf"
    write_gguf(
        path,
        {
            "general.architecture": "qwen2",
            "general.type": "adapter",
            "adapter.type": "lora",
            "adapter.lora.alpha": 16,
        },
        [("blk.0.attn_q.weight.lora_a", [896, 8], 0), ("blk.0.attn_q.weight.lora_b", [8, 896], 0)],
    )
    return {"tone.gguf": path.read_bytes()}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    from moto.server import ThreadedMotoServer

    from blocks.kubeconfig import KubeconfigCredentials
    from blocks.s3 import S3Registry
    from budcluster.adapters.s3 import make_s3_client
    from budcluster.job_requests import RegisterClusterRequest
    from flows.register_cluster import register_cluster

    workdir = tmp_path_factory.mktemp("k8s-lora")
    volumes = workdir / "volumes"
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{port}"
    kube = start_emulator(
        flavour="kubernetes", nodes=[h100_node(), amx_cpu_node()], volumes_dir=volumes
    )
    tiny_gguf(workdir / "tiny.gguf")
    adapters = {
        TONE_URI: peft_adapter(8, 1),
        SQL_URI: peft_adapter(16, 2),
        TONE_GGUF_URI: _gguf_adapter(workdir),
    }
    objects = {
        "llama-8b/config.json": (LLAMA_8B / "config.json").read_bytes(),
        "tiny-gguf/tiny.gguf": (workdir / "tiny.gguf").read_bytes(),
    }
    for uri, files in adapters.items():
        prefix = uri.removeprefix("s3://models/")
        objects.update({f"{prefix}/{name}": data for name, data in files.items()})
    try:
        with flow_environment(workdir) as database_url:
            s3 = make_s3_client(
                endpoint_url=endpoint,
                region="us-east-1",
                access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
                secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
            )
            s3.create_bucket(Bucket="models")
            for key, body in objects.items():
                s3.put_object(Bucket="models", Key=key, Body=body)
            S3Registry.from_keys(
                "models",
                bucket="models",
                endpoint_url=endpoint,
                access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
                secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
            ).save("models")
            text = yaml.safe_dump(kube.kubeconfig_dict())
            KubeconfigCredentials.from_kubeconfig("lab-k8s", text).save("lab-k8s")
            register_cluster(
                RegisterClusterRequest(
                    name="lab-k8s", kind="kubernetes", credentials_block="lab-k8s"
                )
            )
            yield Platform(kube, database_url, volumes, adapters)
    finally:
        kube.stop()
        moto.stop()


def _request(name: str, adapters: list[dict[str, str]], **overrides: Any) -> Any:
    from budcluster.job_requests import DeployModelRequest

    values: dict[str, Any] = {
        "name": name,
        "cluster": "lab-k8s",
        "model": {"uri": "s3://models/llama-8b", "registry_block": "models"},
        "device": "cuda",
        "max_model_len": 8192,
        "concurrency": 1,
        "ready_timeout_s": 120,
        "adapters": [{**a, "registry_block": "models"} for a in adapters],
    }
    values.update(overrides)
    return DeployModelRequest.model_validate(values)


def _one(items: list[dict[str, Any]], what: str) -> dict[str, Any]:
    assert len(items) == 1, f"{what}: {[i['metadata']['name'] for i in items]}"
    return items[0]


def _runtime_pod(platform: Platform, deployment: str) -> dict[str, Any]:
    from budcluster.targets.kubernetes import release_for

    release = release_for(deployment)
    return _one(
        [
            p
            for p in platform.emulator.objects("pods")
            if p["metadata"]["labels"].get("app.kubernetes.io/instance") == release
            and p["status"].get("phase") == "Running"
        ],
        "runtime pods",
    )


def _in_pod(platform: Platform, pod: dict[str, Any], path: str) -> Path:
    """Where ``path`` of the engine container lies in the emulator's volumes."""
    (container,) = pod["spec"]["containers"]
    return platform.emulator.cluster.kubelet.volume_path(pod, container, path)


def _progress(platform: Platform, namespace: str, job: str) -> dict[str, Any]:
    (cm,) = [
        c
        for c in platform.emulator.objects("configmaps", "", namespace)
        if c["metadata"]["name"] == f"{job}-progress"
    ]
    return dict(json.loads(cm["data"]["progress.json"]))


def _proxy(
    platform: Platform, namespace: str, release: str, path: str, body: Any = None
) -> tuple[int, Any]:
    return raw_request(
        platform.emulator.url,
        "POST" if body is not None else "GET",
        f"/api/v1/namespaces/{namespace}/services/{release}:http/proxy/{path}",
        body,
    )


BENCH_REQUESTS, BENCH_WARMUP = 6, 1
BENCH_PROFILE = {
    "profile": "concurrency:2",
    "requests": BENCH_REQUESTS,
    "warmup_requests": BENCH_WARMUP,
    "input_tokens": "16",
    "output_tokens": "8",
}


def _assert_benchmarked_adapter(
    platform: Platform, deployment: str, summary: dict[str, Any], endpoint: str
) -> list[dict[str, Any]]:
    """The deploy's benchmark measured ``endpoint`` through the service proxy, streamed,
    and stored its run; returns the JSON bodies the engine received from the benchmark
    client (warm-up included)."""
    from sqlalchemy import func, select

    from budcluster.store import Store
    from budcluster.store.models import BenchmarkRequest, BenchmarkRun, Deployment
    from budcluster.targets.kubernetes import in_cluster_service

    requests = BENCH_REQUESTS
    assert summary["requests_completed"] == requests and summary["requests_failed"] == 0
    assert summary["output_tokens_source"] == ["usage"]
    service = in_cluster_service(endpoint)
    assert service is not None, endpoint
    assert summary["run"]["url"] == endpoint
    assert summary["run"]["settings"]["reached_via"] == (
        f"via API server service proxy {platform.emulator.url}/api/v1/namespaces/"
        f"{service.namespace}/services/{service.name}:{service.port}/proxy"
    )
    proxied = [
        p
        for p in platform.emulator.proxy_log()
        if p.service_id == service.proxy_id() and p.path == "/v1/completions"
    ]
    # Warm-up and measured requests, each streamed back event by event (8 tokens, [DONE]
    # and, for vLLM, the usage event that include_usage asks for).
    streamed = [p for p in proxied if p.streamed_events]
    assert len(streamed) == requests + BENCH_WARMUP
    assert {(p.method, p.status) for p in streamed} == {("POST", 200)}
    bodies = [
        s.json_body()
        for s in platform.emulator.engine_log()
        if s.pod.startswith(f"rt-{deployment}-")
        and s.path == "/v1/completions"
        and s.via == "service-proxy"
        and "aiohttp" in s.headers.get("user-agent", "")
    ]
    assert len(bodies) == len(streamed)
    assert all(isinstance(b, dict) and b.get("stream") is True for b in bodies), bodies

    store = Store(platform.database_url)
    try:
        with store.session() as session:
            row = session.scalar(select(Deployment).where(Deployment.name == deployment))
            assert row is not None
            run = session.get(BenchmarkRun, summary["store_run_id"])
            assert run is not None and run.deployment_id == row.id
            assert run.endpoint_url == endpoint
            stored = session.execute(
                select(BenchmarkRequest.warmup, func.count())
                .where(BenchmarkRequest.run_id == run.id, BenchmarkRequest.error.is_(None))
                .group_by(BenchmarkRequest.warmup)
            )
            assert dict(stored.tuples().all()) == {False: requests, True: BENCH_WARMUP}
            model, settings = run.model, dict(run.settings)
    finally:
        store.dispose()
    assert model == summary["run"]["model"]
    assert str(settings["reached_via"]).startswith("via API server service proxy")
    return [dict(b) for b in bodies]


def test_vllm_serves_peft_adapters_staged_into_the_model_volume(platform: Platform) -> None:
    from sqlalchemy import select

    from budcluster.planning.lora import adapter_selection, staged_adapter_name
    from budcluster.planning.models import RuntimePlan
    from budcluster.store import Store
    from budcluster.store.lora_adapters import list_adapters
    from budcluster.store.models import Deployment
    from budcluster.targets.kubernetes import model_release_for, namespace_for, release_for
    from budcluster.targets.kubernetes.names import adapter_job_for
    from flows.deploy_model import deploy_model

    outcome = deploy_model(_request("chat", [{"name": "tone", "uri": TONE_URI}]))
    plan = RuntimePlan.model_validate(outcome["plan"])
    namespace = namespace_for("bud", "llama-8b")
    model_release = model_release_for("llama-8b")
    claim = f"{model_release}-model"
    tone_dir = staged_adapter_name("tone", TONE_URI)

    # The adapter's own Job copied it into the model's PVC; no other PVC exists.
    job = _one(
        [
            j
            for j in platform.emulator.objects("jobs", "batch", namespace)
            if j["metadata"]["name"] == adapter_job_for(model_release, tone_dir)
        ],
        "adapter Jobs",
    )
    spec = job["spec"]["template"]["spec"]
    assert spec["containers"][0]["args"][:2] == [TONE_URI, f"/models/{tone_dir}"]
    assert [v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v] == [claim]  # fmt: skip
    pvc = _one(platform.emulator.objects("persistentvolumeclaims", "", namespace), "PVCs")
    assert pvc["metadata"]["name"] == claim
    tone_bytes = sum(len(b) for b in platform.adapters[TONE_URI].values())
    assert pvc["metadata"]["annotations"]["budcluster.io/adapter-bytes"] == str(tone_bytes)
    result = _progress(platform, namespace, job["metadata"]["name"])["result"]
    assert (result["files"], result["bytes_copied"]) == (2, tone_bytes)

    # The Deployment's container loads the adapter from where the pod mounts its directory.
    pod = _runtime_pod(platform, "chat")
    args = pod["spec"]["containers"][0]["args"]
    assert args[args.index("--enable-lora") :][:7] == [
        "--enable-lora", "--max-loras", "1", "--max-lora-rank", "8",
        "--lora-modules", "tone=/adapters/tone",
    ]  # fmt: skip
    for name, data in platform.adapters[TONE_URI].items():
        assert _in_pod(platform, pod, f"/adapters/tone/{name}").read_bytes() == data
    assert _in_pod(platform, pod, "/adapters/tone").parent.name == pvc["spec"]["volumeName"]

    # The engine serves it under its name; what the benchmark sends for it is answered by it.
    release = release_for("chat")
    status, models = _proxy(platform, namespace, release, "v1/models")
    assert status == 200
    assert [(m["id"], m["root"]) for m in models["data"]] == [
        ("chat", plan.args[plan.args.index("--model") + 1]),
        ("tone", "/adapters/tone"),
    ]
    model, extra = adapter_selection(plan, "tone")
    status, answer = _proxy(
        platform, namespace, release, "v1/completions",
        {"model": model, "prompt": "Hi", "max_tokens": 3, **extra},
    )  # fmt: skip
    assert status == 200 and answer["model"] == "tone"
    status, _ = _proxy(
        platform, namespace, release, "v1/completions", {"model": "sql", "prompt": "Hi"}
    )
    assert status == 404

    store = Store(platform.database_url)
    try:
        with store.session() as session:
            row = session.scalar(select(Deployment).where(Deployment.name == "chat"))
            assert row is not None and row.status.value == "ready"
            rows = list_adapters(session, row.model_id)
            assert [(a.name, a.source_uri, a.format.value, a.rank, a.alpha) for a in rows] == [
                ("tone", TONE_URI, "peft", 8, 16.0)
            ]
    finally:
        store.dispose()


def test_a_redeploy_with_another_adapter_copies_only_that_one_and_benchmarks_it(
    platform: Platform,
) -> None:
    from budcluster.planning.lora import staged_adapter_name
    from budcluster.targets.kubernetes import model_release_for, namespace_for
    from budcluster.targets.kubernetes.names import adapter_job_for
    from flows.deploy_model import deploy_model

    namespace = namespace_for("bud", "llama-8b")
    model_release = model_release_for("llama-8b")
    tone_dir = staged_adapter_name("tone", TONE_URI)
    sql_dir = staged_adapter_name("sql", SQL_URI)
    before = _in_pod(platform, _runtime_pod(platform, "chat"), "/adapters/tone")
    stamp = {p.name: p.stat().st_mtime_ns for p in before.iterdir()}

    outcome = deploy_model(
        _request(
            "chat",
            [{"name": "tone", "uri": TONE_URI}, {"name": "sql", "uri": SQL_URI}],
            benchmark={**BENCH_PROFILE, "adapter": "sql"},
        )
    )
    tone = _progress(platform, namespace, adapter_job_for(model_release, tone_dir))["result"]
    sql = _progress(platform, namespace, adapter_job_for(model_release, sql_dir))["result"]
    sql_bytes = sum(len(b) for b in platform.adapters[SQL_URI].values())
    assert (tone["bytes_copied"], tone["files_skipped"]) == (0, 2)
    assert (sql["bytes_copied"], sql["files_copied"]) == (sql_bytes, 2)
    assert {p.name: p.stat().st_mtime_ns for p in before.iterdir()} == stamp

    pod = _runtime_pod(platform, "chat")
    args = pod["spec"]["containers"][0]["args"]
    assert args[args.index("--enable-lora") :][:8] == [
        "--enable-lora", "--max-loras", "2", "--max-lora-rank", "16",
        "--lora-modules", "tone=/adapters/tone", "sql=/adapters/sql",
    ]  # fmt: skip
    assert (
        _in_pod(platform, pod, "/adapters/sql/adapter_config.json").read_bytes()
        == (platform.adapters[SQL_URI]["adapter_config.json"])
    )
    (pvc,) = platform.emulator.objects("persistentvolumeclaims", "", namespace)
    total = sum(len(b) for uri in (TONE_URI, SQL_URI) for b in platform.adapters[uri].values())
    assert pvc["metadata"]["annotations"]["budcluster.io/adapter-bytes"] == str(total)

    # The benchmark measured the sql adapter: vLLM selects a LoRA module by its name as
    # the request's model, and nothing else in the body names an adapter.
    bodies = _assert_benchmarked_adapter(
        platform, "chat", outcome["benchmark"], outcome["endpoint_url"]
    )
    assert {b["model"] for b in bodies} == {"sql"}
    assert not any("lora" in b for b in bodies)
    assert outcome["benchmark"]["run"]["model"] == "sql"


def test_a_teardown_keeps_the_model_volume_with_its_adapters(platform: Platform) -> None:
    from budcluster.job_requests import TeardownRequest
    from budcluster.planning.lora import staged_adapter_name
    from budcluster.targets.kubernetes import namespace_for
    from flows.teardown_deployment import teardown_deployment

    pod = _runtime_pod(platform, "chat")
    tone = _in_pod(platform, pod, "/adapters/tone")
    assert teardown_deployment(TeardownRequest(cluster="lab-k8s", deployment="chat")) == "deleted"
    assert not [
        d
        for d in platform.emulator.objects("deployments", "apps")
        if d["metadata"]["name"].startswith("rt-chat")
    ]
    namespace = namespace_for("bud", "llama-8b")
    assert platform.emulator.objects("persistentvolumeclaims", "", namespace)
    assert tone.name == staged_adapter_name("tone", TONE_URI)
    # The adapter's files (the transfer keeps its journal beside them, as for a model).
    files = sorted(p.name for p in tone.iterdir() if not p.name.startswith("."))
    assert files == sorted(platform.adapters[TONE_URI])


def test_llama_server_loads_a_gguf_adapter_from_the_model_volume(platform: Platform) -> None:
    from budcluster.planning.lora import adapter_selection, staged_adapter_name
    from budcluster.planning.models import RuntimePlan
    from budcluster.targets.kubernetes import namespace_for, release_for
    from flows.deploy_model import deploy_model

    outcome = deploy_model(
        _request(
            "tiny",
            [{"name": "tone", "uri": TONE_GGUF_URI}],
            model={"uri": "s3://models/tiny-gguf", "registry_block": "models"},
            device="cpu",
            max_model_len=4096,
            benchmark={**BENCH_PROFILE, "adapter": "tone"},
        )
    )
    plan = RuntimePlan.model_validate(outcome["plan"])
    assert plan.engine == "llama.cpp"
    pod = _runtime_pod(platform, "tiny")
    args = pod["spec"]["containers"][0]["args"]
    assert args[args.index("--lora-scaled") :][:2] == [
        "--lora-scaled",
        "/adapters/tone/tone.gguf:0",
    ]
    assert args.count("--lora-scaled") == 1
    in_volume = _in_pod(platform, pod, "/adapters/tone/tone.gguf")
    assert in_volume.read_bytes() == platform.adapters[TONE_GGUF_URI]["tone.gguf"]
    assert in_volume.parent.name == staged_adapter_name("tone", TONE_GGUF_URI)
    assert _in_pod(platform, pod, args[args.index("-m") + 1]).is_file()

    namespace, release = namespace_for("bud", "tiny-gguf"), release_for("tiny")
    status, loaded = _proxy(platform, namespace, release, "lora-adapters")
    assert status == 200
    assert [(a["id"], a["path"], a["scale"]) for a in loaded] == [
        (0, "/adapters/tone/tone.gguf", 0.0)
    ]
    model, extra = adapter_selection(plan, "tone")
    assert extra == {"lora": [{"id": 0, "scale": 1.0}]}
    status, answer = _proxy(
        platform, namespace, release, "v1/completions",
        {"model": model, "prompt": "Hi", "max_tokens": 3, **extra},
    )  # fmt: skip
    assert status == 200 and answer["usage"]["completion_tokens"] == 3

    # The deploy's benchmark measured the adapter: llama-server serves one model, and
    # every request turned the adapter (loaded at scale 0) on by its id.
    bodies = _assert_benchmarked_adapter(
        platform, "tiny", outcome["benchmark"], outcome["endpoint_url"]
    )
    assert {json.dumps(b["lora"]) for b in bodies} == {json.dumps([{"id": 0, "scale": 1.0}])}
    assert {b["model"] for b in bodies} == {plan.served_model_name}
    assert outcome["benchmark"]["run"]["settings"]["extra_body"] == {
        "lora": [{"id": 0, "scale": 1.0}]
    }
