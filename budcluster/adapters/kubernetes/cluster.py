"""Facts about the cluster itself: the server's version and which platform it is."""

from __future__ import annotations

from kubernetes import client as k8s_client

from budcluster.adapters.kubernetes.client import DEFAULT_TIMEOUT_S, request_json
from budcluster.adapters.kubernetes.errors import KubernetesNotFound


def server_version(
    api_client: k8s_client.ApiClient, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> str:
    """The API server's gitVersion, e.g. ``v1.31.2``."""
    found = request_json(api_client, "GET", "/version", what="server version", timeout_s=timeout_s)
    return str(found.get("gitVersion", "unknown"))


def served_api_groups(
    api_client: k8s_client.ApiClient, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> set[str]:
    """Names of the API groups the server serves (the core group is not among them)."""
    found = request_json(api_client, "GET", "/apis", what="API discovery", timeout_s=timeout_s)
    return {str(group.get("name")) for group in found.get("groups", [])}


OPENSHIFT_GROUP = "config.openshift.io"


def platform_kind(groups: set[str]) -> str:
    """ "openshift" when ``config.openshift.io`` is served, else "kubernetes"."""
    return "openshift" if OPENSHIFT_GROUP in groups else "kubernetes"


def serves_resource(
    api_client: k8s_client.ApiClient,
    group_version: str,
    plural: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> bool:
    """Whether discovery lists ``plural`` in ``group_version`` (e.g. ``keda.sh/v1alpha1``,
    ``scaledobjects``): a CRD's resource is listed once the CRD is established."""
    try:
        found = request_json(
            api_client,
            "GET",
            f"/apis/{group_version}",
            what=f"API discovery of {group_version}",
            timeout_s=timeout_s,
        )
    except KubernetesNotFound:
        return False  # the group or version is not served at all
    return any(resource.get("name") == plural for resource in found.get("resources", []))
