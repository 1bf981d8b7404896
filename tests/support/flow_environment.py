"""Run flows in the test process as a user's machine would: keys, a migrated SQLite store,
and a real Prefect server, all under one work directory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from budcluster.settings import get_settings
from tests.support.prefect_server import running_prefect_server


def _clear_caches() -> None:
    from tasks._store import results_store

    get_settings.cache_clear()
    results_store.cache_clear()


@contextmanager
def flow_environment(workdir: Path, **settings: str) -> Iterator[str]:
    """Yield the store URL while BUDCLUSTER_* point into ``workdir`` and the Prefect API is
    a real server; ``settings`` adds more BUDCLUSTER_* variables (by their env name)."""
    from budcluster.crypto import init_keys
    from budcluster.store.migrate import upgrade

    database_url = f"sqlite:///{workdir / 'data' / 'budcluster.db'}"
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    env = {
        "BUDCLUSTER_KEYS_DIR": str(workdir / "crypto-keys"),
        "BUDCLUSTER_DATA_DIR": str(workdir / "data"),
        "BUDCLUSTER_DATABASE_URL": database_url,
        "BUDCLUSTER_REPORTS_DIR": str(workdir / "reports"),
        **settings,
    }
    with (
        pytest.MonkeyPatch.context() as patch,
        running_prefect_server(workdir / "prefect") as server,
    ):
        for key, value in env.items():
            patch.setenv(key, value)
        _clear_caches()
        try:
            with temporary_settings({PREFECT_API_URL: server.api_url}):
                init_keys(workdir / "crypto-keys")
                upgrade(database_url)
                yield database_url
        finally:
            _clear_caches()
