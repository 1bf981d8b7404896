"""Alembic environment of the store. Run through :mod:`budcluster.store.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import URL

from budcluster.store.engine import EngineOptions, make_engine
from budcluster.store.models import Base

config = context.config


def _database_url() -> URL | str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "no database URL: run migrations with `budcluster db upgrade` "
            "(it reads BUDCLUSTER_DATABASE_URL)"
        )
    return url


def run_migrations_offline() -> None:
    context.configure(
        url=_database_url(),
        target_metadata=Base.metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    options = config.attributes.get("engine_options") or EngineOptions()
    engine = make_engine(_database_url(), options)
    try:
        with engine.connect() as connection:
            is_sqlite = connection.dialect.name == "sqlite"
            if is_sqlite:
                # SQLite batch migrations rebuild tables (copy, drop, rename); with foreign
                # keys ON the drop would cascade or fail. The pragma is ignored inside a
                # transaction, so it is set before Alembic begins one.
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection.commit()
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                render_as_batch=is_sqlite,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            if is_sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
