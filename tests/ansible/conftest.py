"""Fixtures for the hosts-target tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from budcluster.targets.hosts import HostsTarget, RestartPolicy
from tests.ansible.helpers import local_inventory


@pytest.fixture
def target(tmp_path: Path) -> HostsTarget:
    return HostsTarget(
        local_inventory(),
        executables={"python": sys.executable},
        state_dir=str(tmp_path / "state"),
        restart=RestartPolicy(max_restarts=2, backoff_s=0.2, stable_s=30, stop_timeout_s=5),
    )
