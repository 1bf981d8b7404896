"""``cluster: auto`` end to end on the Kubernetes API emulator (docs/placement.md): two
registered clusters, one with an 8-GPU H100 node and one with an 8-device Gaudi2 node,
their inventories recorded by register-cluster's node detection. Llama 3.1 8B fits both;
at this module's price table one Gaudi2 hour costs less than one H100 hour, so the rule
picks the Gaudi2 cluster although its name sorts last. The deployment lands there and only
there, the ranking lists both clusters with reasons, and a model that fits neither is
refused before anything is staged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from tests.k8s_emulator.emulator import Emulator, start_emulator
from tests.k8s_emulator.nodes import gaudi2_node, h100_node
from tests.support.flow_environment import flow_environment
from tests.support.prefect_server import free_port

pytestmark = pytest.mark.e2e
MODELS = Path(__file__).parents[1] / "fixtures" / "models"
LLAMA_8B = MODELS / "Llama-3.1-8B-Instruct"
LLAMA_70B = MODELS / "Llama-3.1-70B-Instruct"
S3_ENV = {"AWS_ACCESS_KEY_ID": "e2e-id", "AWS_SECRET_ACCESS_KEY": "e2e-secret"}
GAUDI2_USD_PER_HOUR = 2.0
H100_USD_PER_HOUR = 6.88
# Named so that the name tie-break alone would pick the H100 cluster: only the price can
# put the Gaudi2 cluster first.
H100_CLUSTER = "a-h100"
GAUDI_CLUSTER = "b-gaudi2"
# Kinds whose objects a rollout or a weight transfer creates.
STAGED_KINDS = (
    ("deployments", "apps"),
    ("services", ""),
    ("pods", ""),
    ("jobs", "batch"),
    ("persistentvolumeclaims", ""),
)


@dataclass(frozen=True)
class Clusters:
    h100: Emulator
    gaudi2: Emulator
    database_url: str


def _price_table(path: Path) -> Path:
    """The packaged table with the Gaudi2 placeholder given a price."""
    from budcluster.pricing.table import DEFAULT_PRICE_TABLE

    table = yaml.safe_load(DEFAULT_PRICE_TABLE.read_text())
    for device in table["devices"]:
        if device["name"] == "Gaudi2":
            device["usd_per_hour"] = GAUDI2_USD_PER_HOUR
            device["source"] = "test price"
        if device["name"] == "H100 80GB (SXM)":
            assert device["usd_per_hour"] == H100_USD_PER_HOUR
    path.write_text(yaml.safe_dump(table, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clusters]:
    from moto.server import ThreadedMotoServer

    from blocks.kubeconfig import KubeconfigCredentials
    from blocks.s3 import S3Registry
    from budcluster.adapters.s3 import make_s3_client
    from budcluster.job_requests import RegisterClusterRequest
    from flows.register_cluster import register_cluster

    workdir = tmp_path_factory.mktemp("k8s-auto")
    prices = _price_table(workdir / "prices.yaml")
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{port}"
    h100 = start_emulator(flavour="kubernetes", nodes=[h100_node()])
    gaudi2 = start_emulator(flavour="kubernetes", nodes=[gaudi2_node()])
    try:
        with flow_environment(workdir, BUDCLUSTER_PRICE_TABLE=str(prices)) as database_url:
            s3 = make_s3_client(
                endpoint_url=endpoint,
                region="us-east-1",
                access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
                secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
            )
            s3.create_bucket(Bucket="models")
            for prefix, model in (("llama-8b", LLAMA_8B), ("llama-70b", LLAMA_70B)):
                for file in sorted(model.iterdir()):
                    s3.put_object(
                        Bucket="models", Key=f"{prefix}/{file.name}", Body=file.read_bytes()
                    )
            S3Registry.from_keys(
                "models",
                bucket="models",
                endpoint_url=endpoint,
                access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
                secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
            ).save("models")
            for name, emu in ((H100_CLUSTER, h100), (GAUDI_CLUSTER, gaudi2)):
                text = yaml.safe_dump(emu.kubeconfig_dict())
                KubeconfigCredentials.from_kubeconfig(name, text).save(name)
                # Registering detects and records the nodes: what auto placement plans on.
                register_cluster(
                    RegisterClusterRequest(name=name, kind="kubernetes", credentials_block=name)
                )
            yield Clusters(h100, gaudi2, database_url)
    finally:
        h100.stop()
        gaudi2.stop()
        moto.stop()


def _auto_request(name: str, **overrides: Any) -> Any:
    from budcluster.job_requests import DeployModelRequest

    values: dict[str, Any] = {
        "name": name,
        "cluster": "auto",
        "model": {"uri": "s3://models/llama-8b", "registry_block": "models"},
        "max_model_len": 8192,
        "concurrency": 1,
        "ready_timeout_s": 120,
    }
    values.update(overrides)
    return DeployModelRequest.model_validate(values)


def _staged(emulator: Emulator, deployment: str = "") -> set[str]:
    """Names of the objects on ``emulator`` that a rollout or transfer creates, those that
    mention ``deployment`` when given."""
    return {
        f"{kind}/{o['metadata']['name']}"
        for kind, group in STAGED_KINDS
        for o in emulator.objects(kind, group)
        if deployment in o["metadata"]["name"] or deployment in str(o["metadata"].get("labels", {}))
    }


def _artifact_markdown(key: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), limit=1
        )
    assert found, f"no artifact {key}"
    return str(found[0].data)


def test_auto_picks_the_cheaper_cluster_deploys_there_and_tears_down(
    clusters: Clusters, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tasks.planning
    from budcluster.job_requests import TeardownRequest
    from budcluster.store import Store
    from budcluster.store.models import Cluster, Deployment
    from budcluster.targets.kubernetes import release_for
    from flows.deploy_model import deploy_model
    from flows.teardown_deployment import teardown_deployment
    from tasks.planning import artifact_key

    # Placement reads the model's metadata; the deploy after it plans on that same read.
    metadata_reads: list[str] = []
    load_model_facts = tasks.planning.load_model_facts

    def counted_load(model_path: str) -> object:
        metadata_reads.append(model_path)
        return load_model_facts(model_path)

    monkeypatch.setattr(tasks.planning, "load_model_facts", counted_load)

    outcome = deploy_model(_auto_request("chat-auto"))
    assert len(metadata_reads) == 1, metadata_reads

    # The rule: both fit with one device per replica; $2.00/h beats $6.88/h.
    placement = outcome["placement"]
    assert placement["chosen"] == GAUDI_CLUSTER
    assert placement["basis"] == "device-hour"
    ranked = placement["ranked"]
    assert [(r["rank"], r["cluster"], r["chosen"], r["fits"]) for r in ranked] == [
        (1, GAUDI_CLUSTER, True, True),
        (2, H100_CLUSTER, False, True),
    ]
    assert [r["estimate"] for r in ranked] == [GAUDI2_USD_PER_HOUR, H100_USD_PER_HOUR]
    assert [r["devices_per_replica"] for r in ranked] == [1, 1]
    assert ranked[0]["why"] == "chosen: fits; $2.0000/h; 1 device(s) per replica"
    assert ranked[1]["why"] == "not chosen: fits, but $6.8800/h vs $2.0000/h"
    assert "on hpu" in ranked[0]["hardware"] and "on cuda" in ranked[1]["hardware"]

    # The flow went on as if the Gaudi2 cluster had been named.
    plan = outcome["plan"]
    assert plan["device_kind"] == "hpu"
    assert {p["node_name"] for p in plan["placements"]} == {"gaudi2-0"}
    markdown = _artifact_markdown(artifact_key(plan["served_model_name"]))
    assert "Placement across clusters" in markdown
    assert f"Chosen: **{GAUDI_CLUSTER}**" in markdown
    assert f"| 2 | {H100_CLUSTER} | yes |" in markdown and "$6.8800/h vs $2.0000/h" in markdown

    store = Store(clusters.database_url)
    try:
        with store.session() as session:
            rows = list(
                session.execute(
                    select(Cluster.name, Deployment.status)
                    .join(Cluster, Deployment.cluster_id == Cluster.id)
                    .where(Deployment.name == "chat-auto")
                )
            )
    finally:
        store.dispose()
    assert [(name, status.value) for name, status in rows] == [(GAUDI_CLUSTER, "ready")]

    release = release_for("chat-auto")
    (pod,) = [
        p
        for p in clusters.gaudi2.objects("pods")
        if p["metadata"]["labels"].get("app.kubernetes.io/instance") == release
    ]
    assert pod["spec"]["nodeName"] == "gaudi2-0"
    assert pod["spec"]["containers"][0]["resources"]["limits"]["habana.ai/gaudi"] == "1"
    assert not _staged(clusters.h100, "chat-auto")

    # A second auto run picks the same cluster and finds it ready with this spec.
    again = deploy_model(_auto_request("chat-auto"))
    assert again["changed"] is False and again["endpoint_url"] == outcome["endpoint_url"]

    assert (
        teardown_deployment(TeardownRequest(cluster=GAUDI_CLUSTER, deployment="chat-auto"))
        == "deleted"
    )
    assert not [
        o["metadata"]["name"]
        for kind, group in STAGED_KINDS[:3]
        for o in clusters.gaudi2.objects(kind, group)
        if o["metadata"]["name"].startswith(release)
    ]


def test_auto_refuses_a_model_that_fits_no_cluster_before_staging(clusters: Clusters) -> None:
    from budcluster.planning import NoFeasiblePlan
    from budcluster.store import Store
    from budcluster.store.models import Deployment
    from flows.deploy_model import deploy_model

    before = (_staged(clusters.h100), _staged(clusters.gaudi2))
    # Llama 3.1 70B with 64 sequences of 128k tokens: its KV cache alone is far beyond 8
    # H100s or 8 Gaudi2s.
    with pytest.raises(NoFeasiblePlan) as refused:
        deploy_model(
            _auto_request(
                "too-big",
                model={"uri": "s3://models/llama-70b", "registry_block": "models"},
                max_model_len=131072,
                concurrency=64,
            )
        )
    assert refused.value.reason.startswith("the model fits no registered cluster (")
    assert f"{H100_CLUSTER}: " in refused.value.reason
    assert f"{GAUDI_CLUSTER}: " in refused.value.reason
    assert "register a cluster with the devices it needs" in str(refused.value)
    assert "lower max_model_len or concurrency" in str(refused.value)

    assert (_staged(clusters.h100), _staged(clusters.gaudi2)) == before
    store = Store(clusters.database_url)
    try:
        with store.session() as session:
            assert session.scalar(select(Deployment).where(Deployment.name == "too-big")) is None
    finally:
        store.dispose()
