"""Get, list, apply and delete objects of the known kinds, under a release label."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any, cast

from kubernetes import client as k8s_client

from budcluster.adapters.kubernetes.client import DEFAULT_TIMEOUT_S, request_json
from budcluster.adapters.kubernetes.errors import (
    KubernetesApiError,
    KubernetesConflict,
    KubernetesNotFound,
)
from budcluster.adapters.kubernetes.kinds import (
    FIELD_MANAGER,
    KINDS,
    RELEASE_LABEL,
    ObjectRef,
    collection_path,
    kind_info,
    with_release_label,
)


def get_object(
    api_client: k8s_client.ApiClient, ref: ObjectRef, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> dict[str, Any] | None:
    """The object, or None when it does not exist."""
    try:
        found = request_json(
            api_client,
            "GET",
            f"{collection_path(ref.kind, ref.namespace)}/{ref.name}",
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
        collection = collection_path(ref.kind, ref.namespace)
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


LIST_PAGE_SIZE = 500
"""Items per list request: kubectl's default chunk size."""


def list_objects(
    api_client: k8s_client.ApiClient,
    kind: str,
    namespace: str | None,
    *,
    label_selector: str | None = None,
    field_selector: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> tuple[list[dict[str, Any]], str]:
    """Items matching the selectors and the list's resourceVersion (to watch from).

    Read in pages of ``LIST_PAGE_SIZE`` (``limit``/``continue``), as kubectl and client-go's
    pager do: a cluster-wide pod list of a large cluster is otherwise one answer of many
    megabytes that the server must build in one go. When a later page's token has expired
    (410: the server compacted the list's resourceVersion), the list starts again whole,
    without paging, as client-go's pager does.
    """
    query: list[tuple[str, str]] = []
    if label_selector:
        query.append(("labelSelector", label_selector))
    if field_selector:
        query.append(("fieldSelector", field_selector))
    path = collection_path(kind, namespace)
    what = f"list {kind}"

    def get(extra: list[tuple[str, str]]) -> dict[str, Any]:
        found = request_json(
            api_client, "GET", path, what=what, query=query + extra, timeout_s=timeout_s
        )
        return cast(dict[str, Any], found or {})

    first = get([("limit", str(LIST_PAGE_SIZE))])
    version = str((first.get("metadata") or {}).get("resourceVersion", ""))
    pages = [first]
    token = str((first.get("metadata") or {}).get("continue") or "")
    while token:
        try:
            later = get([("limit", str(LIST_PAGE_SIZE)), ("continue", token)])
        except KubernetesApiError as exc:
            if exc.status != 410:
                raise
            whole = get([])
            version = str((whole.get("metadata") or {}).get("resourceVersion", ""))
            pages = [whole]
            break
        pages.append(later)
        token = str((later.get("metadata") or {}).get("continue") or "")
    items = [dict(item, kind=kind) for found in pages for item in found.get("items") or []]
    return items, version


def release_namespaces(
    api_client: k8s_client.ApiClient, release: str, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> set[str]:
    """Every namespace that holds an object carrying the release label.

    One cluster-wide list per managed kind: an apply refused part-way may have created the
    release's Service and not its Deployment, so no single kind can say where it is.
    Secrets are not listed: a cluster-wide list would carry every labelled Secret's data
    (and needs a grant few operators give); the charts applied per release make none.
    """
    namespaces: set[str] = set()
    kinds = [k for k, i in KINDS.items() if i.namespaced and i.managed and k != "Secret"]
    for kind in kinds:
        try:
            items, _ = list_objects(
                api_client,
                kind,
                None,
                label_selector=f"{RELEASE_LABEL}={release}",
                timeout_s=timeout_s,
            )
        except KubernetesNotFound:
            if kind_info(kind).api_version.startswith(("v1", "apps/", "batch/")):
                raise
            continue  # a kind this server does not serve (Route off OpenShift)
        namespaces.update(str(item["metadata"]["namespace"]) for item in items)
    return namespaces


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
                f"{collection_path(ref.kind, ref.namespace)}/{ref.name}",
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


def prune_release(
    api_client: k8s_client.ApiClient,
    release: str,
    namespace: str,
    keep: Sequence[Mapping[str, Any]],
    *,
    kinds: Sequence[str],
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[ObjectRef]:
    """Delete the release's objects of ``kinds`` in ``namespace`` that are not in ``keep``
    (what was just applied); returns the ones deleted."""
    wanted = {ObjectRef.of(obj) for obj in keep}
    current = list_release(api_client, release, namespace, kinds=kinds, timeout_s=timeout_s)
    stale = [ref for ref in current if ref not in wanted]
    return delete_objects(api_client, stale, timeout_s=timeout_s)
