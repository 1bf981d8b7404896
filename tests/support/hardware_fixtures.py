"""Locate the real hardware fixtures: <repo root>/../shared/fixtures/hardware, or
$BUDCLUSTER_HARDWARE_FIXTURES. A missing directory fails the tests; it never skips them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def hardware_fixtures_dir() -> Path:
    override = os.environ.get("BUDCLUSTER_HARDWARE_FIXTURES")
    path = Path(override) if override else REPO_ROOT.parent / "shared" / "fixtures" / "hardware"
    if not path.is_dir():
        pytest.fail(
            f"hardware fixtures not found at {path}; clone shared/ next to the repository "
            "or set BUDCLUSTER_HARDWARE_FIXTURES"
        )
    return path
