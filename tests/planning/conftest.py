from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.hardware_fixtures import hardware_fixtures_dir

__all__ = ["hardware_fixtures_dir"]


@pytest.fixture(scope="session")
def hw() -> Path:
    return hardware_fixtures_dir()
