"""How the worker reaches a runtime's Service from outside the cluster. Pure.

A rollout records the runtime's in-cluster URL, ``http://<release>.<namespace>.svc:<port>``:
what a pod (the gateway) dials, and what a worker outside the cluster cannot even resolve.
The worker reaches the same Service through the API server's service proxy instead
(``/api/v1/namespaces/<ns>/services/<name>:<port>/proxy/...``), with the kubeconfig's
server URL, CA and credentials: no network path from the worker to the pods is needed,
only the API server and RBAC ``get``/``create`` on ``services/proxy`` in that namespace.
The endpoint checks (:mod:`.probe`) go the same way through the kubernetes client; the
benchmark client gets an :class:`~budcluster.bench.access.EndpointAccess` from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from budcluster.bench.access import CredentialPlugin, EndpointAccess, IssuedCredential
from budcluster.kubeconfig import ApiServerCredentials

VIA_SERVICE_PROXY = "via API server service proxy"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class InClusterService:
    """A Service named by an in-cluster URL."""

    namespace: str
    name: str
    port: int
    scheme: str = "http"

    def proxy_id(self) -> str:
        """``name:port``, or ``https:name:port`` for a Service that serves TLS."""
        return (
            f"{self.name}:{self.port}"
            if self.scheme == "http"
            else (f"{self.scheme}:{self.name}:{self.port}")
        )


def service_proxy_path(namespace: str, service_id: str) -> str:
    """The API server's proxy path of a Service (the same format as
    ``budcluster.adapters.kubernetes.service_proxy_path``, which pure code cannot import;
    tests/kubernetes/test_reach.py keeps the two equal)."""
    return f"/api/v1/namespaces/{namespace}/services/{service_id}/proxy"


def in_cluster_service(url: str) -> InClusterService | None:
    """The Service of ``http(s)://<name>.<namespace>.svc[.cluster.local]:<port>[/...]``;
    None for any other URL (a host, a load balancer), which the worker dials itself."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    labels = (parts.hostname or "").split(".")
    if (
        parts.scheme not in ("http", "https")
        or len(labels) < 3
        or labels[2:] not in (["svc"], ["svc", "cluster", "local"])
        or not all(_DNS_LABEL.match(label) for label in labels[:2])
    ):
        return None
    default = 443 if parts.scheme == "https" else 80
    return InClusterService(labels[1], labels[0], port or default, parts.scheme)


def service_proxy_access(
    credentials: ApiServerCredentials,
    service: InClusterService,
    *,
    plugin: CredentialPlugin | None = None,
    issued: IssuedCredential | None = None,
) -> EndpointAccess:
    """Requests to ``service`` through the API server named by ``credentials``.

    The API server takes the user's ``Authorization`` for itself and forwards the rest of
    the request (path, body, other headers) to a ready endpoint of the Service; streamed
    answers (``text/event-stream``) come back flushed as they are written.

    ``plugin``/``issued``: the user's exec plugin, wrapped by the caller (pure code cannot
    run it), and what it issued just now. Its token is sent instead of ``username``/
    ``password`` (the caller does not run a plugin beside a ``token``, which wins, as in
    the kubernetes client) and is renewed during the run; a client certificate it issued
    replaces the kubeconfig's.
    """
    base = credentials.server.rstrip("/") + service_proxy_path(
        service.namespace, service.proxy_id()
    )
    if (plugin is None) != (issued is None):
        raise ValueError("plugin and issued go together")
    headers = credentials.auth_headers()
    cert, key = credentials.client_cert_pem, credentials.client_key_pem
    if issued is not None:
        if issued.token:
            headers = tuple(h for h in headers if h[0] != "Authorization")
        if issued.client_cert_pem and issued.client_key_pem:
            cert, key = issued.client_cert_pem, issued.client_key_pem
    return EndpointAccess(
        base_url=base,
        via=f"{VIA_SERVICE_PROXY} {base}",
        headers=headers,
        ca_pem=credentials.ca_pem,
        client_cert_pem=cert,
        client_key_pem=key,
        verify_tls=not credentials.insecure_skip_tls_verify,
        tls_server_name=credentials.tls_server_name,
        forwards_authorization=False,
        credential_plugin=plugin,
        issued=issued,
    )
