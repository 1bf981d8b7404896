"""Shared helpers for the emulator's own tests."""

from __future__ import annotations

import pytest
from kubernetes import client, config

from tests.k8s_emulator.emulator import Emulator
from tests.k8s_emulator.fixtures import (  # noqa: F401  (fixtures)
    emulator_factory,
    emulator_kubeconfig,
    k8s_emulator,
    openshift_emulator,
)


@pytest.fixture
def api(k8s_emulator: Emulator) -> client.ApiClient:  # noqa: F811  (uses the fixture)
    return config.new_client_from_config_dict(k8s_emulator.kubeconfig_dict())
