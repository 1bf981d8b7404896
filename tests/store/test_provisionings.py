"""Provisionings and deregistration, on SQLite and Postgres."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from budcluster.store import Conflict, NotFound, Store
from budcluster.store import deployments as dep
from budcluster.store.clusters import deregister_cluster, find_cluster, register_cluster
from budcluster.store.models import BenchmarkRun, DeploymentStatusChange, ModelFormat, Transfer
from budcluster.store.models_catalog import ModelFile, save_model
from budcluster.store.provisionings import (
    find_provisioning,
    get_provisioning,
    set_provisioning_status,
    start_provisioning,
)
from budcluster.store.transfers import create_transfer


def _start(session, name: str = "prod-eks", cloud: str = "eks", **request):  # type: ignore[no-untyped-def]
    return start_provisioning(
        session,
        cluster_name=name,
        cloud=cloud,
        module="aws-eks" if cloud == "eks" else "azure-aks",
        credentials_block="prod-aws",
        request={"name": name, "cloud": cloud, "region": "eu-west-1", **request},
    )


def test_a_rerun_keeps_the_record_until_it_has_applied(store: Store) -> None:
    with store.session() as session:
        _start(session, cpu_nodes={"max_count": 3})
        set_provisioning_status(
            session,
            "prod-eks",
            "applied",
            "Plan: 3 to add",
            outputs={"endpoint": "https://x"},
            kubeconfig_block="prod-eks-kubeconfig",
        )
    with store.session() as session:
        # A rerun asking for more nodes: nothing changes until its plan is applied.
        again = _start(session, cpu_nodes={"max_count": 5})
        assert again.status.value == "applied"
        assert again.request["cpu_nodes"] == {"max_count": 3}
        set_provisioning_status(
            session, "prod-eks", "applied", "Plan: 0 to add, 1 to change",
            request={"name": "prod-eks", "cloud": "eks", "region": "eu-west-1",
                     "cpu_nodes": {"max_count": 5}},
            credentials_block="rotated-aws",
        )  # fmt: skip
    with store.session() as session:
        stored = get_provisioning(session, "prod-eks")
        assert stored.outputs == {"endpoint": "https://x"}
        assert stored.kubeconfig_block == "prod-eks-kubeconfig"
        assert stored.request["cpu_nodes"] == {"max_count": 5}
        assert stored.credentials_block == "rotated-aws"


def test_a_rerun_cannot_move_the_cluster_or_its_state(store: Store) -> None:
    with store.session() as session:
        _start(session, state={"kind": "s3", "bucket": "a"})
    for change, field in (
        ({"state": {"kind": "s3", "bucket": "b"}}, "state"),
        ({"state": {"kind": "s3", "bucket": "a"}, "region": "us-east-1"}, "region"),
    ):
        with (
            pytest.raises(Conflict, match=f"exists with other {field}.*destroy the cluster first"),
            store.session() as session,
        ):
            start_provisioning(
                session, cluster_name="prod-eks", cloud="eks", module="aws-eks",
                credentials_block="prod-aws",
                request={"name": "prod-eks", "cloud": "eks", "region": "eu-west-1", **change},
            )  # fmt: skip


def test_a_destroyed_cluster_starts_afresh_and_one_being_destroyed_is_refused(
    store: Store,
) -> None:
    with store.session() as session:
        _start(session)
        set_provisioning_status(session, "prod-eks", "destroying", "approved")
    with pytest.raises(Conflict, match="run destroy-cluster again"), store.session() as session:
        _start(session)
    with store.session() as session:
        set_provisioning_status(
            session, "prod-eks", "destroyed", "gone", outputs={"endpoint": "https://x"}
        )
    with store.session() as session:
        fresh = _start(session, region="us-east-1")
        assert fresh.status.value == "planned" and fresh.outputs is None
        assert fresh.request["region"] == "us-east-1"


def test_provisioning_refuses_a_hand_registered_name_and_another_cloud(store: Store) -> None:
    with store.session() as session:
        register_cluster(session, name="lab", kind="kubernetes", provider="onprem")
    with (
        pytest.raises(Conflict, match="already registered and was not provisioned"),
        store.session() as session,
    ):
        _start(session, "lab")
    with store.session() as session:
        _start(session, "prod-eks", "eks")
    with (
        pytest.raises(Conflict, match=r"exists with other cloud \(cloud 'eks' -> 'aks'\)"),
        store.session() as session,
    ):
        _start(session, "prod-eks", "aks")
    with store.session() as session:
        assert find_provisioning(session, "lab") is None
    with pytest.raises(NotFound, match="deregister-cluster"), store.session() as session:
        get_provisioning(session, "lab")


def _cluster_with_history(store: Store, status: str) -> None:
    with store.session() as session:
        cluster = register_cluster(session, name="c1", kind="kubernetes", provider="eks")
        model = save_model(
            session,
            name="m",
            source_uri="file:///m",
            format=ModelFormat.GGUF.value,
            files=[ModelFile("m.gguf", 10, "a" * 64)],
        )
        deployment = dep.create_deployment(
            session, cluster_id=cluster.id, model_id=model.id, name="qwen"
        )
        create_transfer(session, model_id=model.id, cluster_id=cluster.id)
        session.add(
            BenchmarkRun(
                deployment_id=deployment.id,
                deployment_name="qwen",
                name="run",
                endpoint_url="http://x",
                model="m",
                api="completions",
                profile="concurrency:1",
                status="completed",
                tool_version="1",
                started_at=deployment.created_at,
                started_monotonic=0.0,
                settings={},
            )
        )
        for step in {
            "ready": ["planning", "deploying", "ready"],
            "deleted": ["deleting", "deleted"],
        }[status]:
            dep.transition(session, deployment.id, step)


def test_deregister_refuses_live_deployments_unless_forced(store: Store) -> None:
    _cluster_with_history(store, "ready")
    with (
        pytest.raises(Conflict, match=r"qwen \(ready\).*teardown-deployment.*force=true"),
        store.session() as session,
    ):
        deregister_cluster(session, "c1")
    with store.session() as session:
        assert find_cluster(session, "c1") is not None
        assert deregister_cluster(session, "c1", force=True) == ["qwen"]
    with store.session() as session:
        assert find_cluster(session, "c1") is None


def test_deregister_forgets_settled_history_but_keeps_benchmark_results(store: Store) -> None:
    _cluster_with_history(store, "deleted")
    with store.session() as session:
        assert deregister_cluster(session, "c1") == ["qwen"]
    with store.session() as session:
        assert find_cluster(session, "c1") is None
        assert session.scalar(select(func.count()).select_from(Transfer)) == 0
        assert session.scalar(select(func.count()).select_from(DeploymentStatusChange)) == 0
        run = session.scalar(select(BenchmarkRun))
        assert run is not None and run.deployment_id is None and run.deployment_name == "qwen"
    # The name is free again.
    with store.session() as session:
        register_cluster(session, name="c1", kind="kubernetes", provider="eks")
