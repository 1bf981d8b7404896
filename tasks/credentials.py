"""Opening credentials blocks for the sources a flow reads from."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from blocks.s3 import S3Registry
from budcluster.errors import ConfigurationError
from budcluster.job_requests import ModelSourceRequest
from budcluster.targets.base import ModelSourceSpec


def model_source(request: ModelSourceRequest) -> ModelSourceSpec:
    """The source with the in-memory variables it needs (S3 keys from the registry block)."""
    if "://" not in request.uri:
        # Hosts run the copy from their own working directory: a relative path means the
        # controller's, so it travels absolute.
        return ModelSourceSpec(str(Path(request.uri).expanduser().resolve()))
    if not request.uri.startswith("s3://"):
        return ModelSourceSpec(request.uri)
    if not request.registry_block:
        raise ConfigurationError(
            f"model uri {request.uri!r} is on S3: set model.registry_block to a Bud S3 "
            "Registry block (`budcluster credentials add-s3`)"
        )
    registry = cast(S3Registry, S3Registry.load(request.registry_block))
    return ModelSourceSpec(request.uri, credentials_env=registry.as_environment())
