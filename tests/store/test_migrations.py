"""The schema: Alembic creates it on both backends, reverts it, and matches the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from typer.testing import CliRunner

from budcluster.cli.app import app
from budcluster.settings import get_settings
from budcluster.store import migrate
from budcluster.store.engine import make_engine
from budcluster.store.models import Base

EXPECTED_TABLES = {
    "clusters",
    "nodes",
    "node_snapshots",
    "models",
    "transfers",
    "deployments",
    "deployment_status_history",
    "deployment_revisions",
    "benchmark_runs",
    "benchmark_requests",
    "benchmark_summaries",
    "provisionings",
    "lora_adapters",
    "rollout_attempts",
    "placement_claims",
}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return set(inspect(connection).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    assert migrate.current_revision(database_url) is None
    migrate.upgrade(database_url)
    assert _tables(database_url) == EXPECTED_TABLES
    assert migrate.current_revision(database_url) == migrate.head_revision()

    migrate.downgrade(database_url, "base")
    assert _tables(database_url) == set()
    assert migrate.current_revision(database_url) is None

    migrate.upgrade(database_url, "head")
    assert _tables(database_url) == EXPECTED_TABLES


def test_models_and_migrations_agree(database_url: str) -> None:
    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations differ; write a migration for: {diff}"


def test_enumerations_are_enforced_by_the_database(database_url: str) -> None:
    # The CHECK constraints come from the migration, not only from Python validation.
    from sqlalchemy.exc import IntegrityError

    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO clusters (name, kind, provider, status, created_at, updated_at) "
                "VALUES ('c', 'mesos', 'onprem', 'available', '2026-01-01', '2026-01-01')"
            )
    finally:
        engine.dispose()


def test_cli_upgrade_honours_the_database_url_and_masks_the_password(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        # Trust auth ignores the password, so the command still works with one in the URL.
        url = url.set(password="hunter2-secret")
    shown_url = url.render_as_string(hide_password=False)
    monkeypatch.setenv("BUDCLUSTER_DATABASE_URL", shown_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        result = runner.invoke(app, ["db", "upgrade"])
        assert result.exit_code == 0, result.output
        assert "hunter2-secret" not in result.output
        assert _tables(database_url) == EXPECTED_TABLES

        result = runner.invoke(app, ["db", "current"])
        assert result.exit_code == 0, result.output
        assert f"revision: {migrate.head_revision()}" in result.output

        result = runner.invoke(app, ["db", "downgrade", "base"])
        assert result.exit_code == 0, result.output
        assert _tables(database_url) == set()
    finally:
        get_settings.cache_clear()


def test_cli_reports_an_unreachable_database_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "BUDCLUSTER_DATABASE_URL", "postgresql+psycopg2://postgres:pw@127.0.0.1:1/nothing"
    )
    monkeypatch.setenv("BUDCLUSTER_DATABASE_CONNECT_TIMEOUT_S", "2")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["db", "upgrade"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "database unavailable" in result.output
    assert "postgres:***@127.0.0.1:1" in result.output
    assert ":pw@" not in result.output
