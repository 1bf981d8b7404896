"""Fixtures of the Kubernetes backend tests (the pieces live in helpers.py)."""

from __future__ import annotations

import pytest

from budcluster.planning.models import RuntimePlan
from budcluster.targets.base import RolloutSpec
from tests.kubernetes.helpers import make_tp2_plan, make_tp2_rollout


@pytest.fixture(scope="session")
def tp2_plan() -> RuntimePlan:
    return make_tp2_plan()


@pytest.fixture(scope="session")
def tp2_rollout(tp2_plan: RuntimePlan) -> RolloutSpec:
    return make_tp2_rollout(tp2_plan)
