"""Every chart installs, upgrades and uninstalls with Helm's own actions, against the emulator.

``helm_python.Config`` is the Helm v4 Go SDK's install / upgrade / uninstall / status, the
same code ``helm install --create-namespace --wait`` runs: discovery, OpenAPI, server-side
apply of each object, release storage as ``helm.sh/release.v1`` Secrets (written by client-go's
typed client as protobuf), and waiting with watches and kstatus. Nothing is rendered or
applied by this project's code here; the emulator's simulated controllers are what drive the
Deployments, DaemonSets and Jobs to ready, so ``--wait`` is a real wait (a pod that cannot
pull its image makes it fail, below).

What this proves and what it does not: see docs/k8s-emulator.md ("Helm's install action").
"""

from __future__ import annotations

import base64
import concurrent.futures
import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import helm_python
import pytest
import yaml
from helm_python import HelmContext
from helm_python.errors import HelmError, HelmReleaseError
from kubernetes.client import CoreV1Api

from budcluster.adapters import kubernetes as kube
from budcluster.gateway import GatewayRoute, gateway_values
from budcluster.targets.kubernetes import runtime_values
from tests.k8s_emulator.emulator import Emulator
from tests.k8s_emulator.fixtures import emulator_factory  # noqa: F401  (pytest fixture)
from tests.k8s_emulator.nodes import amx_cpu_node, gaudi2_node, h100_node
from tests.kubernetes.helpers import CHARTS, llama_transfer_values, make_tp2_plan, make_tp2_rollout

T = TypeVar("T")
Obj = dict[str, Any]
Factory = Callable[..., Emulator]

H100 = "gpu-h100-0"
WAIT = "watcher"  # Helm v4's default: watches plus kstatus
WAIT_S = 20  # Helm's own --timeout
CALL_S = 40.0  # a Go call that has not answered by then is a hang: the test fails
RELEASE_SECRET = "helm.sh/release.v1"


def _helm(what: str, call: Callable[[HelmContext], T], timeout_s: float = CALL_S) -> T:
    """Run one SDK call in a worker thread; past ``timeout_s`` it is cancelled and the test
    fails, so a hang cannot block CI (calls without a context only stop waiting)."""
    context = HelmContext()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="helm")
    try:
        return pool.submit(call, context).result(timeout=timeout_s)
    except concurrent.futures.TimeoutError:
        context.cancel()
        pytest.fail(f"helm {what} did not answer within {timeout_s:.0f} s")
    finally:
        pool.shutdown(wait=False)


@dataclass
class Case:
    chart: str
    release: str
    namespace: str
    values: Obj
    upgrade: Obj
    prerequisites: list[Obj] = field(default_factory=list)


def _tp2_values(**overrides: Any) -> Obj:
    values = runtime_values(
        make_tp2_rollout(make_tp2_plan(node=H100)),
        pvc_name="llama-model",
        subdir="llama",
        openshift=False,
        tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    )
    values.update(overrides)
    return values


def _transfer_values(**overrides: Any) -> Obj:
    return llama_transfer_values("ghcr.io/budecosystem/bud-serve-cluster:0.1.0", **overrides)


ROUTE_A = GatewayRoute("llama-8b", "llama-8b", "http://rt-a.bud-llama.svc:8000/v1")
ROUTE_B = GatewayRoute("qwen-0-5b", "qwen-0-5b", "http://rt-b.bud-qwen.svc:8000/v1")


def _cases() -> list[Case]:
    model_pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "llama-model", "namespace": "bud-llama"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "200Gi"}}},
    }
    s3_secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "llama-s3", "namespace": "bud-transfer"},
        "type": "Opaque",
        "stringData": {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "example"},
    }
    return [
        Case(
            "node_info_collector",
            "node-info",
            "bud-system",
            {"image": "ghcr.io/budecosystem/bud-serve-cluster:0.1.0"},
            {
                "image": "ghcr.io/budecosystem/bud-serve-cluster:0.1.0",
                "refreshSeconds": 60,
                "gaudi": {"enabled": False},
            },
        ),
        Case(
            "model_transfer",
            "model-llama",
            "bud-transfer",
            _transfer_values(),
            # A Job's pod template is immutable; its deadline is not.
            _transfer_values(activeDeadlineSeconds=43200),
            prerequisites=[s3_secret],
        ),
        Case(
            "bud_runtime_container",
            "rt-llama",
            "bud-llama",
            _tp2_values(),
            _tp2_values(replicas=2),
            prerequisites=[model_pvc],
        ),
        Case(
            "litellm_container",
            "gateway",
            "bud-gateway",
            gateway_values([ROUTE_A]),
            gateway_values([ROUTE_A, ROUTE_B]),
        ),
    ]


CASES = _cases()


# --- the emulator, Helm, and reading back -------------------------------------------------------


@pytest.fixture
def k8s(emulator_factory: Factory) -> Emulator:  # noqa: F811
    return emulator_factory(
        flavour="kubernetes", nodes=[h100_node(), gaudi2_node(), amx_cpu_node()]
    )


@pytest.fixture
def helm(k8s: Emulator) -> Iterator[Callable[[str], helm_python.Config]]:
    """``helm(namespace)``: Helm's configuration for the emulator, as ``--namespace`` sets it."""
    configs: list[helm_python.Config] = []
    kubeconfig = yaml.safe_dump(k8s.kubeconfig_dict())

    def make(namespace: str) -> helm_python.Config:
        config = helm_python.Config(kubeconfig_content=kubeconfig, namespace=namespace)
        configs.append(config)
        return config

    yield make
    for config in configs:
        config.close()


def _live(k8s: Emulator, obj: Obj, namespace: str) -> Obj | None:
    def find() -> Obj | None:
        rt = k8s.cluster.registry.by_kind(obj["apiVersion"], obj["kind"])
        assert rt is not None, f"the emulator does not serve {obj['apiVersion']} {obj['kind']}"
        ns = obj["metadata"].get("namespace", namespace) if rt.namespaced else None
        found = k8s.cluster.store.find(rt, ns, obj["metadata"]["name"])
        return json.loads(json.dumps(found)) if found is not None else None

    return k8s.call(find)


def _manifest_objects(release: Obj) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(release["manifest"]) if doc]


def _release_secrets(k8s: Emulator, namespace: str, release: str) -> list[Obj]:
    return [
        s
        for s in k8s.objects("secrets", namespace=namespace)
        if s.get("type") == RELEASE_SECRET
        and (s["metadata"].get("labels") or {}).get("name") == release
    ]


def _stored_release(secret: Obj) -> Obj:
    """Helm's storage encoding: gzip'd JSON, base64'd, in the Secret's (base64) data."""
    inner = base64.b64decode(base64.b64decode(secret["data"]["release"]))
    decoded: Obj = json.loads(gzip.decompress(inner))
    return decoded


def _by_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def _create_prerequisites(k8s: Emulator, objects: list[Obj]) -> None:
    """What exists before ``helm install`` (the model's PVC, the S3 keys), created by
    the official client as the flows do; their namespace then exists already."""
    core = CoreV1Api(kube.api_client_from_kubeconfig(k8s.kubeconfig_dict()))
    for namespace in sorted({o["metadata"]["namespace"] for o in objects}):
        core.create_namespace({"metadata": {"name": namespace}})
    for obj in objects:
        namespace = obj["metadata"]["namespace"]
        if obj["kind"] == "Secret":
            core.create_namespaced_secret(namespace, obj)
        else:
            core.create_namespaced_persistent_volume_claim(namespace, obj)


# --- install, upgrade, uninstall ------------------------------------------------------------------


def _check_ready(k8s: Emulator, objects: list[Obj], namespace: str) -> None:
    """What ``--wait`` waited for is true once install returns."""
    for obj in objects:
        live = _live(k8s, obj, namespace)
        assert live is not None
        status = live.get("status") or {}
        if obj["kind"] == "Deployment":
            assert status.get("readyReplicas") == live["spec"]["replicas"], status
            assert status.get("observedGeneration") == live["metadata"]["generation"]
        elif obj["kind"] == "DaemonSet":
            assert status.get("numberReady") == status.get("desiredNumberScheduled"), status
        elif obj["kind"] == "Job":
            # kstatus calls a started Job Current; only --wait-for-jobs (which the SDK's
            # install does not expose) waits for completion.
            assert status.get("startTime"), status
        elif obj["kind"] == "PersistentVolumeClaim":
            assert status.get("phase") == "Bound", status


def _check_upgraded(k8s: Emulator, case: Case, before: list[Obj], after: list[Obj]) -> None:
    names = {(o["kind"], o["metadata"]["name"]) for o in after}
    if case.chart == "node_info_collector":
        gone = _by_kind(before, "DaemonSet")
        assert [
            d["metadata"]["name"] for d in gone if ("DaemonSet", d["metadata"]["name"]) not in names
        ] == ["node-info-gaudi"]
        assert (
            _live(
                k8s,
                next(d for d in gone if d["metadata"]["name"] == "node-info-gaudi"),
                case.namespace,
            )
            is None
        )
        for ds in _by_kind(after, "DaemonSet"):
            live = _live(k8s, ds, case.namespace)
            assert live is not None
            env = {
                e["name"]: e.get("value")
                for e in live["spec"]["template"]["spec"]["containers"][0]["env"]
            }
            assert env["REFRESH_SECONDS"] == "60"
    elif case.chart == "model_transfer":
        job = _live(k8s, _by_kind(after, "Job")[0], case.namespace)
        assert job is not None and job["spec"]["activeDeadlineSeconds"] == 43200
    elif case.chart == "bud_runtime_container":
        deployment = _live(k8s, _by_kind(after, "Deployment")[0], case.namespace)
        assert deployment is not None and deployment["spec"]["replicas"] == 2
        assert deployment["status"]["readyReplicas"] == 2
        pdb = _live(k8s, _by_kind(after, "PodDisruptionBudget")[0], case.namespace)
        assert pdb is not None and pdb["spec"]["minAvailable"] == 1
    elif case.chart == "litellm_container":
        config = _live(k8s, _by_kind(after, "ConfigMap")[0], case.namespace)
        assert config is not None
        bases = [
            m["litellm_params"]["api_base"]
            for m in yaml.safe_load(config["data"]["config.yaml"])["model_list"]
        ]
        assert bases == [ROUTE_A.api_base, ROUTE_B.api_base]


@pytest.mark.parametrize("case", CASES, ids=[c.chart for c in CASES])
def test_helm_installs_upgrades_and_uninstalls(
    k8s: Emulator, helm: Callable[[str], helm_python.Config], case: Case
) -> None:
    if case.prerequisites:
        _create_prerequisites(k8s, case.prerequisites)
    config = helm(case.namespace)
    chart = CHARTS / case.chart
    released = _helm(
        "install",
        lambda ctx: config.install(
            chart,
            case.release,
            case.values,
            context=ctx,
            create_namespace=True,
            wait=WAIT,
            timeout=WAIT_S,
        ),
    )
    assert released["status"] == "deployed" and released["revision"] == 1
    namespace = _live(
        k8s, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": case.namespace}}, ""
    )
    assert namespace is not None and namespace["status"]["phase"] == "Active"

    objects = _manifest_objects(released)
    assert objects
    _check_ready(k8s, objects, case.namespace)
    for obj in objects:
        live = _live(k8s, obj, case.namespace)
        assert live is not None, f"{obj['kind']} {obj['metadata']['name']} was not created"
        assert live["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        annotations = live["metadata"]["annotations"]
        assert annotations["meta.helm.sh/release-name"] == case.release
        assert annotations["meta.helm.sh/release-namespace"] == case.namespace

    status = _helm("status", lambda _ctx: config.status(case.release))
    assert status["status"] == "deployed" and status["manifest"] == released["manifest"]
    (stored,) = _release_secrets(k8s, case.namespace, case.release)
    assert stored["metadata"]["name"] == f"sh.helm.release.v1.{case.release}.v1"
    labels = stored["metadata"]["labels"]
    assert {k: labels[k] for k in ("name", "owner", "status", "version")} == {
        "name": case.release,
        "owner": "helm",
        "status": "deployed",
        "version": "1",
    }
    assert _stored_release(stored)["manifest"] == released["manifest"]

    upgraded = _helm(
        "upgrade",
        lambda ctx: config.upgrade(
            chart, case.release, case.upgrade, context=ctx, wait=WAIT, timeout=WAIT_S
        ),
    )
    assert upgraded["status"] == "deployed" and upgraded["revision"] == 2
    after = _manifest_objects(upgraded)
    _check_ready(k8s, after, case.namespace)
    _check_upgraded(k8s, case, objects, after)
    history = {
        s["metadata"]["labels"]["version"]: s["metadata"]["labels"]["status"]
        for s in _release_secrets(k8s, case.namespace, case.release)
    }
    assert history == {"1": "superseded", "2": "deployed"}

    released_names = {o["metadata"]["name"] for o in _by_kind(after, "ConfigMap")}
    written_by_pods = {
        c["metadata"]["name"]
        for c in k8s.objects("configmaps", namespace=case.namespace)
        if c["metadata"]["name"] not in released_names
    }
    removed = _helm(
        "uninstall", lambda _ctx: config.uninstall(case.release, wait=WAIT, timeout=WAIT_S)
    )
    assert removed["release"]["name"] == case.release
    kept = {
        (o["kind"], o["metadata"]["name"])
        for o in after
        if (o["metadata"].get("annotations") or {}).get("helm.sh/resource-policy") == "keep"
    }
    for obj in after:
        live = _live(k8s, obj, case.namespace)
        if (obj["kind"], obj["metadata"]["name"]) in kept:
            assert live is not None, "helm.sh/resource-policy: keep must survive uninstall"
        else:
            assert live is None, f"{obj['kind']} {obj['metadata']['name']} survived uninstall"
    assert _release_secrets(k8s, case.namespace, case.release) == []
    # Helm never deletes the namespace it created, nor what the release's pods wrote.
    assert _live(
        k8s, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": case.namespace}}, ""
    )
    left = {c["metadata"]["name"] for c in k8s.objects("configmaps", namespace=case.namespace)}
    assert written_by_pods <= left
    with pytest.raises(HelmError):
        _helm("status", lambda _ctx: config.status(case.release))


# --- what a real cluster refuses, Helm reports ----------------------------------------------------


def test_wait_fails_while_the_gateway_cannot_pull_its_image(
    k8s: Emulator, helm: Callable[[str], helm_python.Config]
) -> None:
    """``--wait`` is a real wait: with the image unpullable the Deployment never becomes
    Current, Helm times out and records the release as failed."""
    k8s.inject_fault(
        "ImagePullBackOff", selector="app.kubernetes.io/instance=gateway", namespace="bud-gateway"
    )
    config = helm("bud-gateway")
    # The SDK reports the wait's deadline as HelmCancelledError, with kstatus's verdict.
    with pytest.raises(
        HelmError, match=r"Deployment/bud-gateway/gateway not ready\. status: InProgress"
    ):
        _helm(
            "install",
            lambda ctx: config.install(
                CHARTS / "litellm_container",
                "gateway",
                gateway_values([ROUTE_A]),
                context=ctx,
                create_namespace=True,
                wait=WAIT,
                timeout=3,
            ),
        )
    assert _helm("status", lambda _ctx: config.status("gateway"))["status"] == "failed"
    pods = k8s.objects("pods", namespace="bud-gateway")
    assert pods and all(
        s["state"]["waiting"]["reason"] in ("ErrImagePull", "ImagePullBackOff")
        for p in pods
        for s in p["status"]["containerStatuses"]
    )


def test_upgrade_that_changes_a_jobs_pod_template_is_refused(
    k8s: Emulator, helm: Callable[[str], helm_python.Config]
) -> None:
    """A Job's pod template is immutable: Helm's upgrade gets the server's 422 and the
    release revision is failed, the running Job untouched (rerun a transfer by a new
    release, or uninstall first)."""
    transfer = next(c for c in CASES if c.chart == "model_transfer")
    _create_prerequisites(k8s, transfer.prerequisites)
    config = helm(transfer.namespace)
    chart = CHARTS / transfer.chart
    _helm(
        "install",
        lambda ctx: config.install(
            chart, transfer.release, transfer.values, context=ctx, wait=WAIT, timeout=WAIT_S
        ),
    )
    with pytest.raises(HelmReleaseError, match=r"spec\.template.*field is immutable"):
        _helm(
            "upgrade",
            lambda ctx: config.upgrade(
                chart, transfer.release, _transfer_values(workers=8), context=ctx, timeout=WAIT_S
            ),
        )
    job = next(j for j in k8s.objects("jobs", "batch", transfer.namespace))
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][3] == "4"
    history = _helm("history", lambda _ctx: config.history(transfer.release))
    assert [(r["revision"], r["status"]) for r in history] == [(1, "deployed"), (2, "failed")]


def test_protobuf_bodies_the_emulator_cannot_read_are_refused_as_the_server_would(
    k8s: Emulator,
) -> None:
    """Helm's release Secrets arrive as protobuf and are decoded (above); bytes without
    the ``k8s\\0`` envelope are a 400, a kind without a decoder is 415 (JSON then)."""
    import urllib.error
    import urllib.request

    core = CoreV1Api(kube.api_client_from_kubeconfig(k8s.kubeconfig_dict()))
    core.create_namespace({"metadata": {"name": "pb"}})

    def post(plural: str, body: bytes) -> tuple[int, Obj]:
        request = urllib.request.Request(
            f"{k8s.url}/api/v1/namespaces/pb/{plural}",
            data=body,
            method="POST",
            headers={"Content-Type": "application/vnd.kubernetes.protobuf"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    code, status = post("secrets", b'{"metadata": {"name": "x"}}')
    assert code == 400 and status["reason"] == "BadRequest"
    assert "does not appear to be a protobuf message" in status["message"]
    code, status = post("configmaps", b"k8s\x00")
    assert code == 415 and status["reason"] == "UnsupportedMediaType"
