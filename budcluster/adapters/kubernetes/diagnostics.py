"""What explains an object's trouble: its events and its pods' logs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from budcluster.adapters.kubernetes.client import (
    DEFAULT_TIMEOUT_S,
    request_json,
    retry_deadline_s,
)
from budcluster.adapters.kubernetes.errors import TRANSPORT_ERRORS, translate
from budcluster.adapters.kubernetes.retry import with_retries


def events_for(
    api_client: k8s_client.ApiClient,
    namespace: str,
    *,
    kind: str | None = None,
    name: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[dict[str, Any]]:
    """Core events about one object (or the whole namespace), oldest first."""
    fields = [f"involvedObject.{k}={v}" for k, v in (("kind", kind), ("name", name)) if v]
    query = [("fieldSelector", ",".join(fields))] if fields else []
    found = request_json(
        api_client,
        "GET",
        f"/api/v1/namespaces/{namespace}/events",
        what="list events",
        query=query,
        timeout_s=timeout_s,
    )
    items = [dict(item) for item in found.get("items", [])]

    def when(event: Mapping[str, Any]) -> str:
        return str(
            event.get("lastTimestamp")
            or event.get("eventTime")
            or event.get("metadata", {}).get("creationTimestamp")
            or ""
        )

    return sorted(items, key=when)


def pod_log_tail(
    api_client: k8s_client.ApiClient,
    namespace: str,
    pod: str,
    *,
    lines: int = 50,
    container: str | None = None,
    previous: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[str]:
    """The last ``lines`` lines of a pod's log; empty when it has none yet."""
    query = [("tailLines", str(lines))]
    if container:
        query.append(("container", container))
    if previous:
        query.append(("previous", "true"))
    path = f"/api/v1/namespaces/{namespace}/pods/{pod}/log"

    def once() -> Any:
        method, url, headers, _, _ = api_client.param_serialize(
            "GET",
            path,
            query_params=query,
            header_params={"Accept": "text/plain"},
            auth_settings=["BearerToken"],
        )
        response = api_client.call_api(method, url, headers, _request_timeout=timeout_s)
        data = response.read()  # type: ignore[no-untyped-call]
        if not 200 <= int(response.status) <= 299:
            raise ApiException(http_resp=response)
        return data

    try:
        data = with_retries(
            once, f"log of pod {pod} (GET {path})", deadline_s=retry_deadline_s(api_client)
        )
    except ApiException as exc:
        if exc.status in (400, 404):  # container not started yet, or pod gone
            return []
        raise translate(exc, f"log of pod {pod}") from exc
    except TRANSPORT_ERRORS as exc:
        raise translate(exc, f"log of pod {pod}") from exc
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
    return text.splitlines()[-lines:]
