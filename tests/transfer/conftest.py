"""Fixtures of the transfer tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.transfer.model_files import SMALL_MODEL, write_model


@pytest.fixture
def model_dir(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    root = tmp_path / "model"
    return root, write_model(root, SMALL_MODEL)
