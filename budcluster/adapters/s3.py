"""The S3 adapter: boto3 clients for any S3-compatible endpoint."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from budcluster.errors import BudClusterError, PermanentError, TemporaryError


class S3Error(BudClusterError):
    """Base class of this adapter's errors."""


class S3ConfigError(S3Error, PermanentError):
    """The endpoint or credentials are unusable."""


class S3Unavailable(S3Error, TemporaryError):
    """The endpoint did not answer in time."""


def make_s3_client(
    *,
    endpoint_url: str | None,
    region: str | None,
    access_key_id: str,
    secret_access_key: str,
    session_token: str | None = None,
    timeout_s: float = 30.0,
) -> Any:
    """A boto3 S3 client with connect/read timeouts and bounded retries."""
    config = Config(
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        retries={"max_attempts": 3, "mode": "standard"},
        # Path-style addressing works with MinIO, Ceph and moto as well as AWS.
        s3={"addressing_style": "path"},
    )
    try:
        return boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or "us-east-1",
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            aws_session_token=session_token,
            config=config,
        )
    except ValueError as exc:
        raise S3ConfigError(f"invalid S3 endpoint '{endpoint_url}': {exc}") from exc
