"""Fixtures of the transfer tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from budcluster.adapters.s3 import make_s3_client
from tests.support.prefect_server import free_port
from tests.transfer.model_files import SMALL_MODEL, write_model

BUCKET = "models"


@pytest.fixture
def model_dir(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    root = tmp_path / "model"
    return root, write_model(root, SMALL_MODEL)


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    env: dict[str, str]
    client: Any

    def upload_dir(self, root: Path, prefix: str) -> None:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                key = f"{prefix}/{path.relative_to(root).as_posix()}"
                self.client.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": "test-key-id",
        "AWS_SECRET_ACCESS_KEY": "test-secret",
        "AWS_REGION": "us-east-1",
        "BUDCLUSTER_S3_ENDPOINT_URL": endpoint,
    }
    client = make_s3_client(
        endpoint_url=endpoint,
        region="us-east-1",
        access_key_id=env["AWS_ACCESS_KEY_ID"],
        secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        timeout_s=10,
    )
    client.create_bucket(Bucket=BUCKET)
    try:
        yield S3Server(endpoint, env, client)
    finally:
        server.stop()
