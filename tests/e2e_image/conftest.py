"""Fixtures of the image tests: the image built from the Containerfile, a working container
of it, and the API server (the emulator over TLS) its pods talk to.

The whole package is one xdist group (tests/conftest.py): the build is shared.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.k8s_emulator.emulator import Emulator, start_emulator
from tests.support.container_image import (
    BuiltImage,
    ImageContainer,
    Storage,
    build_image,
    image_container,
    require_container_tools,
)
from tests.support.in_cluster import SERVICE_ACCOUNT_MOUNT, server_tls, service_account_dir

NAMESPACE = "default"


@pytest.fixture(scope="package")
def built_image() -> BuiltImage:
    require_container_tools()
    return build_image(Storage.default())


@pytest.fixture(scope="package")
def container(built_image: BuiltImage) -> Iterator[ImageContainer]:
    with image_container(built_image) as working:
        yield working


@dataclass(frozen=True)
class InClusterApi:
    """The emulator over HTTPS, and the service-account folder a pod of it mounts."""

    emulator: Emulator
    service_account: Path

    @property
    def volumes(self) -> dict[Path, str]:
        return {self.service_account: f"{SERVICE_ACCOUNT_MOUNT}:ro"}

    @property
    def env(self) -> dict[str, str]:
        return {
            "KUBERNETES_SERVICE_HOST": self.emulator.host,
            "KUBERNETES_SERVICE_PORT": str(self.emulator.port),
        }

    def config_map(self, name: str) -> dict | None:  # type: ignore[type-arg]
        for item in self.emulator.objects("configmaps", namespace=NAMESPACE):
            if item["metadata"]["name"] == name:
                return item
        return None


@pytest.fixture(scope="package")
def in_cluster_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InClusterApi]:
    root = tmp_path_factory.mktemp("in-cluster")
    tls = server_tls(root / "tls")
    token = secrets.token_urlsafe(24)
    emulator = start_emulator(token=token, ssl_context=tls.context)
    try:
        folder = service_account_dir(
            root / "serviceaccount", token=token, ca_pem=tls.ca_pem, namespace=NAMESPACE
        )
        yield InClusterApi(emulator, folder)
    finally:
        emulator.stop()
    assert not emulator.errors, emulator.errors
