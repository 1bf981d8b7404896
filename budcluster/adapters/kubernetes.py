"""The Kubernetes adapter: the one place that talks to an API server.

Clients are built in memory from a kubeconfig mapping; the kubeconfig is never
written to disk by this module (the client itself writes the decoded client key, into the
process's private secrets directory).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from budcluster.errors import BudClusterError, PermanentError, TemporaryError
from budcluster.kubeconfig import KubeconfigInvalid, check_kubeconfig
from budcluster.secretfiles import process_secret_dir

_T = TypeVar("_T")


class KubernetesError(BudClusterError):
    """Base class of this adapter's errors."""


class KubernetesConfigError(KubernetesError, PermanentError):
    """The kubeconfig cannot produce a client."""


class KubernetesUnavailable(KubernetesError, TemporaryError):
    """The API server could not be reached in time."""


def api_client_from_kubeconfig(
    config: dict[str, Any], context: str | None = None, *, timeout_s: float = 30.0
) -> k8s_client.ApiClient:
    """An ``ApiClient`` for ``context`` of an in-memory kubeconfig.

    The kubeconfig is checked again here, whoever built it: nothing in it may run a program
    or read a file on the worker (see ``budcluster.kubeconfig``). The client writes the
    decoded client key and certificates to files; they go to this process's private
    secrets directory, which a later run sweeps even after a ``kill -9``.
    """
    try:
        check_kubeconfig(config, context=context)
    except KubeconfigInvalid as exc:
        raise KubernetesConfigError(str(exc)) from exc
    try:
        api_client = cast(
            k8s_client.ApiClient,
            k8s_config.new_client_from_config_dict(  # type: ignore[no-untyped-call]
                config, context=context, temp_file_path=str(process_secret_dir())
            ),
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


# --- errors ---------------------------------------------------------------------------------


class KubernetesApiError(KubernetesError, PermanentError):
    """The API server refused the request (4xx other than 404/409/410/429)."""

    def __init__(self, message: str, status: int | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class KubernetesNotFound(KubernetesApiError):
    """The object (or its namespace) does not exist."""


class KubernetesConflict(KubernetesApiError):
    """The object already exists, or changed under us."""


class KubernetesTimeout(KubernetesError, TemporaryError):
    """A wait ran out of time before the condition held."""


class KubernetesServerError(KubernetesUnavailable):
    """The API server answered 5xx or 429; retrying may help."""


def _status_message(exc: ApiException) -> str:
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body.startswith("{"):
        try:
            message = json.loads(body).get("message")
        except ValueError:
            message = None
        if message:
            return str(message)
    return str(exc.reason or exc.status)


def translate(exc: Exception, what: str) -> KubernetesError:
    """This adapter's error for a client exception, to be raised ``from exc``."""
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        message = f"{what}: {status} {_status_message(exc)}"
        if status == 404:
            return KubernetesNotFound(message, status, exc.reason)
        if status == 409:
            return KubernetesConflict(message, status, exc.reason)
        if status >= 500 or status in (0, 429):
            return KubernetesServerError(message)
        return KubernetesApiError(message, status, exc.reason)
    return KubernetesUnavailable(f"{what}: the API server did not answer: {exc}")


_TRANSPORT_ERRORS = (ApiException, urllib3.exceptions.HTTPError, OSError)


# --- generic REST over the kinds the charts use ---------------------------------------------

RELEASE_LABEL = "budcluster.io/release"
FIELD_MANAGER = "bud-serve-cluster"
DEFAULT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class KindInfo:
    api_version: str
    plural: str
    namespaced: bool
    order: int
    """Apply order: namespaces and RBAC before what uses them, workloads last."""
    managed: bool = True
    """False for kinds this adapter only reads (nodes, pods, events): never in a release."""


KINDS: dict[str, KindInfo] = {
    "Namespace": KindInfo("v1", "namespaces", False, 0),
    "ServiceAccount": KindInfo("v1", "serviceaccounts", True, 1),
    "ClusterRole": KindInfo("rbac.authorization.k8s.io/v1", "clusterroles", False, 1),
    "Role": KindInfo("rbac.authorization.k8s.io/v1", "roles", True, 2),
    "ClusterRoleBinding": KindInfo("rbac.authorization.k8s.io/v1", "clusterrolebindings", False, 2),
    "RoleBinding": KindInfo("rbac.authorization.k8s.io/v1", "rolebindings", True, 2),
    "Secret": KindInfo("v1", "secrets", True, 3),
    "ConfigMap": KindInfo("v1", "configmaps", True, 3),
    "PersistentVolumeClaim": KindInfo("v1", "persistentvolumeclaims", True, 3),
    "Service": KindInfo("v1", "services", True, 4),
    "PodDisruptionBudget": KindInfo("policy/v1", "poddisruptionbudgets", True, 4),
    "Deployment": KindInfo("apps/v1", "deployments", True, 5),
    "DaemonSet": KindInfo("apps/v1", "daemonsets", True, 5),
    "Job": KindInfo("batch/v1", "jobs", True, 5),
    "Ingress": KindInfo("networking.k8s.io/v1", "ingresses", True, 6),
    "Route": KindInfo("route.openshift.io/v1", "routes", True, 6),
    # Read only: what controllers and the kubelet make, and the nodes themselves.
    "Node": KindInfo("v1", "nodes", False, 9, managed=False),
    "Pod": KindInfo("v1", "pods", True, 9, managed=False),
    "Event": KindInfo("v1", "events", True, 9, managed=False),
}


@dataclass(frozen=True, order=True)
class ObjectRef:
    kind: str
    name: str
    namespace: str | None = None

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ObjectRef:
        meta = obj.get("metadata") or {}
        info = kind_info(str(obj.get("kind")))
        return cls(
            str(obj["kind"]), str(meta["name"]), meta.get("namespace") if info.namespaced else None
        )


def kind_info(kind: str) -> KindInfo:
    try:
        return KINDS[kind]
    except KeyError:
        raise KubernetesApiError(
            f"kind '{kind}' is not one this adapter manages; known kinds: {', '.join(sorted(KINDS))}"
        ) from None


def _collection_path(kind: str, namespace: str | None) -> str:
    info = kind_info(kind)
    base = (
        f"/api/{info.api_version}" if "/" not in info.api_version else f"/apis/{info.api_version}"
    )
    if info.namespaced and namespace:
        return f"{base}/namespaces/{namespace}/{info.plural}"
    # A namespaced kind without a namespace is the all-namespaces collection (list only).
    return f"{base}/{info.plural}"


def request_json(
    api_client: k8s_client.ApiClient,
    method: str,
    path: str,
    *,
    what: str,
    query: list[tuple[str, str]] | None = None,
    body: Any = None,
    content_type: str = "application/json",
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Any:
    """One API call with a deadline; the decoded JSON answer (None when empty)."""
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    try:
        method_, url, header_params, serialized, _ = api_client.param_serialize(
            method,
            path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = api_client.call_api(
            method_, url, header_params, serialized, _request_timeout=timeout_s
        )
        data = response.read()  # type: ignore[no-untyped-call]
        if not 200 <= int(response.status) <= 299:
            raise ApiException(http_resp=response)
    except _TRANSPORT_ERRORS as exc:
        raise translate(exc, what) from exc
    return json.loads(data) if data else None


def get_object(
    api_client: k8s_client.ApiClient, ref: ObjectRef, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> dict[str, Any] | None:
    """The object, or None when it does not exist."""
    try:
        found = request_json(
            api_client,
            "GET",
            f"{_collection_path(ref.kind, ref.namespace)}/{ref.name}",
            what=f"get {ref.kind}/{ref.name}",
            timeout_s=timeout_s,
        )
    except KubernetesNotFound:
        return None
    return cast(dict[str, Any], found)


def secret_value(
    api_client: k8s_client.ApiClient,
    namespace: str,
    name: str,
    key: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> str:
    """One key of a Secret, decoded. Raises KubernetesNotFound naming the Secret or the key
    (never a value) when either is missing."""
    found = get_object(api_client, ObjectRef("Secret", name, namespace), timeout_s=timeout_s)
    if found is None:
        raise KubernetesNotFound(f'secret "{name}" not found in namespace {namespace}', 404)
    encoded = (found.get("data") or {}).get(key)
    if encoded is None:
        raise KubernetesNotFound(f"couldn't find key {key} in Secret {namespace}/{name}", 404)
    try:
        return base64.b64decode(str(encoded), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise KubernetesApiError(
            f"key {key} of Secret {namespace}/{name} is not base64-encoded UTF-8 text"
        ) from None


def with_release_label(obj: Mapping[str, Any], release: str) -> dict[str, Any]:
    labelled = copy.deepcopy(dict(obj))
    labels = labelled.setdefault("metadata", {}).setdefault("labels", {})
    labels[RELEASE_LABEL] = release
    return labelled


def apply_objects(
    api_client: k8s_client.ApiClient,
    objects: Sequence[Mapping[str, Any]],
    release: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[dict[str, Any]]:
    """Create each object, or merge-patch it when it exists; all under the release label.

    Objects go in dependency order (namespaces, RBAC, config, services, workloads). A JSON
    merge patch replaces lists whole, so a container's removed env entry really goes.
    Returns the server's copies.
    """
    applied: list[dict[str, Any]] = []
    ordered = sorted(objects, key=lambda o: kind_info(str(o.get("kind"))).order)
    for obj in ordered:
        body = with_release_label(obj, release)
        ref = ObjectRef.of(body)
        if kind_info(ref.kind).namespaced and not ref.namespace:
            raise KubernetesApiError(f"{ref.kind}/{ref.name}: metadata.namespace is required")
        collection = _collection_path(ref.kind, ref.namespace)
        what = f"apply {ref.kind}/{ref.name}"
        try:
            result = request_json(
                api_client,
                "POST",
                collection,
                what=what,
                body=body,
                query=[("fieldManager", FIELD_MANAGER)],
                timeout_s=timeout_s,
            )
        except KubernetesConflict:
            result = request_json(
                api_client,
                "PATCH",
                f"{collection}/{ref.name}",
                what=what,
                body=body,
                query=[("fieldManager", FIELD_MANAGER)],
                content_type="application/merge-patch+json",
                timeout_s=timeout_s,
            )
        applied.append(cast(dict[str, Any], result))
    return applied


def list_objects(
    api_client: k8s_client.ApiClient,
    kind: str,
    namespace: str | None,
    *,
    label_selector: str | None = None,
    field_selector: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> tuple[list[dict[str, Any]], str]:
    """Items matching the selectors and the list's resourceVersion (to watch from)."""
    query: list[tuple[str, str]] = []
    if label_selector:
        query.append(("labelSelector", label_selector))
    if field_selector:
        query.append(("fieldSelector", field_selector))
    found = request_json(
        api_client,
        "GET",
        _collection_path(kind, namespace),
        what=f"list {kind}",
        query=query,
        timeout_s=timeout_s,
    )
    items = [dict(item, kind=kind) for item in found.get("items", [])]
    return items, str(found.get("metadata", {}).get("resourceVersion", ""))


def list_release(
    api_client: k8s_client.ApiClient,
    release: str,
    namespace: str,
    *,
    kinds: Sequence[str] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[ObjectRef]:
    """Everything in ``namespace`` carrying the release label (namespaced kinds only).

    A kind whose API the server does not serve (Route off OpenShift) has no objects.
    """
    refs: list[ObjectRef] = []
    default = [k for k, i in KINDS.items() if i.namespaced and i.managed]
    for kind in kinds or default:
        try:
            items, _ = list_objects(
                api_client,
                kind,
                namespace,
                label_selector=f"{RELEASE_LABEL}={release}",
                timeout_s=timeout_s,
            )
        except KubernetesNotFound:
            if kind_info(kind).api_version.startswith(("v1", "apps/", "batch/")):
                raise  # core kinds are always served: a 404 here is the namespace or server
            continue
        refs.extend(ObjectRef.of(item) for item in items)
    return sorted(refs)


def delete_objects(
    api_client: k8s_client.ApiClient,
    refs: Sequence[ObjectRef],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[ObjectRef]:
    """Delete each object (dependents in the background); returns the ones that existed."""
    deleted: list[ObjectRef] = []
    # Reverse apply order: workloads go before the config and RBAC they use.
    for ref in sorted(refs, key=lambda r: -kind_info(r.kind).order):
        try:
            request_json(
                api_client,
                "DELETE",
                f"{_collection_path(ref.kind, ref.namespace)}/{ref.name}",
                what=f"delete {ref.kind}/{ref.name}",
                body={
                    "kind": "DeleteOptions",
                    "apiVersion": "v1",
                    "propagationPolicy": "Background",
                },
                timeout_s=timeout_s,
            )
        except KubernetesNotFound:
            continue
        deleted.append(ref)
    return deleted


# --- watches ----------------------------------------------------------------------------------

_WATCH_FUNCS: dict[str, tuple[str, str]] = {
    # kind -> (typed API class, namespaced list method); the Watch helper needs a typed func.
    "Pod": ("CoreV1Api", "list_namespaced_pod"),
    "ConfigMap": ("CoreV1Api", "list_namespaced_config_map"),
    "Event": ("CoreV1Api", "list_namespaced_event"),
    "Deployment": ("AppsV1Api", "list_namespaced_deployment"),
    "DaemonSet": ("AppsV1Api", "list_namespaced_daemon_set"),
    "Job": ("BatchV1Api", "list_namespaced_job"),
    "Node": ("CoreV1Api", "list_node"),
}


def _list_raw(
    api_client: k8s_client.ApiClient,
    kind: str,
    namespace: str | None,
    selectors: Mapping[str, str],
    timeout_s: float,
) -> tuple[list[dict[str, Any]], str]:
    api_name, method = _WATCH_FUNCS[kind]
    func = getattr(getattr(k8s_client, api_name)(api_client), method)
    args = [namespace] if namespace is not None else []
    try:
        response = func(*args, _preload_content=False, _request_timeout=timeout_s, **selectors)
        found = json.loads(response.data)
    except _TRANSPORT_ERRORS as exc:
        raise translate(exc, f"list {kind}") from exc
    items = [dict(item, kind=kind) for item in found.get("items", [])]
    return items, str(found.get("metadata", {}).get("resourceVersion", ""))


def wait_for(
    api_client: k8s_client.ApiClient,
    kind: str,
    namespace: str | None,
    done: Callable[[list[dict[str, Any]]], _T | None],
    *,
    timeout_s: float,
    label_selector: str | None = None,
    field_selector: str | None = None,
    on_change: Callable[[list[dict[str, Any]]], None] | None = None,
    what: str = "",
    resync_s: float = 300.0,
    on_relist: Callable[[int], None] | None = None,
) -> _T:
    """List, then watch from the list's resourceVersion until ``done(objects)`` returns a value.

    ``done`` sees the current set of matching objects after every change. A watch that ends
    (server timeout) resumes from the last resourceVersion; one answered ``410 Gone`` (too
    old) relists. ``done`` is asked again at least every ``resync_s`` even without a change,
    as informers resync: it may read other objects (a Deployment's status lags its pods).
    ``on_relist(n)`` is told of the n-th relist after a 410. Raises KubernetesTimeout when
    ``timeout_s`` passes first.
    """
    deadline = time.monotonic() + timeout_s
    selectors = {
        k: v
        for k, v in (("label_selector", label_selector), ("field_selector", field_selector))
        if v
    }
    api_name, method = _WATCH_FUNCS[kind]
    func = getattr(getattr(k8s_client, api_name)(api_client), method)
    args = [namespace] if namespace is not None else []
    relists = 0

    def remaining() -> float:
        return deadline - time.monotonic()

    while True:
        items, version = _list_raw(
            api_client, kind, namespace, selectors, min(DEFAULT_TIMEOUT_S, max(remaining(), 1.0))
        )
        current = {(i["metadata"].get("namespace"), i["metadata"]["name"]): i for i in items}
        while True:
            objects = list(current.values())
            if on_change is not None:
                on_change(objects)
            result = done(objects)
            if result is not None:
                return result
            left = remaining()
            if left <= 0:
                raise KubernetesTimeout(
                    f"{what or 'wait on ' + kind}: not done after {timeout_s:.0f} s"
                )
            watcher = k8s_watch.Watch()  # type: ignore[no-untyped-call]
            changed = False
            try:
                for event in watcher.stream(  # type: ignore[no-untyped-call]
                    func,
                    *args,
                    resource_version=version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=max(1, int(min(left, resync_s, 300))),
                    _request_timeout=min(left, resync_s, 300) + 10,
                    **selectors,
                ):
                    raw = event["raw_object"]
                    meta = raw.get("metadata", {})
                    version = str(meta.get("resourceVersion", version))
                    if event["type"] == "BOOKMARK":
                        continue
                    key = (meta.get("namespace"), meta.get("name"))
                    if event["type"] == "DELETED":
                        current.pop(key, None)
                    else:
                        current[key] = dict(raw, kind=kind)
                    changed = True
                    break
            except ApiException as exc:
                if exc.status == 410:
                    relists += 1
                    if on_relist is not None:
                        on_relist(relists)
                    break  # too old: relist and watch from the new resourceVersion
                raise translate(exc, f"watch {kind}") from exc
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                if remaining() <= 0:
                    raise KubernetesTimeout(
                        f"{what or 'wait on ' + kind}: watch timed out"
                    ) from exc
                break  # a dropped stream relists
            finally:
                watcher.stop()  # type: ignore[no-untyped-call]
            if not changed and remaining() <= 0:
                raise KubernetesTimeout(
                    f"{what or 'wait on ' + kind}: not done after {timeout_s:.0f} s"
                )


# --- facts about the cluster and its objects ---------------------------------------------------


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
    try:
        method, url, headers, _, _ = api_client.param_serialize(
            "GET",
            f"/api/v1/namespaces/{namespace}/pods/{pod}/log",
            query_params=query,
            header_params={"Accept": "text/plain"},
            auth_settings=["BearerToken"],
        )
        response = api_client.call_api(method, url, headers, _request_timeout=timeout_s)
        data = response.read()  # type: ignore[no-untyped-call]
        if not 200 <= int(response.status) <= 299:
            raise ApiException(http_resp=response)
    except ApiException as exc:
        if exc.status in (400, 404):  # container not started yet, or pod gone
            return []
        raise translate(exc, f"log of pod {pod}") from exc
    except _TRANSPORT_ERRORS as exc:
        raise translate(exc, f"log of pod {pod}") from exc
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
    return text.splitlines()[-lines:]


# --- the API server's service proxy -----------------------------------------------------------


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
    except _TRANSPORT_ERRORS as exc:
        raise translate(exc, what) from exc
    content_type = str(response.getheader("Content-Type", ""))  # type: ignore[no-untyped-call]
    return ProxyResponse(int(response.status), bytes(data or b""), content_type)
