"""Waiting on objects: list, then watch from the list's resourceVersion until done."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import urllib3
from kubernetes import client as k8s_client
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException

from budcluster.adapters.kubernetes.client import DEFAULT_TIMEOUT_S, retry_deadline_s
from budcluster.adapters.kubernetes.errors import (
    TRANSPORT_ERRORS,
    KubernetesServerError,
    KubernetesTimeout,
    translate,
)
from budcluster.adapters.kubernetes.retry import (
    FIRST_BACKOFF_S,
    MAX_BACKOFF_S,
    retry_after_s,
    retryable,
    with_retries,
)

_T = TypeVar("_T")

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
    retry_s: float,
) -> tuple[list[dict[str, Any]], str]:
    api_name, method = _WATCH_FUNCS[kind]
    func = getattr(getattr(k8s_client, api_name)(api_client), method)
    args = [namespace] if namespace is not None else []
    path = f"namespaces/{namespace}/" if namespace is not None else ""
    try:
        response = with_retries(
            lambda: func(*args, _preload_content=False, _request_timeout=timeout_s, **selectors),
            f"list {kind} (GET {path}{kind.lower()}s)",
            deadline_s=retry_s,
        )
        found = json.loads(response.data)
    except TRANSPORT_ERRORS as exc:
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
    throttle_backoff = FIRST_BACKOFF_S

    def remaining() -> float:
        return deadline - time.monotonic()

    while True:
        items, version = _list_raw(
            api_client,
            kind,
            namespace,
            selectors,
            min(DEFAULT_TIMEOUT_S, max(remaining(), 1.0)),
            retry_s=min(retry_deadline_s(api_client), max(remaining(), 1.0)),
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
                if not retryable(exc):
                    raise translate(exc, f"watch {kind}") from exc
                # Turned away (429/5xx): the watch never started; come back when told.
                wait = max(retry_after_s(exc) or 0.0, throttle_backoff)
                if remaining() - wait <= 0:
                    raise KubernetesServerError(
                        f"{what or 'wait on ' + kind}: watch {kind}: the API server kept "
                        f"answering {exc.status} {exc.reason or ''} until the wait's "
                        f"{timeout_s:.0f} s ran out; retry later"
                    ) from exc
                time.sleep(wait)
                throttle_backoff = min(throttle_backoff * 2, MAX_BACKOFF_S)
                continue  # watch again from the same resourceVersion
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
