"""Fixtures of the Kubernetes backend tests (the pieces live in helpers.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from budcluster.planning.models import RuntimePlan
from budcluster.targets.base import RolloutSpec
from tests.k8s_emulator.emulator import Emulator
from tests.k8s_emulator.fixtures import emulator_factory  # noqa: F401  (pytest fixture)
from tests.k8s_emulator.nodes import h100_node
from tests.kubernetes.helpers import make_tp2_plan, make_tp2_rollout


@pytest.fixture(scope="session")
def tp2_plan() -> RuntimePlan:
    return make_tp2_plan()


@pytest.fixture(scope="session")
def tp2_rollout(tp2_plan: RuntimePlan) -> RolloutSpec:
    return make_tp2_rollout(tp2_plan)


@pytest.fixture
def h100_k8s(emulator_factory: Callable[..., Emulator]) -> Emulator:  # noqa: F811
    """An emulated Kubernetes cluster of one node with 8 whole H100 GPUs."""
    return emulator_factory(flavour="kubernetes", nodes=[h100_node()])
