from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from budcluster.crypto import init_keys
from budcluster.settings import get_settings
from tests.support.prefect_server import PrefectServer, running_prefect_server


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    with running_prefect_server(tmp_path_factory.mktemp("prefect")) as server:
        yield server


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("work")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh key pair for the module's blocks, named by BUDCLUSTER_KEYS_DIR."""
    directory = tmp_path_factory.mktemp("keys") / "crypto-keys"
    init_keys(directory)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BUDCLUSTER_KEYS_DIR", str(directory))
        get_settings.cache_clear()
        yield directory
    get_settings.cache_clear()
