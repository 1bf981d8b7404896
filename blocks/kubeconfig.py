"""Kubeconfig credentials for a Kubernetes or OpenShift cluster."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import yaml
from kubernetes.client import ApiClient
from pydantic import Field

from blocks._sealed import SealedCredentialsBlock
from budcluster.adapters.kubernetes import api_client_from_kubeconfig
from budcluster.kubeconfig import parse_kubeconfig, server_url
from budcluster.secretfiles import temporary_secret_file


class KubeconfigCredentials(SealedCredentialsBlock):
    """A kubeconfig, encrypted on this machine before it reaches Prefect.

    The kubeconfig is opened in memory with the project key (``crypto-keys/``) and
    turned into an API client; it is never written to disk except, for tools that
    insist on a path, as a 0600 file removed right after use.

    Example:
        Store a kubeconfig with the CLI, then load it in a flow:
        ```bash
        budcluster credentials add-kubeconfig prod-cluster ~/.kube/config --context prod
        ```
        ```python
        from blocks.kubeconfig import KubeconfigCredentials

        credentials = KubeconfigCredentials.load("BLOCK_NAME")
        api_client = credentials.get_api_client()
        ```
    """

    _block_type_name = "Bud Kubeconfig Credentials"
    _logo_url = "https://cdn.sanity.io/images/3ugk85nk/production/2d0b896006ad463b49c28aaac14f31e00e32cfab-250x250.png"  # type: ignore[assignment]
    _sealed_fields: ClassVar[tuple[str, ...]] = ("kubeconfig",)
    _add_command: ClassVar[str] = "budcluster credentials add-kubeconfig"

    kubeconfig: str = Field(description="The kubeconfig YAML, sealed (bsc1 envelope).")
    context: str = Field(description="The kubeconfig context to use.")
    server: str = Field(default="", description="API server URL of that context (not secret).")

    @classmethod
    def from_kubeconfig(
        cls, block_name: str, kubeconfig_text: str, context: str | None = None
    ) -> KubeconfigCredentials:
        """Validate a kubeconfig and seal it for the block ``block_name``."""
        config, chosen = parse_kubeconfig(kubeconfig_text, context=context)
        return cls._build(
            block_name,
            {"kubeconfig": kubeconfig_text},
            context=chosen,
            server=server_url(config, chosen),
        )

    def get_kubeconfig_dict(self) -> dict[str, Any]:
        text = self._open("kubeconfig")
        config, _ = parse_kubeconfig(text or "", context=self.context)
        return config

    def get_api_client(self, timeout_s: float = 30.0) -> ApiClient:
        """An API client for the stored context, built in memory."""
        return api_client_from_kubeconfig(
            self.get_kubeconfig_dict(), self.context, timeout_s=timeout_s
        )

    @contextmanager
    def kubeconfig_file(self) -> Iterator[Path]:
        """A 0600 kubeconfig file for kubectl or helm, deleted when the block exits."""
        config = self.get_kubeconfig_dict()
        config["current-context"] = self.context
        with temporary_secret_file(yaml.safe_dump(config), name="kubeconfig") as path:
            yield path
