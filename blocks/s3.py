"""An S3-compatible model registry: endpoint, bucket, and sealed access keys."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from blocks._sealed import SealedCredentialsBlock
from budcluster.adapters.s3 import make_s3_client


class S3Registry(SealedCredentialsBlock):
    """A bucket that holds model weights (AWS S3, MinIO, Ceph, ...).

    Example:
        Store a registry with the CLI (keys come from the environment or a prompt),
        then make a client in a flow:
        ```bash
        export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...
        budcluster credentials add-s3 models --endpoint https://minio.local:9000 --bucket llm
        ```
        ```python
        from blocks.s3 import S3Registry

        registry = S3Registry.load("BLOCK_NAME")
        s3 = registry.get_client()
        s3.list_objects_v2(Bucket=registry.bucket)
        ```
    """

    _block_type_name = "Bud S3 Registry"
    _logo_url = "https://cdn.sanity.io/images/3ugk85nk/production/d74b16fe84ce626345adf235a47008fea2869a60-225x225.png"  # type: ignore[assignment]
    _sealed_fields: ClassVar[tuple[str, ...]] = ("access_key_id", "secret_access_key")
    _add_command: ClassVar[str] = "budcluster credentials add-s3"

    endpoint_url: str | None = Field(
        default=None, description="S3 endpoint URL; empty means AWS's own endpoint."
    )
    bucket: str = Field(description="Bucket that holds the models.")
    region: str | None = Field(default=None, description="Region name, if the endpoint needs one.")
    access_key_id: str = Field(description="Access key id, sealed (bsc1 envelope).")
    secret_access_key: str = Field(description="Secret access key, sealed (bsc1 envelope).")

    @classmethod
    def from_keys(
        cls,
        block_name: str,
        *,
        bucket: str,
        access_key_id: str,
        secret_access_key: str,
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> S3Registry:
        return cls._build(
            block_name,
            {"access_key_id": access_key_id, "secret_access_key": secret_access_key},
            endpoint_url=endpoint_url,
            bucket=bucket,
            region=region,
        )

    def as_environment(self) -> dict[str, str]:
        """The variables `python -m budcluster.transfer` reads on a host (keep in memory)."""
        env = {
            "AWS_ACCESS_KEY_ID": self._open("access_key_id") or "",
            "AWS_SECRET_ACCESS_KEY": self._open("secret_access_key") or "",
        }
        if self.endpoint_url:
            env["BUDCLUSTER_S3_ENDPOINT_URL"] = self.endpoint_url
        if self.region:
            env["AWS_DEFAULT_REGION"] = self.region
        return env

    def get_client(self, timeout_s: float = 30.0) -> Any:
        """A boto3 S3 client; the keys exist only inside it."""
        return make_s3_client(
            endpoint_url=self.endpoint_url,
            region=self.region,
            access_key_id=self._open("access_key_id") or "",
            secret_access_key=self._open("secret_access_key") or "",
            timeout_s=timeout_s,
        )
