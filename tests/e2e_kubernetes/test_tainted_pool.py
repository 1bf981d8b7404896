"""deploy-model onto a tainted GPU pool (the API emulator, whose scheduler filters nodes as
kube-scheduler's TaintToleration, NodeUnschedulable and NodeAffinity plugins do).

The only whole-GPU node carries ``nvidia.com/gpu=present:NoSchedule``, as GPU node pools
on EKS, AKS and GKE are commonly tainted; the MIG node is cordoned. The collector still
inventories both (it tolerates every taint) and the inventory records their taints and
cordon. Without tolerations deploy-model fails at planning, before anything is installed,
naming the node, its taint and the ``tolerations`` field; with the toleration it deploys
with a LoRA adapter, and the model's transfer Job, the adapter's own transfer Job (which
copies into the model's volume, so it must reach the same pool) and the runtime's pod all
land on the tainted node.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.k8s_emulator.emulator import Emulator, start_emulator
from tests.k8s_emulator.nodes import Taint, amx_cpu_node, h100_mig_node, h100_node
from tests.support.flow_environment import flow_environment
from tests.support.lora_adapters import peft_adapter
from tests.support.prefect_server import free_port

pytestmark = pytest.mark.e2e
LLAMA_8B = Path(__file__).parents[1] / "fixtures" / "models" / "Llama-3.1-8B-Instruct"
S3_ENV = {"AWS_ACCESS_KEY_ID": "e2e-id", "AWS_SECRET_ACCESS_KEY": "e2e-secret"}
GPU_TOLERATION = {
    "key": "nvidia.com/gpu",
    "operator": "Equal",
    "value": "present",
    "effect": "NoSchedule",
}
TONE_URI = "s3://models/adapters/tone"


@dataclass(frozen=True)
class Pool:
    emulator: Emulator
    database_url: str


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pool]:
    from moto.server import ThreadedMotoServer

    from blocks.kubeconfig import KubeconfigCredentials
    from blocks.s3 import S3Registry
    from budcluster.adapters.s3 import make_s3_client
    from budcluster.job_requests import RegisterClusterRequest
    from flows.register_cluster import register_cluster

    workdir = tmp_path_factory.mktemp("k8s-taints")
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{port}"
    gpu = h100_node()
    gpu.taints = [Taint("nvidia.com/gpu", "NoSchedule", "present")]
    mig = h100_mig_node()
    mig.unschedulable = True
    kube = start_emulator(flavour="kubernetes", nodes=[gpu, mig, amx_cpu_node()])
    try:
        with flow_environment(workdir) as database_url:
            s3 = make_s3_client(
                endpoint_url=endpoint,
                region="us-east-1",
                access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
                secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
            )
            s3.create_bucket(Bucket="models")
            for file in sorted(LLAMA_8B.iterdir()):
                s3.put_object(Bucket="models", Key=f"llama-8b/{file.name}", Body=file.read_bytes())
            for name, data in peft_adapter(4, 3).items():
                s3.put_object(Bucket="models", Key=f"adapters/tone/{name}", Body=data)
            S3Registry.from_keys(
                "models",
                bucket="models",
                endpoint_url=endpoint,
                access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
                secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
            ).save("models")
            KubeconfigCredentials.from_kubeconfig(
                "tainted", yaml.safe_dump(kube.kubeconfig_dict())
            ).save("tainted")
            register_cluster(
                RegisterClusterRequest(
                    name="tainted", kind="kubernetes", credentials_block="tainted"
                )
            )
            yield Pool(kube, database_url)
    finally:
        kube.stop()
        moto.stop()


def _request(name: str, **overrides: Any) -> Any:
    from budcluster.job_requests import DeployModelRequest

    values: dict[str, Any] = {
        "name": name,
        "cluster": "tainted",
        "model": {"uri": "s3://models/llama-8b", "registry_block": "models"},
        "device": "cuda",
        "max_model_len": 8192,
        "concurrency": 1,
        "ready_timeout_s": 120,
        **overrides,
    }
    return DeployModelRequest.model_validate(values)


def _installed(emulator: Emulator) -> list[str]:
    """Everything deploy-model could have installed: transfer Jobs, volumes, runtimes."""
    return [
        f"{kind}/{o['metadata']['name']}"
        for kind, group in (
            ("jobs", "batch"),
            ("persistentvolumeclaims", ""),
            ("deployments", "apps"),
            ("services", ""),
        )
        for o in emulator.objects(kind, group)
        if o["metadata"].get("namespace", "").startswith("bud-")
        and o["metadata"]["namespace"] != "bud-system"
    ]


def test_detection_records_the_taint_and_the_cordon(pool: Pool) -> None:
    from budcluster.store import Store
    from budcluster.store.node_inventory import recorded_inventories
    from flows.detect_nodes import detect_nodes

    inventories = {inv.node_name: inv for inv in detect_nodes("tainted")}
    gpu = inventories["gpu-h100-0"].scheduling
    assert gpu is not None and not gpu.unschedulable
    assert [t.describe() for t in gpu.taints] == ["nvidia.com/gpu=present:NoSchedule"]
    assert gpu.labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    mig = inventories["gpu-h100-mig-0"].scheduling
    assert mig is not None and mig.unschedulable and not mig.taints
    # The collector tolerates every taint, so the tainted node reported its hardware.
    assert inventories["gpu-h100-0"].nvidia is not None
    store = Store(pool.database_url)
    try:
        with store.session() as session:
            recorded = {inv.node_name: inv for inv in recorded_inventories(session)["tainted"]}
    finally:
        store.dispose()
    assert recorded["gpu-h100-mig-0"].scheduling.unschedulable  # type: ignore[union-attr]
    assert recorded["gpu-h100-0"].scheduling.taints[0].key == "nvidia.com/gpu"  # type: ignore[union-attr]


def test_without_the_toleration_it_fails_before_installing_anything(pool: Pool) -> None:
    from budcluster.planning import NoFeasiblePlan
    from flows.deploy_model import deploy_model

    with pytest.raises(NoFeasiblePlan) as refused:
        deploy_model(_request("llama-untolerated"))
    reason = refused.value.reason
    assert reason.startswith(
        "llama-8b (15.0 GiB of weights, 8192 tokens x 1 sequences) fits no cuda"
    )
    assert reason.endswith(
        "nodes the pods cannot go to, left out: gpu-h100-0: untolerated taint(s) "
        "nvidia.com/gpu=present:NoSchedule; gpu-h100-mig-0: cordoned (spec.unschedulable)"
    )
    assert refused.value.fixes[0] == (
        "set tolerations (deploy-model's tolerations, the catalogue's hardware.tolerations) "
        "to tolerate the taints, e.g. [{key: nvidia.com/gpu, operator: Equal, value: present, "
        "effect: NoSchedule}]"
    )
    assert "uncordon gpu-h100-mig-0" in refused.value.fixes[1]
    assert _installed(pool.emulator) == []


def test_a_wrong_node_selector_fails_naming_the_field(pool: Pool) -> None:
    from budcluster.planning import NoFeasiblePlan
    from flows.deploy_model import deploy_model

    with pytest.raises(NoFeasiblePlan, match="node_selector pool does not match") as refused:
        deploy_model(
            _request(
                "llama-elsewhere", tolerations=[GPU_TOLERATION], node_selector={"pool": "serving"}
            )
        )
    assert any(fix.startswith("set node_selector") for fix in refused.value.fixes)
    assert _installed(pool.emulator) == []


def test_with_the_toleration_it_deploys_onto_the_tainted_node_with_an_adapter(
    pool: Pool,
) -> None:
    from budcluster.planning.lora import staged_adapter_name
    from budcluster.targets.kubernetes import model_release_for, release_for
    from budcluster.targets.kubernetes.names import adapter_job_for
    from flows.deploy_model import deploy_model

    selector = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    outcome = deploy_model(
        _request(
            "llama-tolerated",
            tolerations=[GPU_TOLERATION],
            node_selector=selector,
            adapters=[{"name": "tone", "uri": TONE_URI, "registry_block": "models"}],
        )
    )
    assert outcome["status"] == "ready"
    assert {p["node_name"] for p in outcome["plan"]["placements"]} == {"gpu-h100-0"}
    assert (
        "left out, the pods cannot go there: cpu-amx-0: node_selector nvidia.com/gpu.product "
        "does not match (the node has no such label); gpu-h100-mig-0: cordoned "
        "(spec.unschedulable)"
    ) in outcome["plan"]["decisions"]
    release = release_for("llama-tolerated")
    (runtime,) = [
        p
        for p in pool.emulator.objects("pods")
        if p["metadata"]["labels"].get("app.kubernetes.io/instance") == release
    ]
    assert runtime["spec"]["nodeName"] == "gpu-h100-0"
    assert GPU_TOLERATION in runtime["spec"]["tolerations"]
    assert runtime["spec"]["nodeSelector"] == {
        **selector,
        "kubernetes.io/hostname": "gpu-h100-0",
    }
    assert "tone=/adapters/tone" in runtime["spec"]["containers"][0]["args"]
    # The model's transfer Job staged the weights on the same tainted node, tolerating the
    # taint, and the adapter's own Job, copying into the model's volume, went there too.
    model_release = model_release_for("llama-8b")
    jobs = {j["metadata"]["name"]: j for j in pool.emulator.objects("jobs", "batch")}
    adapter_job = adapter_job_for(model_release, staged_adapter_name("tone", TONE_URI))
    assert sorted(jobs) == sorted([f"{model_release}-transfer", adapter_job])
    for name, job in jobs.items():
        template = job["spec"]["template"]["spec"]
        assert GPU_TOLERATION in template["tolerations"], name
        assert template["nodeSelector"] == {**selector, "kubernetes.io/hostname": "gpu-h100-0"}
        assert job["status"].get("succeeded") == 1, name
        (job_pod,) = [
            p
            for p in pool.emulator.objects("pods")
            if p["metadata"]["labels"].get("batch.kubernetes.io/job-name") == name
        ]
        assert job_pod["spec"]["nodeName"] == "gpu-h100-0", name
