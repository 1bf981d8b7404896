"""Turn a source URI into a ModelSource."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlparse

from budcluster.transfer.errors import InvalidSourceUri
from budcluster.transfer.local import LocalDirSource, hf_cache_dir, hf_cache_source
from budcluster.transfer.source import ModelSource

S3_ENDPOINT_ENV = "BUDCLUSTER_S3_ENDPOINT_URL"


def parse_source(uri: str, env: Mapping[str, str] | None = None) -> ModelSource:
    """A source for ``uri``; ``env`` (default: this process's environment) supplies keys.

    - ``/models/x``, ``./x`` or ``file:///models/x``: a local directory;
    - ``hf://org/name[@revision]``: an entry of the local Hugging Face cache (HF_HUB_CACHE,
      HF_HOME/hub, or ~/.cache/huggingface/hub), never the hub itself;
    - ``s3://bucket/prefix``: an S3-compatible bucket; keys from AWS_ACCESS_KEY_ID and
      AWS_SECRET_ACCESS_KEY (optionally AWS_SESSION_TOKEN), endpoint from
      BUDCLUSTER_S3_ENDPOINT_URL, region from AWS_REGION or AWS_DEFAULT_REGION.
    """
    environ = os.environ if env is None else env
    if not uri or not uri.strip():
        raise InvalidSourceUri("source URI is empty; give a directory, s3://... or hf://...")
    if uri.startswith("hf://"):
        return _parse_hf(uri, environ)
    if uri.startswith("s3://"):
        return _parse_s3(uri, environ)
    if uri.startswith("file://"):
        parsed = urlparse(uri)
        if parsed.netloc not in ("", "localhost"):
            raise InvalidSourceUri(
                f"{uri}: file:// URIs must name a local path (file:///abs/path), not host {parsed.netloc!r}"
            )
        return LocalDirSource(Path(unquote(parsed.path)), uri=uri)
    if "://" in uri:
        scheme = uri.split("://", 1)[0]
        raise InvalidSourceUri(
            f"{uri}: unsupported scheme {scheme!r}; use a local path, file://, s3:// or hf://"
        )
    return LocalDirSource(Path(uri).expanduser(), uri=uri)


def _parse_hf(uri: str, env: Mapping[str, str]) -> ModelSource:
    body = uri[len("hf://") :].strip("/")
    repo_id, _, revision = body.partition("@")
    if not repo_id:
        raise InvalidSourceUri(f"{uri}: give the model id, e.g. hf://org/name or hf://org/name@rev")
    return hf_cache_source(repo_id, revision or None, hf_cache_dir(env))


def _parse_s3(uri: str, env: Mapping[str, str]) -> ModelSource:
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise InvalidSourceUri(f"{uri}: no bucket; use s3://bucket/prefix")
    access_key = env.get("AWS_ACCESS_KEY_ID", "")
    secret_key = env.get("AWS_SECRET_ACCESS_KEY", "")
    if not access_key or not secret_key:
        raise InvalidSourceUri(
            f"{uri}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment "
            "(keys are never taken from the command line)"
        )
    # Imported here so local and HF transfers work on hosts without boto3.
    from budcluster.adapters.s3 import S3ModelSource, make_s3_client

    client = make_s3_client(
        endpoint_url=env.get(S3_ENDPOINT_ENV) or None,
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
        access_key_id=access_key,
        secret_access_key=secret_key,
        session_token=env.get("AWS_SESSION_TOKEN") or None,
    )
    return S3ModelSource(client, bucket=bucket, prefix=prefix.strip("/"))
