"""Fixtures shared by the whole test suite.

Store fixtures run each test on both backends:

- ``database_url``: an EMPTY database, parametrized as ``sqlite`` (a file in tmp_path)
  and ``postgres`` (a throwaway ``budcluster_test_<random>`` database, created once per
  test session on the server at ``BUDCLUSTER_TEST_POSTGRES_URL``, default
  postgresql+psycopg2://postgres@127.0.0.1:5432/postgres, and dropped at the end).
- ``store``: a :class:`budcluster.store.Store` on a database migrated to head and holding
  no rows; ``session_factory`` is its sessionmaker.

If Postgres is unreachable the ``postgres`` cases FAIL, so a green run always means both
backends were tested; set ``BUDCLUSTER_TEST_SKIP_POSTGRES=1`` to skip them instead.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from budcluster.store import Store

DEFAULT_POSTGRES_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def _postgres_admin_url() -> str:
    return os.environ.get("BUDCLUSTER_TEST_POSTGRES_URL", DEFAULT_POSTGRES_ADMIN_URL)


def _skip_postgres() -> bool:
    return os.environ.get("BUDCLUSTER_TEST_SKIP_POSTGRES", "").strip() in {"1", "true", "yes"}


class ThrowawayPostgres:
    """One database for the whole test session, emptied or truncated between tests.

    Creating a database per test costs about a second each on Postgres; resetting the
    schema or truncating the tables costs milliseconds.
    """

    def __init__(self, admin_url: str) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        self.name = f"budcluster_test_{secrets.token_hex(6)}"
        self._admin = create_engine(
            admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
        )
        self.url = make_url(admin_url).set(database=self.name).render_as_string(hide_password=False)
        self.migrated = False
        self._engine: Engine | None = None

    def create(self) -> None:
        with self._admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        with self._admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self._admin.dispose()

    @property
    def engine(self) -> Engine:
        from sqlalchemy import create_engine

        if self._engine is None:
            # A lock timeout: a test that leaks an open transaction makes TRUNCATE fail
            # loudly instead of hanging the suite.
            self._engine = create_engine(
                self.url,
                isolation_level="AUTOCOMMIT",
                connect_args={"connect_timeout": 5, "options": "-c lock_timeout=10000"},
            )
        return self._engine

    def make_empty(self) -> None:
        with self.engine.connect() as connection:
            connection.exec_driver_sql("DROP SCHEMA public CASCADE")
            connection.exec_driver_sql("CREATE SCHEMA public")
        self.migrated = False

    def make_migrated_and_clean(self) -> None:
        if not self.migrated:
            from budcluster.store.migrate import upgrade

            self.make_empty()
            upgrade(self.url)
            self.migrated = True
            return
        from budcluster.store.models import Base

        tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
        with self.engine.connect() as connection:
            connection.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


@pytest.fixture(scope="session")
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    if _skip_postgres():
        pytest.skip("BUDCLUSTER_TEST_SKIP_POSTGRES=1: Postgres cases skipped")
    from sqlalchemy.exc import OperationalError

    database = ThrowawayPostgres(_postgres_admin_url())
    try:
        database.create()
    except OperationalError as exc:
        pytest.fail(
            f"Postgres is unreachable at {_postgres_admin_url()} ({exc.orig}). Start it "
            "(trust auth, user postgres), point BUDCLUSTER_TEST_POSTGRES_URL at another "
            "server, or set BUDCLUSTER_TEST_SKIP_POSTGRES=1 to skip the Postgres cases.",
            pytrace=False,
        )
    yield database
    database.drop()


_BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def _sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'budcluster-test.db'}"


@pytest.fixture(params=_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgres``: the backend the test runs on."""
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database (no tables) on ``backend``."""
    if backend == "sqlite":
        return _sqlite_url(tmp_path)
    postgres: ThrowawayPostgres = request.getfixturevalue("throwaway_postgres")
    postgres.make_empty()
    return postgres.url


@pytest.fixture
def store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A Store on a database at the head migration, with no rows."""
    from budcluster.store import Store
    from budcluster.store.migrate import upgrade

    if backend == "sqlite":
        url = _sqlite_url(tmp_path)
        upgrade(url)
    else:
        postgres: ThrowawayPostgres = request.getfixturevalue("throwaway_postgres")
        postgres.make_migrated_and_clean()
        url = postgres.url
    opened = Store(url)
    yield opened
    opened.dispose()


@pytest.fixture
def session_factory(store: Store) -> sessionmaker[Session]:
    return store.session_factory


# Packages whose tests share package-scoped fixtures (a Prefect server, a registered
# cluster, built runtimes): under pytest-xdist each goes to one worker as a whole.
# tests/e2e_kubernetes has no package fixtures: its modules (each minutes long) spread.
_WHOLE_PACKAGE_GROUPS = (
    "e2e_hosts",
    "e2e_image",
    "e2e_prefect",
    "e2e_ssh",
    "e2e_terraform",
)
# Groups that take minutes: handed out first so no worker starts one at the very end.
_SLOW_GROUPS = (*_WHOLE_PACKAGE_GROUPS, "tests/security/test_canary_suite.py")
_SLOW_PREFIXES = ("tests/e2e_",)


def xdist_group_of(nodeid: str) -> str:
    """The work unit a test belongs to: its e2e package, else its module.

    A module's tests share module-scoped fixtures (an emulator, a moto server, a deployed
    runtime) and later tests rely on earlier ones' effects, so they must share a worker.
    """
    path = nodeid.split("::", 1)[0]
    parts = path.split("/")
    if len(parts) > 2 and parts[0] == "tests" and parts[1] in _WHOLE_PACKAGE_GROUPS:
        return parts[1]
    return path


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadscope`` with our groups instead of xdist's class-or-module scopes.

    Not xdist_group marks with ``--dist loadgroup``: that mode renames each test's node id,
    which pytest 9.2 no longer allows, so every test silently became a group of one.
    """
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleOrPackageScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group_of(nodeid)

    return ModuleOrPackageScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow groups first, so no worker starts one at the very end of a parallel run."""
    items.sort(key=lambda item: not _is_slow(xdist_group_of(item.nodeid)))


def _is_slow(group: str) -> bool:
    return group in _SLOW_GROUPS or group.startswith(_SLOW_PREFIXES)
