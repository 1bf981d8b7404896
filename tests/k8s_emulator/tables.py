"""Server-side printing: the ``meta.k8s.io/v1`` Table that ``kubectl get`` asks for, with
the columns (and ``-o wide`` priority-1 columns) the real server prints for each kind."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from tests.k8s_emulator.resources import ResourceType
from tests.k8s_emulator.selectors import selector_string

Obj = dict[str, Any]
Column = tuple[str, str, int, Callable[[Obj], Any]]  # name, type, priority, cell


def _age(stamp: str | None) -> str:
    if not stamp:
        return "<unknown>"
    then = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    seconds = max(0, int((dt.datetime.now(dt.UTC) - then).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 3600 * 3:
        return f"{seconds // 60}m"
    if seconds < 86400 * 2:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _name(o: Obj) -> str:
    return str(o["metadata"]["name"])


def _created(o: Obj) -> str:
    return _age(o["metadata"].get("creationTimestamp"))


def _containers(o: Obj) -> list[Obj]:
    spec = o.get("spec") or {}
    template = spec.get("template") or {}
    return list((template.get("spec") or spec).get("containers") or [])


def _names(o: Obj) -> str:
    return ",".join(c.get("name", "") for c in _containers(o))


def _images(o: Obj) -> str:
    return ",".join(c.get("image", "") for c in _containers(o))


def _selector(o: Obj) -> str:
    return selector_string((o.get("spec") or {}).get("selector")) or "<none>"


def pod_status_reason(pod: Obj) -> str:
    """The STATUS column as kubectl's printer derives it."""
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if state.get("waiting", {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated", {}).get("reason"):
            reason = state["terminated"]["reason"]
    if reason == "Pending" and pod["spec"].get("nodeName"):
        reason = "ContainerCreating"
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return str(reason)


def _pod_ready(o: Obj) -> str:
    statuses = (o.get("status") or {}).get("containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    return f"{ready}/{len(o['spec'].get('containers') or [])}"


def _restarts(o: Obj) -> str:
    return str(
        sum(
            int(s.get("restartCount", 0))
            for s in (o.get("status") or {}).get("containerStatuses") or []
        )
    )


def _s(path: str, default: Any = 0) -> Callable[[Obj], Any]:
    def cell(o: Obj) -> Any:
        current: Any = o
        for part in path.split("."):
            current = current.get(part) if isinstance(current, dict) else None
        return default if current is None else current

    return cell


def _node_status(o: Obj) -> str:
    ready = next(
        (c for c in (o.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"),
        None,
    )
    text = "Ready" if ready and ready.get("status") == "True" else "NotReady"
    if (o.get("spec") or {}).get("unschedulable"):
        text += ",SchedulingDisabled"
    return text


def _node_roles(o: Obj) -> str:
    roles = [
        k.split("/", 1)[1]
        for k in (o["metadata"].get("labels") or {})
        if k.startswith("node-role.kubernetes.io/")
    ]
    return ",".join(sorted(roles)) or "<none>"


def _address(kind: str) -> Callable[[Obj], str]:
    def cell(o: Obj) -> str:
        for a in (o.get("status") or {}).get("addresses") or []:
            if a.get("type") == kind:
                return str(a["address"])
        return "<none>"

    return cell


def _job_status(o: Obj) -> str:
    for c in (o.get("status") or {}).get("conditions") or []:
        if c.get("status") == "True" and c.get("type") in ("Complete", "Failed"):
            return str(c["type"])
    return "Running"


def _ports(o: Obj) -> str:
    ports = (o.get("spec") or {}).get("ports") or []
    return ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in ports) or "<none>"


def _access(modes: list[str] | None) -> str:
    short = {
        "ReadWriteOnce": "RWO",
        "ReadOnlyMany": "ROX",
        "ReadWriteMany": "RWX",
        "ReadWriteOncePod": "RWOP",
    }
    return ",".join(short.get(m, m) for m in modes or [])


NAME: Column = ("Name", "string", 0, _name)
AGE: Column = ("Age", "string", 0, _created)

COLUMNS: dict[str, list[Column]] = {
    "pods": [
        NAME,
        ("Ready", "string", 0, _pod_ready),
        ("Status", "string", 0, pod_status_reason),
        ("Restarts", "string", 0, _restarts),
        AGE,
        ("IP", "string", 1, _s("status.podIP", "<none>")),
        ("Node", "string", 1, _s("spec.nodeName", "<none>")),
        ("Nominated Node", "string", 1, _s("status.nominatedNodeName", "<none>")),
        ("Readiness Gates", "string", 1, lambda o: "<none>"),
    ],
    "deployments": [
        NAME,
        (
            "Ready",
            "string",
            0,
            lambda o: f"{_s('status.readyReplicas')(o)}/{_s('spec.replicas', 1)(o)}",
        ),
        ("Up-to-date", "integer", 0, _s("status.updatedReplicas")),
        ("Available", "integer", 0, _s("status.availableReplicas")),
        AGE,
        ("Containers", "string", 1, _names),
        ("Images", "string", 1, _images),
        ("Selector", "string", 1, _selector),
    ],
    "replicasets": [
        NAME,
        ("Desired", "integer", 0, _s("spec.replicas", 1)),
        ("Current", "integer", 0, _s("status.replicas")),
        ("Ready", "integer", 0, _s("status.readyReplicas")),
        AGE,
        ("Containers", "string", 1, _names),
        ("Images", "string", 1, _images),
        ("Selector", "string", 1, _selector),
    ],
    "daemonsets": [
        NAME,
        ("Desired", "integer", 0, _s("status.desiredNumberScheduled")),
        ("Current", "integer", 0, _s("status.currentNumberScheduled")),
        ("Ready", "integer", 0, _s("status.numberReady")),
        ("Up-to-date", "integer", 0, _s("status.updatedNumberScheduled")),
        ("Available", "integer", 0, _s("status.numberAvailable")),
        (
            "Node Selector",
            "string",
            0,
            lambda o: (
                ",".join(
                    f"{k}={v}"
                    for k, v in (
                        o["spec"]["template"].get("spec", {}).get("nodeSelector") or {}
                    ).items()
                )
                or "<none>"
            ),
        ),
        AGE,
        ("Containers", "string", 1, _names),
        ("Images", "string", 1, _images),
        ("Selector", "string", 1, _selector),
    ],
    "jobs": [
        NAME,
        ("Status", "string", 0, _job_status),
        (
            "Completions",
            "string",
            0,
            lambda o: f"{_s('status.succeeded')(o)}/{_s('spec.completions', 1)(o)}",
        ),
        (
            "Duration",
            "string",
            0,
            lambda o: (
                _age(_s("status.startTime", None)(o)) if _s("status.startTime", None)(o) else ""
            ),
        ),
        AGE,
        ("Containers", "string", 1, _names),
        ("Images", "string", 1, _images),
        ("Selector", "string", 1, _selector),
    ],
    "nodes": [
        NAME,
        ("Status", "string", 0, _node_status),
        ("Roles", "string", 0, _node_roles),
        AGE,
        ("Version", "string", 0, _s("status.nodeInfo.kubeletVersion", "")),
        ("Internal-IP", "string", 1, _address("InternalIP")),
        ("External-IP", "string", 1, _address("ExternalIP")),
        ("OS-Image", "string", 1, _s("status.nodeInfo.osImage", "")),
        ("Kernel-Version", "string", 1, _s("status.nodeInfo.kernelVersion", "")),
        ("Container-Runtime", "string", 1, _s("status.nodeInfo.containerRuntimeVersion", "")),
    ],
    "services": [
        NAME,
        ("Type", "string", 0, _s("spec.type", "ClusterIP")),
        ("Cluster-IP", "string", 0, _s("spec.clusterIP", "<none>")),
        ("External-IP", "string", 0, lambda o: "<none>"),
        ("Port(s)", "string", 0, _ports),
        AGE,
        (
            "Selector",
            "string",
            1,
            lambda o: (
                ",".join(
                    f"{k}={v}" for k, v in ((o.get("spec") or {}).get("selector") or {}).items()
                )
                or "<none>"
            ),
        ),
    ],
    "configmaps": [
        NAME,
        ("Data", "integer", 0, lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {})),
        AGE,
    ],
    "secrets": [
        NAME,
        ("Type", "string", 0, _s("type", "Opaque")),
        ("Data", "integer", 0, lambda o: len(o.get("data") or {})),
        AGE,
    ],
    "namespaces": [NAME, ("Status", "string", 0, _s("status.phase", "Active")), AGE],
    "persistentvolumeclaims": [
        NAME,
        ("Status", "string", 0, _s("status.phase", "Pending")),
        ("Volume", "string", 0, _s("spec.volumeName", "")),
        ("Capacity", "string", 0, _s("status.capacity.storage", "")),
        ("Access Modes", "string", 0, lambda o: _access(_s("status.accessModes", [])(o))),
        ("StorageClass", "string", 0, _s("spec.storageClassName", "<unset>")),
        ("VolumeAttributesClass", "string", 0, lambda o: "<unset>"),
        AGE,
        ("VolumeMode", "string", 1, _s("spec.volumeMode", "Filesystem")),
    ],
    "events": [
        ("Last Seen", "string", 0, lambda o: _age(o.get("lastTimestamp"))),
        ("Type", "string", 0, _s("type", "")),
        ("Reason", "string", 0, _s("reason", "")),
        (
            "Object",
            "string",
            0,
            lambda o: (
                f"{o['involvedObject'].get('kind', '').lower()}/{o['involvedObject'].get('name', '')}"
            ),
        ),
        ("Subobject", "string", 1, _s("involvedObject.fieldPath", "")),
        (
            "Source",
            "string",
            1,
            lambda o: "/".join(
                v
                for v in (
                    (o.get("source") or {}).get("component", ""),
                    (o.get("source") or {}).get("host", ""),
                )
                if v
            ),
        ),
        ("Message", "string", 0, _s("message", "")),
        ("First Seen", "string", 1, lambda o: _age(o.get("firstTimestamp"))),
        ("Count", "integer", 1, _s("count", 1)),
        ("Name", "string", 1, _name),
    ],
}


def partial_metadata(obj: Obj) -> Obj:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"],
    }


def to_table(rt: ResourceType, objs: list[Obj], resource_version: str, include_object: str) -> Obj:
    columns = COLUMNS.get(rt.plural, [NAME, AGE])
    rows = []
    for obj in objs:
        row: Obj = {"cells": [cell(obj) for _n, _t, _p, cell in columns]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_metadata(obj)
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [
            {
                "name": name,
                "type": type_,
                "format": "name" if name == "Name" else "",
                "description": name,
                "priority": priority,
            }
            for name, type_, priority, _cell in columns
        ],
        "rows": rows,
    }
