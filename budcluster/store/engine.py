"""Engines and sessions for the store, with timeouts on every connection.

Postgres gets ``connect_timeout`` and a server-side ``statement_timeout``; SQLite gets a
busy timeout, foreign keys ON (SQLite leaves them off by default) and WAL so readers
do not block the single writer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from budcluster.errors import ConfigurationError
from budcluster.settings import Settings, get_settings
from budcluster.store.errors import translated_errors


@dataclass(frozen=True, slots=True)
class EngineOptions:
    connect_timeout_s: float = 10.0
    statement_timeout_s: float = 300.0
    pool_size: int = 5
    sqlite_busy_timeout_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineOptions:
        return cls(
            connect_timeout_s=settings.database_connect_timeout_s,
            statement_timeout_s=settings.database_statement_timeout_s,
            pool_size=settings.database_pool_size,
            sqlite_busy_timeout_s=settings.sqlite_busy_timeout_s,
        )


def parse_url(url: str | URL) -> URL:
    """The URL as SQLAlchemy sees it, or a ConfigurationError naming the setting to fix."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError(
            f"BUDCLUSTER_DATABASE_URL is not a SQLAlchemy URL ({exc}); use e.g. "
            "postgresql+psycopg2://user@host:5432/budcluster or sqlite:////abs/path/budcluster.db"
        ) from exc
    if parsed.get_backend_name() not in {"sqlite", "postgresql"}:
        raise ConfigurationError(
            f"BUDCLUSTER_DATABASE_URL uses {parsed.get_backend_name()!r}; the store supports "
            "only sqlite and postgresql URLs"
        )
    return parsed


def masked(url: str | URL) -> str:
    """The URL with any password replaced by ``***``, safe to print or log."""
    return parse_url(url).render_as_string(hide_password=True)


def make_engine(url: str | URL, options: EngineOptions | None = None) -> Engine:
    """An engine for ``url`` with the store's timeouts and per-backend settings."""
    options = options or EngineOptions()
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, options)
    return _postgres_engine(parsed, options)


def _postgres_engine(url: URL, options: EngineOptions) -> Engine:
    statement_timeout_ms = int(options.statement_timeout_s * 1000)
    connect_args: dict[str, Any] = {
        # libpq takes whole seconds; 0 would mean "wait forever".
        "connect_timeout": max(1, round(options.connect_timeout_s)),
        "options": f"-c statement_timeout={statement_timeout_ms}",
    }
    return create_engine(
        url,
        connect_args=connect_args,
        pool_size=options.pool_size,
        pool_timeout=options.connect_timeout_s,
        pool_pre_ping=True,
    )


def _sqlite_engine(url: URL, options: EngineOptions) -> Engine:
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": options.sqlite_busy_timeout_s})
    busy_ms = int(options.sqlite_busy_timeout_s * 1000)

    @event.listens_for(engine, "connect")
    def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
            if database and database != ":memory:":
                cursor.execute("PRAGMA journal_mode=WAL")
        finally:
            cursor.close()

    return engine


class Store:
    """One database: its engine and a factory of sessions.

    ``with store.session() as s:`` is one transaction: it commits when the block ends and
    rolls back if it raises, and database errors come out as store errors.
    """

    def __init__(self, url: str | URL, options: EngineOptions | None = None) -> None:
        self.url = parse_url(url)
        self.engine = make_engine(self.url, options)
        self.session_factory = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Store:
        settings = settings or get_settings()
        return cls(settings.resolved_database_url(), EngineOptions.from_settings(settings))

    @property
    def backend(self) -> str:
        return self.url.get_backend_name()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with translated_errors("store transaction"), self.session_factory.begin() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Store({masked(self.url)!r})"
