"""The Kubernetes adapter: the one place that talks to an API server.

Clients are built in memory from a kubeconfig mapping; the kubeconfig is never
written to disk by this module.
"""

from __future__ import annotations

from typing import Any, cast

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException

from budcluster.errors import BudClusterError, PermanentError, TemporaryError


class KubernetesError(BudClusterError):
    """Base class of this adapter's errors."""


class KubernetesConfigError(KubernetesError, PermanentError):
    """The kubeconfig cannot produce a client."""


class KubernetesUnavailable(KubernetesError, TemporaryError):
    """The API server could not be reached in time."""


def api_client_from_kubeconfig(
    config: dict[str, Any], context: str | None = None, *, timeout_s: float = 30.0
) -> k8s_client.ApiClient:
    """An ``ApiClient`` for ``context`` of an in-memory kubeconfig."""
    try:
        api_client = cast(
            k8s_client.ApiClient,
            k8s_config.new_client_from_config_dict(config, context=context),  # type: ignore[no-untyped-call]
        )
    except (ConfigException, KeyError, TypeError, ValueError) as exc:
        # The library's messages describe structure, not credentials, so chaining is safe.
        raise KubernetesConfigError(
            f"cannot build a Kubernetes client for context '{context}': {exc}"
        ) from exc
    # Every call made through this client gets a default deadline.
    api_client.configuration.retries = 1
    api_client.rest_client.pool_manager.connection_pool_kw["timeout"] = timeout_s
    return api_client
