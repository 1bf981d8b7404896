"""Engines and sessions for the store, with timeouts on every connection.

Postgres gets ``connect_timeout`` and a server-side ``statement_timeout``; SQLite gets a
busy timeout, foreign keys ON (SQLite leaves them off by default) and WAL so readers
do not block the single writer.

:meth:`Store.transact` runs a whole transaction again when the database cut it off
(stopped, restarting, unreachable, locked), until ``BUDCLUSTER_DATABASE_RETRY_DEADLINE_S``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from budcluster.errors import ConfigurationError
from budcluster.settings import Settings, get_settings
from budcluster.store.errors import StoreInterrupted, StoreUnavailable, translated_errors

T = TypeVar("T")

_log = logging.getLogger(__name__)

RETRY_DEADLINE_SETTING = "BUDCLUSTER_DATABASE_RETRY_DEADLINE_S"
# Waits between tries: short at first (a restart is back in a second or two), then
# capped so a server that returns is found within a second.
_FIRST_WAIT_S, _MAX_WAIT_S = 0.05, 1.0


@dataclass(frozen=True, slots=True)
class EngineOptions:
    connect_timeout_s: float = 10.0
    statement_timeout_s: float = 300.0
    pool_size: int = 5
    sqlite_busy_timeout_s: float = 30.0
    retry_deadline_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineOptions:
        return cls(
            connect_timeout_s=settings.database_connect_timeout_s,
            statement_timeout_s=settings.database_statement_timeout_s,
            pool_size=settings.database_pool_size,
            sqlite_busy_timeout_s=settings.sqlite_busy_timeout_s,
            retry_deadline_s=settings.database_retry_deadline_s,
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
    ``store.transact(work, action=...)`` is the same transaction, run again from the start
    when the database cut it off; use it for every write a flow depends on.
    """

    def __init__(self, url: str | URL, options: EngineOptions | None = None) -> None:
        self.url = parse_url(url)
        self.options = options or EngineOptions()
        self.engine = make_engine(self.url, self.options)
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

    def transact(self, work: Callable[[Session], T], *, action: str) -> T:
        """``work(session)`` in one transaction, run again whole while the database is
        stopped, restarting, unreachable or locked, until the retry deadline.

        ``work`` must be safe to run twice: a commit whose answer was lost may have landed,
        so a rerun has to find what the first try wrote (a unique key, a state check)
        rather than write it again. After the deadline it raises StoreUnavailable naming
        the setting; other errors (Conflict, NotFound, ...) are raised at once.
        """
        deadline_s = self.options.retry_deadline_s
        started = time.monotonic()
        tries = 0
        while True:
            tries += 1
            try:
                with self.session() as session:
                    return work(session)
            except StoreInterrupted as exc:
                elapsed = time.monotonic() - started
                if elapsed >= deadline_s:
                    raise StoreUnavailable(
                        f"{action}: the store stayed unavailable for {elapsed:.1f} s over "
                        f"{tries} tries, past {RETRY_DEADLINE_SETTING}={deadline_s:g}; "
                        f"last error: {exc}. Bring the database back (or raise the setting) "
                        "and run again"
                    ) from exc
                wait_s = min(_backoff_s(tries), deadline_s - elapsed)
                _log.warning(
                    "%s: try %d cut off (%s); trying again in %.2f s", action, tries, exc, wait_s
                )
                time.sleep(wait_s)

    def dispose(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Store({masked(self.url)!r})"


def _backoff_s(tries: int) -> float:
    """Exponential with jitter, so many workers do not all reconnect in the same instant."""
    wait: float = min(_MAX_WAIT_S, _FIRST_WAIT_S * 2 ** (tries - 1))
    return wait * random.uniform(0.75, 1.0)
