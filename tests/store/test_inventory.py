"""Clusters, nodes and their hardware history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from budcluster.store import Conflict, NotFound, Store
from budcluster.store.clusters import (
    delete_cluster,
    get_cluster,
    list_clusters,
    register_cluster,
    set_cluster_status,
)
from budcluster.store.models import AcceleratorKind, ClusterKind, ClusterStatus
from budcluster.store.nodes import NodeObservation, list_nodes, node_history, record_node_snapshot
from budcluster.store.validation import InvalidValue

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _gpu_node(name: str, at: datetime, count: int = 8) -> NodeObservation:
    return NodeObservation(
        name=name,
        detected_at=at,
        hardware={"gpus": [{"index": i, "name": "NVIDIA H100 80GB HBM3"} for i in range(count)]},
        conditions={"Ready": "True"},
        cpu_model="AMD EPYC 9454",
        cpu_cores=96,
        memory_bytes=1_500 * 2**30,
        accelerator_kind="cuda",
        accelerator_count=count,
        accelerator_model="NVIDIA H100 80GB HBM3",
        accelerator_memory_bytes=80 * 2**30,
    )


def test_register_and_read_back(store: Store) -> None:
    with store.session() as session:
        register_cluster(
            session,
            name="gpu-a",
            kind="kubernetes",
            provider="eks",
            credentials_block="cluster-gpu-a",
            server_url="https://api.gpu-a:6443",
            platform_version="v1.30.2",
        )
    with store.session() as session:
        cluster = get_cluster(session, "gpu-a")
        assert cluster.kind is ClusterKind.KUBERNETES
        assert cluster.status is ClusterStatus.REGISTERING
        assert cluster.server_url == "https://api.gpu-a:6443"
        assert cluster.platform_version == "v1.30.2"
        assert cluster.created_at.tzinfo is not None
        set_cluster_status(session, "gpu-a", "unavailable", reason="API timed out")
    with store.session() as session:
        cluster = get_cluster(session, "gpu-a")
        assert (cluster.status, cluster.status_reason) == (
            ClusterStatus.UNAVAILABLE,
            "API timed out",
        )


def test_duplicate_name_and_server_url_are_conflicts(store: Store) -> None:
    with store.session() as session:
        register_cluster(
            session, name="a", kind="kubernetes", provider="onprem", server_url="https://k:6443"
        )
        # Hosts clusters have no server URL; several may coexist.
        register_cluster(session, name="h1", kind="hosts", provider="onprem")
        register_cluster(session, name="h2", kind="hosts", provider="onprem")
    with pytest.raises(Conflict, match="already registered"), store.session() as session:
        register_cluster(session, name="a", kind="hosts", provider="onprem")
    with (
        pytest.raises(Conflict, match="cluster 'a' is already registered with server URL"),
        store.session() as session,
    ):
        register_cluster(
            session, name="b", kind="openshift", provider="onprem", server_url="https://k:6443"
        )
    with store.session() as session:
        assert [c.name for c in list_clusters(session)] == ["a", "h1", "h2"]


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("cluster kind", {"kind": "mesos", "provider": "onprem"}),
        ("cluster provider", {"kind": "hosts", "provider": "gke"}),
    ],
)
def test_bad_choices_name_the_field(store: Store, field: str, kwargs: dict[str, str]) -> None:
    with (
        pytest.raises(InvalidValue, match=f"{field}=.* is not valid; use one of"),
        store.session() as session,
    ):
        register_cluster(session, name="x", **kwargs)


def test_snapshots_keep_history_and_latest_is_current(store: Store) -> None:
    with store.session() as session:
        cluster_id = register_cluster(session, name="c", kind="kubernetes", provider="onprem").id
        record_node_snapshot(session, cluster_id, _gpu_node("n1", T0, count=8))
        record_node_snapshot(session, cluster_id, _gpu_node("n1", T0 + timedelta(hours=1), count=7))
        # A late, older snapshot joins the history but does not replace the current state.
        record_node_snapshot(session, cluster_id, _gpu_node("n1", T0 - timedelta(hours=1), count=4))
        record_node_snapshot(
            session,
            cluster_id,
            NodeObservation(name="cpu1", detected_at=T0, hardware={"cpus": 64}, cpu_cores=64),
        )
    with store.session() as session:
        nodes = list_nodes(session, cluster_id)
        assert [n.name for n in nodes] == ["cpu1", "n1"]
        cpu, gpu = nodes
        assert cpu.accelerator_kind is AcceleratorKind.CPU and cpu.accelerator_count == 0
        assert gpu.accelerator_count == 7
        assert gpu.detected_at == T0 + timedelta(hours=1)
        assert gpu.memory_bytes == 1_500 * 2**30  # beyond 32 bits: BIGINT
        assert len(gpu.hardware["gpus"]) == 7
        history = node_history(session, gpu.id)
        assert [h.accelerator_count for h in history] == [4, 8, 7]
        assert [h.detected_at for h in history] == [
            T0 - timedelta(hours=1),
            T0,
            T0 + timedelta(hours=1),
        ]


def test_bad_node_values_are_refused(store: Store) -> None:
    with store.session() as session:
        cluster_id = register_cluster(session, name="c", kind="hosts", provider="onprem").id
    bad = _gpu_node("n", T0)
    bad.accelerator_kind = "tpu"
    with pytest.raises(InvalidValue, match="accelerator_kind='tpu'"), store.session() as session:
        record_node_snapshot(session, cluster_id, bad)
    negative = _gpu_node("n", T0)
    negative.cpu_cores = -1
    with pytest.raises(InvalidValue, match="cpu_cores=-1 is negative"), store.session() as s:
        record_node_snapshot(s, cluster_id, negative)
    with pytest.raises(NotFound), store.session() as session:
        record_node_snapshot(session, cluster_id + 100, _gpu_node("n", T0))


def test_deleting_a_cluster_removes_its_nodes_and_history(store: Store) -> None:
    with store.session() as session:
        cluster_id = register_cluster(session, name="c", kind="hosts", provider="onprem").id
        node_id = record_node_snapshot(session, cluster_id, _gpu_node("n1", T0)).id
    with store.session() as session:
        delete_cluster(session, "c")
    with store.session() as session:
        assert list_nodes(session, cluster_id) == []
        assert node_history(session, node_id) == []
        with pytest.raises(NotFound, match="no cluster named 'c'"):
            get_cluster(session, "c")
