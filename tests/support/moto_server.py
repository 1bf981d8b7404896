"""moto's server (EC2, IAM, EKS, S3, STS) in a subprocess, for the Terraform tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.prefect_server import free_port

MOTO_SERVER = str(Path(sys.executable).with_name("moto_server"))
PLUGIN_MIRROR = Path("/opt/tf-plugins")
AWS_PROVIDER = PLUGIN_MIRROR / "registry.terraform.io/hashicorp/aws"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIAMOTOTESTKEY00001",
    "AWS_SECRET_ACCESS_KEY": "moto-secret-access-key-for-tests",
}
REGION = "us-east-1"


@dataclass(frozen=True)
class MotoServer:
    endpoint: str

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def reset(self) -> None:
        """Forget every resource (moto's reset API), so each test starts from an empty account."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=30).close()


@contextmanager
def running_moto_server(log_path: Path) -> Iterator[MotoServer]:
    port = free_port()
    env = dict(os.environ)
    # Without the managed policies, attaching AmazonEKSClusterPolicy & co. fails.
    env["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [MOTO_SERVER, "-H", "127.0.0.1", "-p", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"moto_server did not start:\n{log_path.read_text()}"
                    ) from None
                time.sleep(0.2)
        yield MotoServer(endpoint)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
