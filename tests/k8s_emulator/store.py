"""In-memory object store with one global resourceVersion counter, a bounded event history
for watches (older resourceVersions answer 410 Gone), and owner-reference garbage collection."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.k8s_emulator import admission, ids
from tests.k8s_emulator.clone import clone
from tests.k8s_emulator.errors import ApiError, already_exists, bad_request, conflict, not_found
from tests.k8s_emulator.patching import (
    json_merge_patch,
    json_patch,
    server_side_apply,
    strategic_merge_patch,
)
from tests.k8s_emulator.resources import ResourceRegistry, ResourceType
from tests.k8s_emulator.selectors import Requirement, labels_match

Obj = dict[str, Any]
Key = tuple[str, str, str, str]  # group, plural, namespace ("" when cluster-scoped), name

DEFAULT_HISTORY_SIZE = 1000


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class WatchEvent:
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    rt: ResourceType
    obj: Obj


@dataclass(eq=False)
class Watcher:
    rt: ResourceType
    namespace: str | None
    labels: list[Requirement]
    fields: Callable[[Obj], bool]
    queue: asyncio.Queue[WatchEvent | ApiError | None] = field(default_factory=asyncio.Queue)
    """Events to send; an ApiError ends the watch with that ERROR event, None ends it."""
    last_rv: int = 0
    """The resourceVersion the client has seen (where it started, then its last event)."""

    def wants(self, event: WatchEvent) -> bool:
        meta = event.obj["metadata"]
        if event.rt is not self.rt:
            return False
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        return labels_match(self.labels, meta.get("labels")) and self.fields(event.obj)


def key_of(rt: ResourceType, namespace: str | None, name: str) -> Key:
    return (rt.group, rt.plural, namespace or "" if rt.namespaced else "", name)


class Store:
    def __init__(
        self, registry: ResourceRegistry, history_size: int = DEFAULT_HISTORY_SIZE
    ) -> None:
        if history_size < 1:
            raise ValueError(f"history_size must be at least 1, got {history_size}")
        self.registry = registry
        self.objects: dict[Key, Obj] = {}
        # The same objects by (group, plural), kept beside ``objects`` by ``_put``/``_drop``:
        # a list reads one kind instead of scanning every object (a 1,000-node cluster
        # holds thousands of pods and events, and controllers list several kinds per tick).
        self._kinds: dict[tuple[str, str], dict[Key, Obj]] = {}
        # The event recorder's cache, as client-go's EventCorrelator keeps one in memory:
        # (namespace, involved uid, reason, message) -> the name of the Event it wrote.
        self.event_series: dict[tuple[str, str, str, str], str] = {}
        self.rv = 100
        self.history: deque[WatchEvent] = deque(maxlen=history_size)
        self.compacted_rv = 0  # the newest resourceVersion whose event was dropped
        self.watchers: set[Watcher] = set()
        self.applied: dict[tuple[Key, str], Obj] = {}  # last applied config per field manager
        self.cluster_ip_counter = 10

    # --- events ---------------------------------------------------------------------

    def _put(self, key: Key, obj: Obj) -> None:
        self.objects[key] = obj
        self._kinds.setdefault(key[:2], {})[key] = obj

    def _drop(self, key: Key) -> Obj | None:
        self._kinds.get(key[:2], {}).pop(key, None)
        return self.objects.pop(key, None)

    def _next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def _emit(self, type_: str, rt: ResourceType, obj: Obj) -> None:
        event = WatchEvent(int(obj["metadata"]["resourceVersion"]), type_, rt, clone(obj))
        if len(self.history) == self.history.maxlen:
            self.compacted_rv = self.history[0].rv
        self.history.append(event)
        for watcher in list(self.watchers):
            if watcher.wants(event):
                watcher.queue.put_nowait(event)

    def set_history_size(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"history_size must be at least 1, got {size}")
        events = list(self.history)
        dropped = events[: max(0, len(events) - size)]
        if dropped:
            self.compacted_rv = dropped[-1].rv
        self.history = deque(events[len(dropped) :], maxlen=size)

    def expire_watches(self) -> int:
        """Compact the whole history (as etcd compaction does) and end every open watch with
        the ERROR event the real server sends then: a Status 410 ``Expired``. A client must
        relist: resuming from its last resourceVersion answers 410 too. Returns how many
        watches were ended."""
        self.compacted_rv = self.rv
        self.history.clear()
        for watcher in self.watchers:
            watcher.queue.put_nowait(
                ApiError(
                    410,
                    "Expired",
                    f"too old resource version: {watcher.last_rv} ({self.compacted_rv + 1})",
                )
            )
        return len(self.watchers)

    def events_since(self, rv: int) -> list[WatchEvent]:
        """Events after ``rv``; 410 Expired when the history no longer reaches back to it."""
        if rv < self.compacted_rv:
            raise ApiError(
                410,
                "Expired",
                f"too old resource version: {rv} ({self.compacted_rv + 1})",
            )
        return [e for e in self.history if e.rv > rv]

    # --- reads ----------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        obj = self.objects.get(key_of(rt, namespace, name))
        if obj is None:
            raise not_found(rt, name)
        return clone(obj)

    def find(self, rt: ResourceType, namespace: str | None, name: str) -> Obj | None:
        """The live object itself (no copy), for controllers; None when absent."""
        return self.objects.get(key_of(rt, namespace, name))

    def list(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        labels: list[Requirement] | None = None,
        fields: Callable[[Obj], bool] | None = None,
    ) -> list[Obj]:
        items = []
        for (_group, _plural, ns, _name), obj in self._kinds.get((rt.group, rt.plural), {}).items():
            if namespace is not None and rt.namespaced and ns != namespace:
                continue
            if labels and not labels_match(labels, obj["metadata"].get("labels")):
                continue
            if fields is not None and not fields(obj):
                continue
            items.append(obj)
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return items

    def list_kind(self, plural: str, group: str = "", namespace: str | None = None) -> list[Obj]:
        return self.list(self.registry.get(plural, group), namespace)

    # --- writes ---------------------------------------------------------------------

    def _check_namespace(self, rt: ResourceType, namespace: str | None, name: str) -> None:
        if not rt.namespaced:
            return
        ns = self.objects.get(("", "namespaces", "", namespace or ""))
        if ns is None:
            raise ApiError(
                404,
                "NotFound",
                f'namespaces "{namespace}" not found',
                {"name": namespace, "kind": "namespaces"},
            )
        if ns["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                "Forbidden",
                f'{rt.qualified} "{name}" is forbidden: unable to create new content in '
                f"namespace {namespace} because it is being terminated",
            )

    def create(
        self, rt: ResourceType, namespace: str | None, body: Obj, dry_run: bool = False
    ) -> Obj:
        obj = clone(body)
        admission.check_type(rt, obj)
        meta = obj.setdefault("metadata", {})
        if rt.namespaced:
            if meta.get("namespace") and namespace and meta["namespace"] != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
            meta["namespace"] = namespace or meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + ids.token_hex(3)[:5]
        self._check_namespace(rt, meta.get("namespace"), str(meta.get("name", "")))
        admission.default(rt, obj, self)
        admission.validate(rt, obj)
        key = key_of(rt, meta.get("namespace"), meta["name"])
        if key in self.objects:
            raise already_exists(rt, meta["name"])
        meta["uid"] = ids.uid()
        meta["creationTimestamp"] = now_iso()
        meta.pop("resourceVersion", None)
        meta.pop("deletionTimestamp", None)
        meta.pop("managedFields", None)
        if rt.tracks_generation:
            meta["generation"] = 1
        if rt.plural == "jobs":
            admission.fill_job_selector(obj)
        if dry_run:
            meta["resourceVersion"] = str(self.rv)
            return obj
        meta["resourceVersion"] = str(self._next_rv())
        self._put(key, obj)
        self._emit("ADDED", rt, obj)
        return clone(obj)

    def replace(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Obj,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        admission.check_type(rt, body)
        key = key_of(rt, namespace, name)
        live = self.objects.get(key)
        body_name = (body.get("metadata") or {}).get("name")
        if body_name and body_name != name:
            raise bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        if live is None:
            if rt.plural in ("events", "leases", "endpoints") and subresource is None:
                body = clone(body)
                body.setdefault("metadata", {})["name"] = name
                return self.create(rt, namespace, body, dry_run)
            raise not_found(rt, name)
        wanted_rv = (body.get("metadata") or {}).get("resourceVersion")
        if wanted_rv and wanted_rv != live["metadata"]["resourceVersion"]:
            raise conflict(rt, name)
        return self._commit(rt, live, clone(body), subresource, dry_run)

    def _commit(
        self, rt: ResourceType, live: Obj, new: Obj, subresource: str | None, dry_run: bool
    ) -> Obj:
        """Store ``new`` in place of ``live``, keeping what the server owns."""
        meta = new.setdefault("metadata", {})
        old_meta = live["metadata"]
        for owned in (
            "uid",
            "creationTimestamp",
            "namespace",
            "name",
            "deletionTimestamp",
            "generation",
        ):
            if owned in old_meta:
                meta[owned] = old_meta[owned]
            else:
                meta.pop(owned, None)
        meta.pop("managedFields", None)
        new["apiVersion"], new["kind"] = rt.api_version, rt.kind
        if subresource == "status":
            # Only status changes through /status; everything else stays as it was.
            status = new.get("status")
            new = clone(live)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
            meta = new["metadata"]
        elif rt.status_subresource:
            if "status" in live:
                new["status"] = clone(live["status"])
            else:
                new.pop("status", None)
        admission.default(rt, new, self, live)
        admission.validate(rt, new)
        if subresource is None:
            admission.validate_update(rt, new, live)
        if rt.tracks_generation and new.get("spec") != live.get("spec"):
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        if new == live:
            return clone(live)  # a no-op write does not bump resourceVersion
        if dry_run:
            return new
        meta["resourceVersion"] = str(self._next_rv())
        self._put(key_of(rt, meta.get("namespace"), meta["name"]), new)
        self._emit("MODIFIED", rt, new)
        return clone(new)

    def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        content_type: str,
        patch: Any,
        subresource: str | None = None,
        field_manager: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        key = key_of(rt, namespace, name)
        live = self.objects.get(key)
        if content_type == "application/apply-patch+yaml":
            if not isinstance(patch, dict):
                raise bad_request("an apply patch must be a single object")
            if not field_manager:
                raise bad_request(
                    "PATCH, fieldManager: Required value: is required for apply patch"
                )
            admission.check_type(rt, patch)
            previous = self.applied.get((key, field_manager))
            if live is None:
                body = clone(patch)
                body.setdefault("metadata", {})["name"] = name
                created = self.create(rt, namespace, body, dry_run)
                if not dry_run:
                    self.applied[(key, field_manager)] = clone(patch)
                return created
            merged = server_side_apply(live, previous, patch)
            if not dry_run:
                self.applied[(key, field_manager)] = clone(patch)
            merged["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
            return self._commit(rt, live, merged, subresource, dry_run)
        if live is None:
            raise not_found(rt, name)
        if content_type == "application/merge-patch+json":
            if not isinstance(patch, dict):
                raise bad_request("a merge patch must be a JSON object")
            new = json_merge_patch(live, patch)
        elif content_type == "application/strategic-merge-patch+json":
            if not isinstance(patch, dict):
                raise bad_request("a strategic merge patch must be a JSON object")
            new = strategic_merge_patch(live, patch)
        elif content_type == "application/json-patch+json":
            new = json_patch(live, patch)
        else:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types "
                f"include: application/json-patch+json, application/merge-patch+json, "
                f"application/apply-patch+yaml, application/strategic-merge-patch+json "
                f"(got {content_type})",
            )
        if not isinstance(new, dict):
            raise bad_request("the patch did not leave an object")
        wanted_rv = (new.get("metadata") or {}).get("resourceVersion")
        if wanted_rv and wanted_rv != live["metadata"]["resourceVersion"]:
            raise conflict(rt, name)
        return self._commit(rt, live, new, subresource, dry_run)

    def write(self, rt: ResourceType, obj: Obj) -> Obj:
        """A controller's write of a whole object (status included); no-op when unchanged."""
        meta = obj["metadata"]
        key = key_of(rt, meta.get("namespace"), meta["name"])
        live = self.objects.get(key)
        if live is None:
            raise not_found(rt, meta["name"])
        if obj == live:
            return live
        if rt.tracks_generation and obj.get("spec") != live.get("spec"):
            meta["generation"] = int(live["metadata"].get("generation", 1)) + 1
        new = clone(obj)
        new["metadata"]["resourceVersion"] = str(self._next_rv())
        self._put(key, new)
        self._emit("MODIFIED", rt, new)
        return new

    def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        propagation: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        key = key_of(rt, namespace, name)
        live = self.objects.get(key)
        if live is None:
            raise not_found(rt, name)
        if dry_run:
            return clone(live)
        if rt.plural == "namespaces":
            # Like the real namespace controller: Terminating first, emptied shortly after.
            if not live["metadata"].get("deletionTimestamp"):
                new = clone(live)
                new["metadata"]["deletionTimestamp"] = now_iso()
                new.setdefault("status", {})["phase"] = "Terminating"
                return clone(self.write(rt, new))
            return clone(live)
        return self.remove(rt, live, propagation)

    def remove(self, rt: ResourceType, live: Obj, propagation: str | None = None) -> Obj:
        """Drop the object now; dependents (ownerReferences) are collected unless orphaned."""
        meta = live["metadata"]
        key = key_of(rt, meta.get("namespace"), meta["name"])
        if self._drop(key) is None:
            return live
        for applied_key in [k for k in self.applied if k[0] == key]:
            del self.applied[applied_key]
        gone = clone(live)
        gone["metadata"]["resourceVersion"] = str(self._next_rv())
        self._emit("DELETED", rt, gone)
        uid = meta["uid"]
        for dep_key, dep in list(self.objects.items()):
            refs = dep["metadata"].get("ownerReferences") or []
            if not any(r.get("uid") == uid for r in refs):
                continue
            dep_rt = self.registry.get(dep_key[1], dep_key[0])
            if propagation == "Orphan":
                orphan = clone(dep)
                orphan["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid]
                self.write(dep_rt, orphan)
            else:
                self.remove(dep_rt, dep, propagation)
        return gone

    def allocate_cluster_ip(self) -> str:
        self.cluster_ip_counter += 1
        n = self.cluster_ip_counter
        return f"10.96.{n // 250}.{n % 250 + 1}"
