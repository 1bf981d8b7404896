"""Cloud provider credentials for provisioning clusters (EKS, AKS) with Terraform."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from blocks._sealed import SealedCredentialsBlock


class AwsCredentials(SealedCredentialsBlock):
    """AWS keys, sealed, handed to Terraform through its process environment only.

    Example:
        ```bash
        export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...
        budcluster credentials add-aws prod-aws --region eu-west-1
        ```
        ```python
        from blocks.cloud import AwsCredentials

        aws = AwsCredentials.load("BLOCK_NAME")
        env = aws.as_environment()  # pass to the terraform subprocess, never log it
        ```
    """

    _block_type_name = "Bud AWS Credentials"
    _logo_url = "https://cdn.sanity.io/images/3ugk85nk/production/d74b16fe84ce626345adf235a47008fea2869a60-225x225.png"  # type: ignore[assignment]
    _sealed_fields: ClassVar[tuple[str, ...]] = (
        "access_key_id",
        "secret_access_key",
        "session_token",
    )
    _add_command: ClassVar[str] = "budcluster credentials add-aws"

    region: str | None = Field(default=None, description="Default region.")
    access_key_id: str = Field(description="Access key id, sealed (bsc1 envelope).")
    secret_access_key: str = Field(description="Secret access key, sealed (bsc1 envelope).")
    session_token: str | None = Field(
        default=None, description="Session token, sealed (bsc1 envelope), if any."
    )

    @classmethod
    def from_keys(
        cls,
        block_name: str,
        *,
        access_key_id: str,
        secret_access_key: str,
        session_token: str | None = None,
        region: str | None = None,
    ) -> AwsCredentials:
        return cls._build(
            block_name,
            {
                "access_key_id": access_key_id,
                "secret_access_key": secret_access_key,
                "session_token": session_token,
            },
            region=region,
        )

    def as_environment(self) -> dict[str, str]:
        env = {
            "AWS_ACCESS_KEY_ID": self._open("access_key_id") or "",
            "AWS_SECRET_ACCESS_KEY": self._open("secret_access_key") or "",
        }
        token = self._open("session_token")
        if token:
            env["AWS_SESSION_TOKEN"] = token
        if self.region:
            env["AWS_REGION"] = self.region
        return env


class AzureCredentials(SealedCredentialsBlock):
    """An Azure service principal, with its client secret sealed.

    Example:
        ```bash
        export AZURE_TENANT_ID=... AZURE_CLIENT_ID=... AZURE_SUBSCRIPTION_ID=...
        export AZURE_CLIENT_SECRET=...
        budcluster credentials add-azure prod-azure
        ```
        ```python
        from blocks.cloud import AzureCredentials

        azure = AzureCredentials.load("BLOCK_NAME")
        env = azure.as_environment()  # ARM_* variables for the terraform subprocess
        ```
    """

    _block_type_name = "Bud Azure Credentials"
    _logo_url = "https://cdn.sanity.io/images/3ugk85nk/production/54e3fa7e00197a4fbd1d82ed62494cb58d08c96a-250x250.png"  # type: ignore[assignment]
    _sealed_fields: ClassVar[tuple[str, ...]] = ("client_secret",)
    _add_command: ClassVar[str] = "budcluster credentials add-azure"

    tenant_id: str = Field(description="Directory (tenant) id.")
    subscription_id: str = Field(description="Subscription id.")
    client_id: str = Field(description="Application (client) id of the service principal.")
    client_secret: str = Field(description="Client secret, sealed (bsc1 envelope).")

    @classmethod
    def from_secret(
        cls,
        block_name: str,
        *,
        tenant_id: str,
        subscription_id: str,
        client_id: str,
        client_secret: str,
    ) -> AzureCredentials:
        return cls._build(
            block_name,
            {"client_secret": client_secret},
            tenant_id=tenant_id,
            subscription_id=subscription_id,
            client_id=client_id,
        )

    def as_environment(self) -> dict[str, str]:
        return {
            "ARM_TENANT_ID": self.tenant_id,
            "ARM_SUBSCRIPTION_ID": self.subscription_id,
            "ARM_CLIENT_ID": self.client_id,
            "ARM_CLIENT_SECRET": self._open("client_secret") or "",
        }
