"""The flows on a Kubernetes cluster (the API emulator): register, detect, deploy a TP-2
model onto the right node through its Service, keep the revision, tear it down, and a
rollout that crashes ending failed with its log and nothing left behind.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from tests.k8s_emulator.emulator import Emulator, start_emulator
from tests.k8s_emulator.nodes import amx_cpu_node, gaudi2_node, h100_mig_node, h100_node
from tests.support.flow_environment import flow_environment
from tests.support.prefect_server import free_port

pytestmark = pytest.mark.e2e
LLAMA_8B = Path(__file__).parents[1] / "fixtures" / "models" / "Llama-3.1-8B-Instruct"
S3_ENV = {"AWS_ACCESS_KEY_ID": "e2e-id", "AWS_SECRET_ACCESS_KEY": "e2e-secret"}


@dataclass(frozen=True)
class Platform:
    emulator: Emulator
    openshift: Emulator
    database_url: str


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    from moto.server import ThreadedMotoServer

    from blocks.kubeconfig import KubeconfigCredentials
    from blocks.s3 import S3Registry
    from budcluster.adapters.s3 import make_s3_client

    workdir = tmp_path_factory.mktemp("k8s-flows")
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{port}"
    kube = start_emulator(
        flavour="kubernetes", nodes=[h100_node(), h100_mig_node(), gaudi2_node(), amx_cpu_node()]
    )
    openshift = start_emulator(flavour="openshift", nodes=[amx_cpu_node()])
    try:
        with flow_environment(workdir) as database_url:
            s3 = make_s3_client(
                endpoint_url=endpoint,
                region="us-east-1",
                access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
                secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
            )
            s3.create_bucket(Bucket="models")
            s3.put_object(
                Bucket="models",
                Key="llama-8b/config.json",
                Body=(LLAMA_8B / "config.json").read_bytes(),
            )
            S3Registry.from_keys("models", bucket="models", endpoint_url=endpoint, **_keys()).save(
                "models"
            )
            for name, emu in (("lab-k8s", kube), ("lab-ocp", openshift)):
                text = yaml.safe_dump(emu.kubeconfig_dict())
                KubeconfigCredentials.from_kubeconfig(name, text).save(name)
            yield Platform(kube, openshift, database_url)
    finally:
        kube.stop()
        openshift.stop()
        moto.stop()
        shutil.rmtree(Path("/tmp/budcluster-metadata"), ignore_errors=True)


def _keys() -> dict[str, str]:
    return {
        "access_key_id": S3_ENV["AWS_ACCESS_KEY_ID"],
        "secret_access_key": S3_ENV["AWS_SECRET_ACCESS_KEY"],
    }


def _deploy_request(name: str, **overrides: Any) -> Any:
    from budcluster.job_requests import DeployModelRequest

    values: dict[str, Any] = {
        "name": name,
        "cluster": "lab-k8s",
        "model": {"uri": "s3://models/llama-8b", "registry_block": "models"},
        "device": "cuda",
        "max_model_len": 8192,
        "concurrency": 1,
        "ready_timeout_s": 120,
    }
    values.update(overrides)
    return DeployModelRequest.model_validate(values)


def test_register_both_flavours_and_refuse_a_duplicate(platform: Platform) -> None:
    from budcluster.job_requests import RegisterClusterRequest
    from budcluster.store import Conflict, Store
    from budcluster.store.models import Cluster
    from flows.register_cluster import register_cluster

    register_cluster(
        RegisterClusterRequest(name="lab-k8s", kind="kubernetes", credentials_block="lab-k8s")
    )
    register_cluster(
        RegisterClusterRequest(name="lab-ocp", kind="kubernetes", credentials_block="lab-ocp")
    )
    with pytest.raises(Conflict, match="already registered with server URL"):
        register_cluster(
            RegisterClusterRequest(
                name="lab-k8s-again", kind="kubernetes", credentials_block="lab-k8s"
            )
        )
    store = Store(platform.database_url)
    try:
        with store.session() as session:
            kinds = {c.name: (c.kind.value, c.server_url) for c in session.scalars(select(Cluster))}
    finally:
        store.dispose()
    assert kinds["lab-k8s"] == ("kubernetes", platform.emulator.url)
    assert kinds["lab-ocp"][0] == "openshift"
    assert "lab-k8s-again" not in kinds


def test_detect_nodes_finds_each_accelerator(platform: Platform) -> None:
    from flows.detect_nodes import detect_nodes

    inventories = {inv.node_name: inv for inv in detect_nodes("lab-k8s")}
    # The collector's capture machine has one H100; the node advertises 8 through its
    # device plugin. The inventory keeps what the collector saw and notes the difference.
    h100 = inventories["gpu-h100-0"]
    assert h100.nvidia is not None and h100.nvidia.gpus[0].product == "NVIDIA H100 80GB HBM3"
    assert any("allocatable nvidia.com/gpu=8" in note for note in h100.notes)
    mig = inventories["gpu-h100-mig-0"].nvidia.gpus[0]  # type: ignore[union-attr]
    assert mig.mig_mode == "enabled" and len(mig.mig_devices) == 4
    assert len(inventories["gaudi2-0"].gaudi.devices) == 8  # type: ignore[union-attr]
    assert "amx_bf16" in inventories["cpu-amx-0"].cpu.isa_flags  # type: ignore[union-attr]


def test_deploy_serves_through_its_service_keeps_its_revision_and_tears_down(
    platform: Platform,
) -> None:
    from budcluster.job_requests import TeardownRequest
    from budcluster.store import Store
    from budcluster.store.models import Deployment, DeploymentRevision
    from flows.deploy_model import deploy_model
    from flows.teardown_deployment import teardown_deployment

    outcome = deploy_model(_deploy_request("llama-8b"))
    plan = outcome["plan"]
    node = plan["placements"][0]["node_name"]
    assert node in ("gpu-h100-0", "gpu-h100-mig-0")
    runtime_pods = [
        p
        for p in platform.emulator.objects("pods")
        if p["spec"].get("nodeName") == node
        and any("vllm" in c["image"] for c in p["spec"]["containers"])
    ]
    assert runtime_pods, "no runtime pod on the planned node"
    limits = runtime_pods[0]["spec"]["containers"][0]["resources"]["limits"]
    for resource, quantity in plan["resources"]["limits"].items():
        if resource.startswith("nvidia.com/"):
            assert limits[resource] == quantity
    store = Store(platform.database_url)
    try:
        with store.session() as session:
            row = session.scalar(select(Deployment).where(Deployment.name == "llama-8b"))
            assert row is not None and row.status.value == "ready"
            revisions = list(
                session.scalars(
                    select(DeploymentRevision).where(DeploymentRevision.deployment_id == row.id)
                )
            )
            assert revisions and any(m["kind"] == "Deployment" for m in revisions[-1].manifests)
    finally:
        store.dispose()
    assert (
        teardown_deployment(TeardownRequest(cluster="lab-k8s", deployment="llama-8b")) == "deleted"
    )
    left = [
        o
        for o in platform.emulator.objects("deployments", "apps")
        if "llama-8b" in o["metadata"]["name"]
    ]
    assert not left


def test_a_crashing_rollout_fails_with_its_log_and_is_removed(platform: Platform) -> None:
    from budcluster.store import Store
    from budcluster.store.models import Deployment
    from flows.deploy_model import deploy_model

    platform.emulator.inject_fault("CrashLoopBackOff", image="vllm")
    try:
        with pytest.raises(Exception, match="CrashLoopBackOff"):
            deploy_model(_deploy_request("llama-crash"))
    finally:
        platform.emulator.clear_faults()
    store = Store(platform.database_url)
    try:
        with store.session() as session:
            row = session.scalar(select(Deployment).where(Deployment.name == "llama-crash"))
            assert row is not None and row.status.value == "failed"
            assert "CrashLoopBackOff" in (row.status_reason or "")
    finally:
        store.dispose()
    assert not [
        o
        for o in platform.emulator.objects("deployments", "apps")
        if "llama-crash" in o["metadata"]["name"]
    ]


def test_cluster_health_records_node_readiness(platform: Platform) -> None:
    from flows.cluster_health import cluster_health

    rows = [r for r in cluster_health() if r["cluster"] == "lab-k8s"]
    assert {r["node"] for r in rows} >= {"gpu-h100-0", "gaudi2-0", "cpu-amx-0"}
    assert all(r["reachable"] and r["ready"] and r["schedulable"] for r in rows)
