"""The ``services/<[scheme:]name[:port]>/proxy/<path>`` subresource, as the API server serves it.

Resolution follows the real registry (``pkg/registry/core/service/storage``): a port number is
mapped to the Service port's name (503 ``no service port N found for service "x"``); the
endpoints are the Service's selected pods that are Ready (or all of them with
``publishNotReadyAddresses``), with the target port resolved against the pod's container
ports as the endpoints controller does; none gives 503 ``no endpoints available for service
"x"``. A random ready address is dialled; a refused dial is 503 ``error trying to reach
service: dial tcp ...``. Otherwise the method, path, query, body and headers go to the pod's
simulated server (an inference engine, ``runtime_http``, or a LiteLLM proxy, ``litellm_http``)
and its status and body come back as they are. A streamed answer (``text/event-stream``)
comes back event by event, each written as the backend produces it: the real proxy is Go's
``httputil.ReverseProxy``, which flushes every write of an event stream at once instead of
its 200 ms flush interval (``server.py``).

Headers reach the backend as the real API server passes them (``forwarded_headers``): its
authentication filter deletes ``Authorization`` once it has authenticated the request with
it, and clears the front-proxy identity headers (``X-Remote-User``, ``X-Remote-Group``,
``X-Remote-Uid``, ``X-Remote-Extra-*``); impersonation consumes ``Impersonate-*``; Go's
reverse proxy drops the hop-by-hop headers. Every other header (``x-litellm-api-key``,
``Content-Type``, ...) is forwarded. The ``X-Forwarded-*`` headers the real proxy adds are
not simulated.

``dial_url`` is the same resolution as a pod inside the cluster sees it (cluster DNS and
kube-proxy): what the simulated LiteLLM proxy uses to reach the runtimes it routes to.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tests.k8s_emulator.errors import ApiError, bad_request, not_found
from tests.k8s_emulator.kubelet import COLLECTOR_LABEL, TRANSFER_LABEL, is_terminal
from tests.k8s_emulator.litellm_http import SimulatedLiteLLM, is_litellm
from tests.k8s_emulator.runtime_http import HttpAnswer, SimulatedEngine
from tests.k8s_emulator.selectors import labels_match, selector_from_object
from tests.k8s_emulator.traffic import BODY_KEPT, ServedRequest

if TYPE_CHECKING:
    from tests.k8s_emulator.cluster import Cluster

Obj = dict[str, Any]
SimulatedServer = SimulatedEngine | SimulatedLiteLLM


_NOT_FORWARDED = {
    "authorization",
    "x-remote-user",
    "x-remote-group",
    "x-remote-uid",
    # hop-by-hop (RFC 9110 7.6.1, Go's httputil.ReverseProxy), and what the transport sets
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
_NOT_FORWARDED_PREFIXES = ("x-remote-extra-", "impersonate-")


def forwarded_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The client's headers as the backend receives them through the API server's proxy,
    names lower-cased (HTTP header names are case-insensitive)."""
    forwarded: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if key in _NOT_FORWARDED or key.startswith(_NOT_FORWARDED_PREFIXES):
            continue
        forwarded[key] = value
    return forwarded


def _unavailable(message: str) -> ApiError:
    return ApiError(503, "ServiceUnavailable", message)


def split_scheme_name_port(service_id: str) -> tuple[str, str, str]:
    """``name``, ``name:port`` or ``scheme:name:port`` -> (scheme, name, port)."""
    parts = service_id.split(":")
    if len(parts) == 1:
        scheme, name, port = "", parts[0], ""
    elif len(parts) == 2:
        scheme, name, port = "", parts[0], parts[1]
    elif len(parts) == 3:
        scheme, name, port = parts
    else:
        raise bad_request(f'invalid service request "{service_id}"')
    if not name or scheme not in ("", "http", "https"):
        raise bad_request(f'invalid service request "{service_id}"')
    return scheme, name, port


def _pod_ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _target_port(pod: Obj, service_port: Obj) -> int | None:
    """The container port a Service port reaches on this pod (named ports by name)."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol", "TCP")
    for container in pod["spec"].get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and port.get("protocol", "TCP") == protocol:
                return int(port["containerPort"])
    return None  # the endpoints controller leaves such a pod out for this port


def endpoints(cluster: Cluster, service: Obj, port_name: str) -> list[tuple[Obj, int]]:
    """(pod, port) of every address the Service's endpoints hold for ``port_name``."""
    spec = service.get("spec") or {}
    selector = spec.get("selector")
    if not selector:
        return []  # a Service without a selector has only the Endpoints someone writes
    wanted = [p for p in spec.get("ports") or [] if p.get("name", "") == port_name]
    if not wanted:
        return []
    publish_unready = bool(spec.get("publishNotReadyAddresses"))
    requirements = selector_from_object({"matchLabels": selector})
    found: list[tuple[Obj, int]] = []
    pods = cluster.store.list(cluster.registry.get("pods"), service["metadata"]["namespace"])
    for pod in pods:
        status = pod.get("status") or {}
        if (
            not labels_match(requirements, pod["metadata"].get("labels"))
            or pod["metadata"].get("deletionTimestamp")
            or is_terminal(pod)
            or not status.get("podIP")
            or not (publish_unready or _pod_ready(pod))
        ):
            continue
        port = _target_port(pod, wanted[0])
        if port is not None:
            found.append((pod, port))
    return found


def server_on(cluster: Cluster, pod: Obj, port: int) -> SimulatedServer | None:
    """The simulated server of the pod's container that listens on ``port``, if any: a
    LiteLLM proxy for a LiteLLM image (its config read from the files the container
    started with), else an inference engine. Collector and transfer pods serve nothing."""
    labels = pod["metadata"].get("labels") or {}
    if any(labels.get(k) == v for k, v in (COLLECTOR_LABEL, TRANSFER_LABEL)):
        return None
    namespace = pod["metadata"]["namespace"]
    for container in pod["spec"].get("containers") or []:
        server: SimulatedServer
        if is_litellm(container):
            files = cluster.kubelet.files(pod, container["name"])
            env = cluster.kubelet.env(pod, container["name"])

            def forward(url: str, method: str, body: bytes) -> HttpAnswer:
                return dial_url(cluster, url, method, body, from_namespace=namespace)

            server = SimulatedLiteLLM.of(container, files, forward, env)
        else:
            server = SimulatedEngine.of(container)
        if server.port == port:
            return server
    return None


def _connect(cluster: Cluster, pod: Obj, port: int) -> SimulatedServer | None:
    """The server that accepts a TCP connection to the pod's port; None: refused."""
    server = server_on(cluster, pod, port)
    if server is None or not server.accepts_connections(_pod_ready(pod)):
        return None
    return server


def _dial(
    cluster: Cluster,
    pod: Obj,
    port: int,
    scheme: str,
    method: str,
    path: str,
    body: bytes,
    headers: Mapping[str, str],
) -> HttpAnswer:
    address = f"{pod['status']['podIP']}:{port}"
    server = _connect(cluster, pod, port)
    if server is None:
        raise _unavailable(
            f"error trying to reach service: dial tcp {address}: connect: connection refused"
        )
    if scheme == "https":
        raise _unavailable(
            "error trying to reach service: tls: first record does not look like a TLS handshake"
        )
    answer = server.answer(method, path, body, _pod_ready(pod), headers)
    _served(cluster, pod, port, server, (method, path, body), answer, "service-proxy", headers)
    return answer


def _served(
    cluster: Cluster,
    pod: Obj,
    port: int,
    server: SimulatedServer,
    request: tuple[str, str, bytes],
    answer: HttpAnswer,
    via: str,
    headers: Mapping[str, str],
) -> None:
    method, path, body = request
    cluster.engine_log.append(
        ServedRequest(
            namespace=pod["metadata"]["namespace"],
            pod=pod["metadata"]["name"],
            port=port,
            server="litellm" if isinstance(server, SimulatedLiteLLM) else server.engine,
            method=method,
            path=path,
            status=answer.status,
            via=via,
            headers=dict(headers),
            body=body[:BODY_KEPT],
        )
    )


def dial_url(
    cluster: Cluster, url: str, method: str, body: bytes, *, from_namespace: str
) -> HttpAnswer:
    """An HTTP request from a pod in ``from_namespace`` to ``url``, as cluster DNS and
    kube-proxy route it: ``<service>[.<namespace>[.svc[.cluster.local]]]:<port>`` names a
    Service (the pod's namespace when none is given), the port is a Service port, and one
    of the Service's ready endpoints answers. Raises ConnectionError as a client would see
    it: an unknown name does not resolve, a port or Service without endpoints refuses.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    labels = host.split(".")
    suffix = labels[2:]
    if not labels[0] or suffix not in ([], ["svc"], ["svc", "cluster", "local"]):
        raise ConnectionError(f"[Errno -2] Name or service not known: {host}")
    name = labels[0]
    namespace = labels[1] if len(labels) > 1 else from_namespace
    service = cluster.store.find(cluster.registry.get("services"), namespace, name)
    if service is None:
        raise ConnectionError(f"[Errno -2] Name or service not known: {host}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    named = [
        p.get("name", "")
        for p in (service.get("spec") or {}).get("ports") or []
        if int(p.get("port", -1)) == port
    ]
    addresses = endpoints(cluster, service, named[0]) if named else []
    if not addresses:
        raise ConnectionError(f"[Errno 111] Connection refused: {host}:{port}")
    pod, target = random.choice(addresses)
    server = _connect(cluster, pod, target)
    if server is None:
        raise ConnectionError(f"[Errno 111] Connection refused: {host}:{port}")
    if parts.scheme == "https":
        raise ConnectionError(f"[SSL: WRONG_VERSION_NUMBER] wrong version number: {host}:{port}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    answer = server.answer(method, path, body, _pod_ready(pod))
    _served(cluster, pod, target, server, (method, path, body), answer, "cluster-network", {})
    return answer


def proxy(
    cluster: Cluster,
    namespace: str,
    service_id: str,
    method: str,
    path: str,
    body: bytes,
    headers: Mapping[str, str] | None = None,
) -> HttpAnswer:
    """Answer one proxied request; raises ApiError for what the API server answers itself.
    ``headers`` are the client's: only ``forwarded_headers`` of them reach the backend."""
    scheme, name, port = split_scheme_name_port(service_id)
    services = cluster.registry.get("services")
    service = cluster.store.find(services, namespace, name)
    if service is None:
        raise not_found(services, name)
    if port.isdigit():
        named = [
            p.get("name", "")
            for p in (service.get("spec") or {}).get("ports") or []
            if int(p.get("port", -1)) == int(port)
        ]
        if not named:
            raise _unavailable(f'no service port {int(port)} found for service "{name}"')
        port = named[0]
    addresses = endpoints(cluster, service, port)
    if not addresses:
        # Like the registry: no endpoints at all names the Service; endpoints that lack
        # this port name the id asked for.
        other_ports = [p.get("name", "") for p in (service.get("spec") or {}).get("ports") or []]
        some = any(endpoints(cluster, service, p) for p in other_ports)
        raise _unavailable(f'no endpoints available for service "{service_id if some else name}"')
    pod, target = random.choice(addresses)
    return _dial(cluster, pod, target, scheme, method, path, body, forwarded_headers(headers or {}))
