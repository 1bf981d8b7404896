"""Clusters, nodes and their hardware history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from budcluster.store import Conflict, NotFound, Store
from budcluster.store.clusters import (
    delete_cluster,
    get_cluster,
    list_clusters,
    register_cluster,
    set_cluster_status,
)
from budcluster.store.models import AcceleratorKind, ClusterKind, ClusterStatus
from budcluster.store.nodes import (
    NodeObservation,
    list_nodes,
    node_history,
    record_node_snapshot,
    record_node_snapshots,
)
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


def _snapshot_state(store: Store, cluster_id: int) -> list[tuple[str, int, list[int]]]:
    with store.session() as session:
        return [
            (
                node.name,
                node.accelerator_count,
                [h.accelerator_count for h in node_history(session, node.id)],
            )
            for node in list_nodes(session, cluster_id)
        ]


def test_many_snapshots_at_once_end_as_one_at_a_time(store: Store) -> None:
    """The batched write (what record-nodes uses) keeps the rules of the single one: a
    newer snapshot becomes current, an older one only joins the history, two snapshots of
    a node in one batch apply in turn."""
    earlier = [_gpu_node("n1", T0, count=8), _gpu_node("old", T0, count=2)]
    batch = [
        _gpu_node("n1", T0 + timedelta(hours=1), count=7),  # newer: becomes current
        _gpu_node("old", T0 - timedelta(hours=1), count=1),  # older: history only
        _gpu_node("new", T0, count=4),
        _gpu_node("new", T0 - timedelta(hours=2), count=3),  # older, same batch
        _gpu_node("fresh", T0, count=5),
        _gpu_node("fresh", T0 + timedelta(hours=2), count=6),  # newer, same batch
    ]
    with store.session() as session:
        one = register_cluster(session, name="one", kind="kubernetes", provider="onprem").id
        many = register_cluster(session, name="many", kind="kubernetes", provider="onprem").id
        for cluster_id in (one, many):
            for observation in earlier:
                record_node_snapshot(session, cluster_id, observation)
        for observation in batch:
            record_node_snapshot(session, one, observation)
        rows = record_node_snapshots(session, many, batch)
        assert [row.name for row in rows] == [o.name for o in batch]
    assert _snapshot_state(store, many) == _snapshot_state(store, one)
    assert _snapshot_state(store, many) == [
        ("fresh", 6, [5, 6]),
        ("n1", 7, [8, 7]),
        ("new", 4, [3, 4]),
        ("old", 2, [1, 2]),
    ]


def test_a_batch_with_one_bad_node_writes_nothing(store: Store) -> None:
    with store.session() as session:
        cluster_id = register_cluster(session, name="c", kind="kubernetes", provider="onprem").id
    bad = _gpu_node("bad", T0)
    bad.accelerator_kind = "tpu"
    with pytest.raises(InvalidValue, match="node 'bad' accelerator_kind"), store.session() as s:
        record_node_snapshots(s, cluster_id, [_gpu_node("good", T0), bad])
    assert _snapshot_state(store, cluster_id) == []
    with pytest.raises(NotFound), store.session() as session:
        record_node_snapshots(session, cluster_id + 100, [_gpu_node("n", T0)])


def test_recording_many_nodes_takes_a_fixed_number_of_statements(store: Store) -> None:
    """Not three round trips per node: 200 nodes, new or already known, in a handful of
    statements (multi-row INSERTs; the ORM batches the updates of known nodes)."""
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    with store.session() as session:
        cluster_id = register_cluster(session, name="c", kind="kubernetes", provider="onprem").id
    event.listen(store.engine, "before_cursor_execute", count)
    try:
        for hours in (0, 1):  # all new, then all known and newer
            statements.clear()
            nodes = [_gpu_node(f"n{i}", T0 + timedelta(hours=hours)) for i in range(200)]
            with store.session() as session:
                record_node_snapshots(session, cluster_id, nodes)
            assert len(statements) <= 12, statements[:20]
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert len(_snapshot_state(store, cluster_id)) == 200
