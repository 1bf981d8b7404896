"""Models, transfers, deployments: lifecycle enforcement, history and revisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from budcluster.lifecycle import DeploymentStatus
from budcluster.store import Conflict, IllegalTransition, NotFound, Store
from budcluster.store import deployments as dep
from budcluster.store.clusters import delete_cluster, register_cluster
from budcluster.store.models import ModelFormat, TransferStatus
from budcluster.store.models_catalog import ModelFile, get_model_by_uri, manifest_files, save_model
from budcluster.store.transfers import (
    create_transfer,
    finish_transfer,
    get_transfer,
    record_progress,
    start_transfer,
)
from budcluster.store.validation import InvalidValue

SHA_A = "a" * 64
SHA_B = "0123456789abcdef" * 4


def _cluster_and_model(session: Session) -> tuple[int, int]:
    cluster = register_cluster(session, name="c1", kind="kubernetes", provider="onprem")
    model = save_model(
        session,
        name="Qwen/Qwen2.5-0.5B-Instruct",
        source_uri="hf://Qwen/Qwen2.5-0.5B-Instruct@7ae557604adf67be50417f59c2c2f167def9a775",
        format="hf-safetensors",
        files=[
            ModelFile("model.safetensors", 988_097_824, SHA_A),
            ModelFile("config.json", 659, SHA_B),
        ],
        config_facts={"architecture": "Qwen2ForCausalLM", "max_position_embeddings": 32768},
    )
    return cluster.id, model.id


def test_model_manifest_and_size(store: Store) -> None:
    with store.session() as session:
        _cluster_and_model(session)
    with store.session() as session:
        model = get_model_by_uri(
            session, "hf://Qwen/Qwen2.5-0.5B-Instruct@7ae557604adf67be50417f59c2c2f167def9a775"
        )
        assert model.format is ModelFormat.HF_SAFETENSORS
        assert model.size_bytes == 988_097_824 + 659
        assert [f.path for f in manifest_files(model)] == ["config.json", "model.safetensors"]
        assert model.config_facts["max_position_embeddings"] == 32768
        # Saving again with the same source refreshes the row instead of duplicating it.
        again = save_model(
            session,
            name=model.name,
            source_uri=model.source_uri,
            format="hf-safetensors",
            files=[ModelFile("config.json", 659, SHA_B)],
        )
        assert again.id == model.id and again.size_bytes == 659


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([ModelFile("a.gguf", 1, "ABC")], "is not 64 lowercase hex digits"),
        ([ModelFile("a.gguf", 1, SHA_A), ModelFile("a.gguf", 1, SHA_A)], "lists 'a.gguf' twice"),
        ([ModelFile("a.gguf", -5, SHA_A)], "size=-5 is negative"),
    ],
)
def test_bad_manifests_are_refused(store: Store, files: list[ModelFile], message: str) -> None:
    with pytest.raises(InvalidValue, match=message), store.session() as session:
        save_model(session, name="m", source_uri="file:///m.gguf", format="gguf", files=files)


def test_transfer_progress_and_throughput(store: Store) -> None:
    t0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    with store.session() as session:
        cluster_id, model_id = _cluster_and_model(session)
        transfer = create_transfer(
            session, model_id=model_id, cluster_id=cluster_id, bytes_total=1000, files_total=2
        )
        start_transfer(session, transfer.id, at=t0)
        record_progress(session, transfer.id, bytes_done=500, files_done=1)
        record_progress(session, transfer.id, bytes_done=1000, files_done=2)
        finish_transfer(session, transfer.id, "succeeded", at=t0 + timedelta(seconds=4))
    with store.session() as session:
        done = get_transfer(session, transfer.id)
        assert done.status is TransferStatus.SUCCEEDED
        assert (done.bytes_done, done.files_done) == (1000, 2)
        assert done.throughput_bytes_per_s == pytest.approx(250.0)
        assert done.finished_at == t0 + timedelta(seconds=4)
        with pytest.raises(Conflict, match="already ended as succeeded"):
            record_progress(session, transfer.id, bytes_done=1, files_done=1)
        with pytest.raises(InvalidValue, match="'running' is not final"):
            finish_transfer(session, transfer.id, "running")


def test_transfer_to_unknown_cluster_is_a_conflict(store: Store) -> None:
    with store.session() as session:
        _, model_id = _cluster_and_model(session)
    with pytest.raises(Conflict, match="create transfer"), store.session() as session:
        create_transfer(session, model_id=model_id, cluster_id=9999)


def test_lifecycle_is_enforced_and_history_recorded(store: Store) -> None:
    with store.session() as session:
        cluster_id, model_id = _cluster_and_model(session)
        deployment = dep.create_deployment(
            session,
            cluster_id=cluster_id,
            model_id=model_id,
            name="qwen-small",
            spec_hash="sha256:1",
            plan={"replicas": 1, "tensor_parallel": 1},
            engine="vllm",
            image="vllm/vllm-openai:v0.6.3",
            command=["vllm", "serve", "/models/qwen", "--port", "8000"],
        )
        deployment_id = deployment.id
    for status in ("planning", "transferring", "deploying", "ready"):
        with store.session() as session:
            dep.transition(session, deployment_id, status, reason=f"now {status}")
    with (
        pytest.raises(IllegalTransition, match="from 'ready' to 'transferring'"),
        store.session() as session,
    ):
        dep.transition(session, deployment_id, "transferring")
    with pytest.raises(InvalidValue, match="deployment status='running'"), store.session() as s:
        dep.transition(s, deployment_id, "running")
    with store.session() as session:
        deployment = dep.get_deployment(session, deployment_id)
        assert deployment.status is DeploymentStatus.READY
        assert deployment.status_reason == "now ready"
        assert deployment.command == ["vllm", "serve", "/models/qwen", "--port", "8000"]
        assert deployment.plan == {"replicas": 1, "tensor_parallel": 1}
        history = dep.status_history(session, deployment_id)
        moves = [(h.from_status, h.to_status) for h in history]
        assert moves == [
            (None, DeploymentStatus.PENDING),
            (DeploymentStatus.PENDING, DeploymentStatus.PLANNING),
            (DeploymentStatus.PLANNING, DeploymentStatus.TRANSFERRING),
            (DeploymentStatus.TRANSFERRING, DeploymentStatus.DEPLOYING),
            (DeploymentStatus.DEPLOYING, DeploymentStatus.READY),
        ]
        assert all(h.changed_at.tzinfo is not None for h in history)


def test_names_are_unique_per_cluster(store: Store) -> None:
    with store.session() as session:
        cluster_id, model_id = _cluster_and_model(session)
        other = register_cluster(session, name="c2", kind="hosts", provider="onprem").id
        dep.create_deployment(session, cluster_id=cluster_id, model_id=model_id, name="d")
        dep.create_deployment(session, cluster_id=other, model_id=model_id, name="d")
    with (
        pytest.raises(Conflict, match="already has a deployment named 'd'"),
        store.session() as session,
    ):
        dep.create_deployment(session, cluster_id=cluster_id, model_id=model_id, name="d")
    with store.session() as session:
        assert dep.find_deployment(session, other, "d").cluster_id == other
        assert len(dep.list_deployments(session)) == 2
        with pytest.raises(NotFound):
            dep.find_deployment(session, other, "nope")


def test_command_must_be_an_argv_list(store: Store) -> None:
    with store.session() as session:
        cluster_id, model_id = _cluster_and_model(session)
    with pytest.raises(InvalidValue, match="argv list"), store.session() as session:
        dep.create_deployment(
            session,
            cluster_id=cluster_id,
            model_id=model_id,
            name="d",
            command="vllm serve x",  # type: ignore[arg-type]
        )


def test_revisions_number_up_and_latest_is_found(store: Store) -> None:
    with store.session() as session:
        cluster_id, model_id = _cluster_and_model(session)
        deployment_id = dep.create_deployment(
            session, cluster_id=cluster_id, model_id=model_id, name="d"
        ).id
        first = [{"kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 1}}]
        second = [{"kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 2}}]
        assert dep.record_revision(session, deployment_id, first, "h1").revision == 1
        assert dep.record_revision(session, deployment_id, second, "h2").revision == 2
    with store.session() as session:
        assert dep.get_revision(session, deployment_id).manifests == second
        assert dep.get_revision(session, deployment_id, 1).manifests == first
        assert [r.spec_hash for r in dep.list_revisions(session, deployment_id)] == ["h1", "h2"]
        with pytest.raises(NotFound, match="no revision 3"):
            dep.get_revision(session, deployment_id, 3)


def test_spec_update_and_endpoint(store: Store) -> None:
    with store.session() as session:
        cluster_id, model_id = _cluster_and_model(session)
        deployment_id = dep.create_deployment(
            session, cluster_id=cluster_id, model_id=model_id, name="d", spec_hash="h1"
        ).id
        dep.update_spec(
            session,
            deployment_id,
            spec_hash="h2",
            plan={"replicas": 2},
            engine="llama.cpp",
            image=None,
            command=["llama-server", "-m", "/m.gguf"],
        )
        dep.set_endpoint(session, deployment_id, "http://10.0.0.5:8080/v1")
    with store.session() as session:
        deployment = dep.get_deployment(session, deployment_id)
        assert (deployment.spec_hash, deployment.engine) == ("h2", "llama.cpp")
        assert deployment.endpoint_url == "http://10.0.0.5:8080/v1"


def test_a_cluster_with_deployments_cannot_be_deleted(store: Store) -> None:
    with store.session() as session:
        cluster_id, model_id = _cluster_and_model(session)
        dep.create_deployment(session, cluster_id=cluster_id, model_id=model_id, name="d")
    with pytest.raises(Conflict, match="delete its deployments first"), store.session() as s:
        delete_cluster(s, "c1")
