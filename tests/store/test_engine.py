"""Engine settings per backend, URL handling, time zones and error translation."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from budcluster.errors import ConfigurationError, PermanentError, TemporaryError
from budcluster.store import Store, StoreUnavailable
from budcluster.store.clusters import list_clusters, register_cluster
from budcluster.store.engine import EngineOptions, make_engine, masked, parse_url
from budcluster.store.errors import SchemaMissing
from budcluster.store.models import Cluster


def test_sqlite_connections_enforce_foreign_keys_and_use_wal(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'nested' / 'dir' / 's.db'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    finally:
        engine.dispose()
    assert (tmp_path / "nested" / "dir" / "s.db").exists()


@pytest.mark.postgres
def test_postgres_connections_carry_the_statement_timeout(throwaway_postgres: object) -> None:
    url = throwaway_postgres.url  # type: ignore[attr-defined]
    engine = make_engine(url, EngineOptions(statement_timeout_s=0.2))
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW statement_timeout").scalar() == "200ms"
            with pytest.raises(Exception, match="statement timeout"):
                connection.exec_driver_sql("SELECT pg_sleep(3)")
    finally:
        engine.dispose()


def test_unreachable_postgres_is_a_temporary_error() -> None:
    store = Store(
        "postgresql+psycopg2://postgres@127.0.0.1:1/x", EngineOptions(connect_timeout_s=1)
    )
    with pytest.raises(StoreUnavailable) as caught, store.session() as session:
        list_clusters(session)
    assert isinstance(caught.value, TemporaryError)
    assert caught.value.__cause__ is not None


def test_missing_schema_says_to_run_upgrade(database_url: str) -> None:
    store = Store(database_url)
    try:
        with pytest.raises(SchemaMissing, match="budcluster db upgrade"), store.session() as s:
            list_clusters(s)
    finally:
        store.dispose()


@pytest.mark.parametrize(
    ("url", "message"),
    [("not a url", "not a SQLAlchemy URL"), ("mysql://u@h/db", "only sqlite and postgresql")],
)
def test_bad_urls_name_the_setting(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        parse_url(url)
    assert "BUDCLUSTER_DATABASE_URL" in str(caught.value)


def test_masked_hides_the_password() -> None:
    shown = masked("postgresql+psycopg2://bud:p%40ss@db.example:5432/store")
    assert shown == "postgresql+psycopg2://bud:***@db.example:5432/store"


def test_timestamps_come_back_aware_and_in_utc(store: Store) -> None:
    plus_two = timezone(timedelta(hours=2))
    registered_at = datetime(2026, 3, 1, 14, 30, 15, 123456, tzinfo=plus_two)
    with store.session() as session:
        cluster = register_cluster(session, name="tz", kind="hosts", provider="onprem")
        cluster.created_at = registered_at
    with store.session() as session:
        loaded = session.scalars(select(Cluster)).one()
        assert loaded.created_at.tzinfo is not None
        assert loaded.created_at.utcoffset() == timedelta(0)
        assert loaded.created_at == registered_at
        assert loaded.created_at.hour == 12


def test_naive_timestamps_are_refused(store: Store) -> None:
    with pytest.raises(Exception, match="has no time zone"), store.session() as session:
        cluster = register_cluster(session, name="naive", kind="hosts", provider="onprem")
        cluster.created_at = datetime(2026, 1, 1)
        session.flush()
    with store.session() as session:
        assert list_clusters(session) == []


def test_session_rolls_back_on_error(store: Store) -> None:
    with pytest.raises(RuntimeError), store.session() as session:
        register_cluster(session, name="half", kind="hosts", provider="onprem")
        raise RuntimeError("boom")
    with store.session() as session:
        assert list_clusters(session) == []


def test_from_settings_uses_the_sqlite_file_under_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from budcluster.settings import Settings

    monkeypatch.delenv("BUDCLUSTER_DATABASE_URL", raising=False)
    store = Store.from_settings(Settings(data_dir=tmp_path))
    assert store.backend == "sqlite"
    assert store.url.database == str((tmp_path / "budcluster.db").resolve())
    assert isinstance(SchemaMissing("x"), PermanentError)
    store.dispose()
