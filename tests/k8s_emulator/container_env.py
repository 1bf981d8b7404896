"""A container's environment as the kubelet builds it when the container starts
(``kubelet_pods.go: makeEnvironmentVariables``): ``envFrom`` first (each ConfigMap's or
Secret's keys, with ``prefix``), then ``env`` in order, later names winning.

- ``value`` as written (``$(VAR)`` expansion is not simulated);
- ``valueFrom.secretKeyRef`` / ``configMapKeyRef``: the key's value, read when the container
  starts; a missing object or key fails the start unless ``optional: true`` (the entry is
  then left out). The messages are the kubelet's: ``secret "x" not found`` and ``couldn't
  find key k in Secret ns/x`` (``configmap`` / ``ConfigMap`` alike);
- ``valueFrom.fieldRef``: the pod's name, namespace, uid, node, service account, IPs, and
  ``metadata.labels['k']`` / ``metadata.annotations['k']``;
- ``resourceFieldRef`` is not simulated (left out).

A start that fails is what the kubelet reports as ``CreateContainerConfigError``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]
Lookup = Callable[[str, str], Obj | None]
"""(plural, name) -> the object in the pod's namespace, or None."""
_KIND_TEXT = {"secrets": ("secret", "Secret"), "configmaps": ("configmap", "ConfigMap")}
_MAPPED_FIELD = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")


class ContainerConfigError(Exception):
    """The container cannot start: a referenced object or key is missing."""


def _data(plural: str, obj: Obj) -> dict[str, str]:
    if plural == "secrets":
        return {
            str(k): base64.b64decode(str(v)).decode("utf-8", "replace")
            for k, v in (obj.get("data") or {}).items()
        }
    return {str(k): str(v) for k, v in (obj.get("data") or {}).items()}


def _source(lookup: Lookup, plural: str, name: str, optional: bool) -> dict[str, str] | None:
    found = lookup(plural, name)
    if found is None:
        if optional:
            return None
        raise ContainerConfigError(f'{_KIND_TEXT[plural][0]} "{name}" not found')
    return _data(plural, found)


def _key_ref(lookup: Lookup, plural: str, ref: Obj, namespace: str) -> str | None:
    optional = bool(ref.get("optional"))
    data = _source(lookup, plural, str(ref.get("name", "")), optional)
    if data is None:
        return None
    key = str(ref.get("key", ""))
    if key not in data:
        if optional:
            return None
        raise ContainerConfigError(
            f"couldn't find key {key} in {_KIND_TEXT[plural][1]} {namespace}/{ref.get('name')}"
        )
    return data[key]


def _field(pod: Obj, path: str) -> str:
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    mapped = _MAPPED_FIELD.match(path)
    if mapped:
        return str((meta.get(mapped.group(1)) or {}).get(mapped.group(2), ""))
    values = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": status.get("hostIP"),
        "status.podIP": status.get("podIP"),
    }
    return str(values.get(path) or "")


def container_env(pod: Obj, container: Obj, lookup: Lookup) -> dict[str, str]:
    """The environment the container starts with; raises ContainerConfigError."""
    namespace = str(pod["metadata"].get("namespace", ""))
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = str(source.get("prefix") or "")
        for field_name, plural in (("configMapRef", "configmaps"), ("secretRef", "secrets")):
            ref = source.get(field_name)
            if ref:
                data = _source(lookup, plural, str(ref.get("name", "")), bool(ref.get("optional")))
                env.update({prefix + k: v for k, v in (data or {}).items()})
    for entry in container.get("env") or []:
        name = str(entry.get("name"))
        source = entry.get("valueFrom")
        if not source:
            env[name] = str(entry.get("value", ""))
            continue
        value: str | None = None
        if source.get("secretKeyRef"):
            value = _key_ref(lookup, "secrets", source["secretKeyRef"], namespace)
        elif source.get("configMapKeyRef"):
            value = _key_ref(lookup, "configmaps", source["configMapKeyRef"], namespace)
        elif source.get("fieldRef"):
            value = _field(pod, str(source["fieldRef"].get("fieldPath", "")))
        if value is not None:
            env[name] = value
    return env
