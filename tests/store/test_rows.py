"""The store's row helpers: one row by its key or NotFound, and add-then-flush."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError

from budcluster.errors import PermanentError
from budcluster.store import Conflict, NotFound, Store
from budcluster.store.errors import translated_errors
from budcluster.store.models import Cluster, ClusterKind, ClusterProvider, ClusterStatus
from budcluster.store.rows import add_and_flush, get_or_not_found, not_found_message


@pytest.fixture
def backend() -> str:
    """SQLite only: the helpers add no SQL of their own beyond what the repositories test."""
    return "sqlite"


def _cluster(name: str) -> Cluster:
    return Cluster(
        name=name,
        kind=ClusterKind.KUBERNETES,
        provider=ClusterProvider.ONPREM,
        status=ClusterStatus.REGISTERING,
    )


@contextmanager
def _statements(store: Store) -> Iterator[list[str]]:
    """The SQL statements the store's engine runs inside the block."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", record)


def test_add_and_flush_returns_the_row_with_its_id(store: Store) -> None:
    with store.session() as session:
        cluster = _cluster("gpu-a")
        added = add_and_flush(session, cluster)
        assert added is cluster
        assert isinstance(added.id, int)
        assert added.created_at is not None
    with store.session() as session:
        assert session.get(Cluster, added.id) is not None


def test_add_and_flush_leaves_errors_to_translated_errors(store: Store) -> None:
    with store.session() as session:
        add_and_flush(session, _cluster("gpu-a"))
    with store.session_factory() as session:
        with pytest.raises(IntegrityError):
            add_and_flush(session, _cluster("gpu-a"))
        session.rollback()
        with (
            pytest.raises(Conflict, match=r"^add cluster: .*UNIQUE"),
            translated_errors("add cluster"),
        ):
            add_and_flush(session, _cluster("gpu-a"))
        session.rollback()


def test_a_row_found_by_name_and_a_missing_one_named_with_the_fix(store: Store) -> None:
    with store.session() as session:
        created = add_and_flush(session, _cluster("gpu-a"))
    with store.session() as session:
        found = get_or_not_found(session, Cluster, what="cluster", name="gpu-a")
        assert found.id == created.id
        with pytest.raises(NotFound) as caught:
            get_or_not_found(session, Cluster, what="cluster", fix="register it first", name="x")
    assert str(caught.value) == "no cluster named 'x'; register it first"
    assert isinstance(caught.value, PermanentError)


def test_several_key_attributes_must_all_match(store: Store) -> None:
    with store.session() as session:
        add_and_flush(session, _cluster("gpu-a"))
        found = get_or_not_found(
            session, Cluster, what="cluster", name="gpu-a", status=ClusterStatus.REGISTERING
        )
        assert found.name == "gpu-a"
        with pytest.raises(NotFound, match=r"^no cluster with name='gpu-a', status='available'$"):
            get_or_not_found(
                session, Cluster, what="cluster", name="gpu-a", status=ClusterStatus.AVAILABLE
            )


def test_primary_key_lookup_of_a_loaded_row_runs_no_query(store: Store) -> None:
    with store.session() as session:
        cluster = add_and_flush(session, _cluster("gpu-a"))
        with _statements(store) as by_id:
            assert get_or_not_found(session, Cluster, what="cluster", id=cluster.id) is cluster
        with _statements(store) as by_name:
            assert get_or_not_found(session, Cluster, what="cluster", name="gpu-a") is cluster
        with _statements(store) as locked:
            got = get_or_not_found(session, Cluster, what="cluster", for_update=True, id=cluster.id)
            assert got is cluster
    assert by_id == []
    assert len(by_name) == 1
    # A lock must reach the database even for a row the session already holds.
    assert len(locked) == 1


def test_missing_primary_key_says_with_id(store: Store) -> None:
    with store.session() as session, pytest.raises(NotFound, match=r"^no cluster with id 42$"):
        get_or_not_found(session, Cluster, what="cluster", id=42)


def test_a_lookup_needs_a_key(store: Store) -> None:
    with store.session() as session, pytest.raises(TypeError, match="at least one key"):
        get_or_not_found(session, Cluster, what="cluster")


@pytest.mark.parametrize(
    ("key", "fix", "message"),
    [
        ({"name": "lab"}, None, "no cluster named 'lab'"),
        ({"id": 3}, "see `budcluster`", "no cluster with id 3; see `budcluster`"),
        ({"server_url": "https://a"}, None, "no cluster with server_url='https://a'"),
        ({"cluster_id": 1, "name": "d"}, None, "no cluster with cluster_id=1, name='d'"),
    ],
)
def test_not_found_message_names_thing_key_and_fix(
    key: dict[str, object], fix: str | None, message: str
) -> None:
    assert not_found_message("cluster", key, fix) == message
