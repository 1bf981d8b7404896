"""Core v1 Events as the scheduler, kubelet and controllers record them (deduplicated by
object, reason and message, with a growing ``count``, like the real event recorder).

Like client-go's EventCorrelator, the recorder remembers which Event it wrote for each
(object, reason, message) in memory (``Store.event_series``) instead of listing the
namespace's Events on every call: it aggregates only into Events it wrote itself, and
starts a new one when that Event was deleted."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from tests.k8s_emulator import ids
from tests.k8s_emulator.errors import ApiError

if TYPE_CHECKING:
    from tests.k8s_emulator.store import Store

Obj = dict[str, Any]


def record_event(
    store: Store,
    involved: Obj,
    reason: str,
    message: str,
    type_: str = "Normal",
    component: str = "default-scheduler",
    host: str | None = None,
    field_path: str | None = None,
) -> None:
    from tests.k8s_emulator.store import now_iso

    rt = store.registry.get("events")
    meta = involved["metadata"]
    namespace = meta.get("namespace") or "default"
    now = now_iso()
    series = (namespace, str(meta.get("uid")), reason, message)
    name = store.event_series.get(series)
    event = store.find(rt, namespace, name) if name is not None else None
    if event is not None:
        updated = {**event, "count": int(event.get("count", 1)) + 1, "lastTimestamp": now}
        store.write(rt, updated)
        return
    involved_ref: Obj = {
        "kind": involved.get("kind"),
        "namespace": meta.get("namespace"),
        "name": meta["name"],
        "uid": meta.get("uid"),
        "apiVersion": involved.get("apiVersion"),
        "resourceVersion": meta.get("resourceVersion"),
    }
    if field_path:
        involved_ref["fieldPath"] = field_path
    source: Obj = {"component": component}
    if host:
        source["host"] = host
    body: Obj = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{ids.token_hex(8)}", "namespace": namespace},
        "involvedObject": {k: v for k, v in involved_ref.items() if v is not None},
        "reason": reason,
        "message": message,
        "type": type_,
        "source": source,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "reportingComponent": component,
        "reportingInstance": host or "",
    }
    # A namespace that is going away refuses the event; the real recorder drops it too.
    with contextlib.suppress(ApiError):
        store.create(rt, namespace, body)
        store.event_series[series] = body["metadata"]["name"]
