"""HTTP requests to a Service through the API server's service proxy."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s_client

from budcluster.adapters.kubernetes.client import DEFAULT_TIMEOUT_S
from budcluster.adapters.kubernetes.errors import TRANSPORT_ERRORS, translate


@dataclass(frozen=True)
class ProxyResponse:
    """What came back through ``services/<name>:<port>/proxy``: the backend's status and body
    as it answered, or the API server's own ``Status`` when it could not reach one."""

    status: int
    body: bytes
    content_type: str

    def json(self) -> Any:
        """The body decoded as JSON; None when it is empty or not JSON."""
        try:
            return json.loads(self.body) if self.body.strip() else None
        except ValueError:
            return None

    def api_status(self) -> dict[str, Any] | None:
        """The API server's ``Status`` object (no endpoints, cannot dial, forbidden), else None."""
        found = self.json()
        if isinstance(found, dict) and found.get("kind") == "Status" and "code" in found:
            return found
        return None

    def excerpt(self, limit: int = 300) -> str:
        """A short readable form for error messages: the Status message, else the body."""
        status = self.api_status()
        if status is not None:
            return str(status.get("message") or status.get("reason") or self.status)
        return self.body[:limit].decode("utf-8", "replace")


_CONSUMED_BY_API_SERVER = {"authorization"}


def service_proxy_path(namespace: str, service: str, port: str | int, path: str = "") -> str:
    """``/api/v1/namespaces/<ns>/services/<service>:<port>/proxy/<path>``.

    ``port`` is the Service port's name or number, as the API server resolves it.
    """
    return f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy/{path.lstrip('/')}"


def service_proxy(
    api_client: k8s_client.ApiClient,
    namespace: str,
    service: str,
    port: str | int,
    path: str,
    *,
    method: str = "GET",
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> ProxyResponse:
    """One HTTP request to a Service through the API server, with the client's credentials.

    No network path from here to the pods is needed: the API server dials a ready endpoint
    of the Service. Every answer comes back as a ProxyResponse, whatever its status: a
    backend's 4xx/5xx is as much an answer as the API server's 503 ("no endpoints available").
    The generated ``connect_post_namespaced_service_proxy_with_path`` takes no body and
    percent-encodes the ``/`` of the path, so the request is serialised here instead.

    ``headers`` go to the backend as they are, except ``Authorization``: it carries the
    client's own credentials to the API server, which consumes it when it authenticates the
    request and never passes it on, so a backend key must travel in another header
    (LiteLLM's ``x-litellm-api-key``). Asking for it raises ValueError. Header values are
    never part of an error message.
    Raises KubernetesUnavailable when the API server itself cannot be reached in time.
    """
    extra = dict(headers or {})
    if any(name.lower() in _CONSUMED_BY_API_SERVER for name in extra):
        raise ValueError(
            "the API server's service proxy never forwards Authorization (it authenticates "
            "the request with it); send a backend key in another header"
        )
    sent = {"Accept": "application/json", **extra}
    if body is not None:
        sent.setdefault("Content-Type", "application/json")
    what = f"{method} {path} through service {namespace}/{service}:{port}"
    try:
        method_, url, header_params, serialized, _ = api_client.param_serialize(
            method,
            service_proxy_path(namespace, service, port, path),
            header_params=sent,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = api_client.call_api(
            method_, url, header_params, serialized, _request_timeout=timeout_s
        )
        data = response.read()  # type: ignore[no-untyped-call]
    except TRANSPORT_ERRORS as exc:
        raise translate(exc, what) from exc
    content_type = str(response.getheader("Content-Type", ""))  # type: ignore[no-untyped-call]
    return ProxyResponse(int(response.status), bytes(data or b""), content_type)
