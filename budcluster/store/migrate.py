"""Run the store's Alembic migrations from package data; no alembic.ini is needed.

The URL travels to ``migrations/env.py`` in ``Config.attributes`` rather than through
``sqlalchemy.url``, because the ini layer would treat ``%`` in a password as interpolation.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL

from budcluster.store.engine import EngineOptions, make_engine, parse_url
from budcluster.store.errors import translated_errors

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | URL, options: EngineOptions | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = parse_url(url)
    config.attributes["engine_options"] = options or EngineOptions()
    return config


def upgrade(url: str | URL, revision: str = "head", options: EngineOptions | None = None) -> None:
    with translated_errors(f"upgrade the store to {revision}"):
        command.upgrade(alembic_config(url, options), revision)


def downgrade(url: str | URL, revision: str, options: EngineOptions | None = None) -> None:
    with translated_errors(f"downgrade the store to {revision}"):
        command.downgrade(alembic_config(url, options), revision)


def current_revision(url: str | URL, options: EngineOptions | None = None) -> str | None:
    """The revision the database is at; None when it has never been migrated."""
    engine = make_engine(url, options)
    try:
        with translated_errors("read the store's revision"), engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head
