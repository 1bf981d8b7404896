"""JSON merge patch (RFC 7386), strategic merge patch for the kinds the project uses, JSON
patch (RFC 6902), and the simplified server-side apply merge."""

from __future__ import annotations

import copy
from typing import Any

from tests.k8s_emulator.errors import ApiError, bad_request

# patchMergeKey of the list fields we use (from the Kubernetes Go types). Lists not named
# here are atomic (replaced whole), as in the real server, tolerations and args included.
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "hostAliases": "ip",
    "ownerReferences": "uid",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}
# Lists of scalars that merge (set union) instead of being replaced.
MERGED_SCALAR_LISTS = {"finalizers"}


def _list_merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":
        # Container ports merge by containerPort, Service ports by port.
        dicts = [i for i in items if isinstance(i, dict)]
        if dicts and all("containerPort" in i for i in dicts if i.get("$patch") != "delete"):
            return "containerPort"
        return "port"
    return MERGE_KEYS.get(field)


def json_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$"):
            continue  # $setElementOrder/..., $retainKeys, $deleteFromPrimitiveList handled below
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = copy.deepcopy(value)
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in value]
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(field: str, current: Any, patch: list[Any]) -> list[Any]:
    current_list = current if isinstance(current, list) else []
    if field in MERGED_SCALAR_LISTS:
        merged = list(current_list)
        merged.extend(v for v in patch if v not in merged)
        return merged
    key = _list_merge_key(field, patch + current_list)
    if key is None or not all(isinstance(i, dict) for i in patch):
        return copy.deepcopy(patch)
    if any(i.get("$patch") == "replace" for i in patch):
        return [copy.deepcopy(i) for i in patch if i.get("$patch") != "replace"]
    result = [copy.deepcopy(i) for i in current_list]
    for item in patch:
        index = next(
            (
                n
                for n, have in enumerate(result)
                if isinstance(have, dict) and have.get(key) == item.get(key)
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
            continue
        if index is None:
            result.append(strategic_merge_patch({}, item))
        else:
            result[index] = strategic_merge_patch(result[index], item)
    return result


# --- JSON patch -----------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"invalid JSON pointer {path!r}: it must start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str], path: str) -> Any:
    current = doc
    for part in parts[:-1]:
        if isinstance(current, list):
            try:
                current = current[int(part)]
            except (ValueError, IndexError) as exc:
                raise _unprocessable(f"path {path!r}: no element {part}") from exc
        elif isinstance(current, dict) and part in current:
            current = current[part]
        else:
            raise _unprocessable(f"doc is missing path: {path!r}")
    return current


def _unprocessable(message: str) -> ApiError:
    return ApiError(
        422, "Invalid", f"the server rejected our request due to an error in our request: {message}"
    )


def _get(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return doc
    parent = _parent(doc, parts, path)
    last = parts[-1]
    try:
        return parent[int(last)] if isinstance(parent, list) else parent[last]
    except (KeyError, ValueError, IndexError, TypeError) as exc:
        raise _unprocessable(f"doc is missing path: {path!r}") from exc


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    parent = _parent(doc, parts, path)
    last = parts[-1]
    try:
        return parent.pop(int(last)) if isinstance(parent, list) else parent.pop(last)
    except (KeyError, ValueError, IndexError) as exc:
        raise _unprocessable(f"unable to remove nonexistent key: {last}: missing value") from exc


def _add(doc: Any, path: str, value: Any, replace: bool = False) -> Any:
    parts = _pointer(path)
    if not parts:
        return copy.deepcopy(value)
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, list):
        if last == "-":
            parent.append(copy.deepcopy(value))
        else:
            try:
                index = int(last)
            except ValueError as exc:
                raise _unprocessable(f"invalid array index {last!r}") from exc
            if replace:
                parent[index] = copy.deepcopy(value)
            else:
                parent.insert(index, copy.deepcopy(value))
    elif isinstance(parent, dict):
        if replace and last not in parent:
            raise _unprocessable(f"replace operation does not apply: doc is missing key: {path}")
        parent[last] = copy.deepcopy(value)
    else:
        raise _unprocessable(f"doc is missing path: {path!r}")
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise bad_request("a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request(f"invalid JSON patch operation {op!r}: 'op' and 'path' are required")
        kind, path = op["op"], op["path"]
        if kind == "add":
            doc = _add(doc, path, op.get("value"))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            doc = _add(doc, path, op.get("value"), replace=True)
        elif kind == "move":
            value = _remove(doc, op["from"])
            doc = _add(doc, path, value)
        elif kind == "copy":
            doc = _add(doc, path, _get(doc, op["from"]))
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise _unprocessable(f"testing value {path} failed")
        else:
            raise bad_request(f"unknown JSON patch operation {kind!r}")
    return doc


# --- server-side apply ----------------------------------------------------------------


def _prune(live: Any, previous: Any, applied: Any) -> Any:
    """Drop from ``live`` what the manager applied before but no longer applies."""
    if not isinstance(live, dict) or not isinstance(previous, dict):
        return live
    applied = applied if isinstance(applied, dict) else {}
    result = dict(live)
    for key, old in previous.items():
        if key not in applied:
            result.pop(key, None)
        elif isinstance(old, dict) and key in result:
            result[key] = _prune(result[key], old, applied[key])
    return result


def server_side_apply(
    live: dict[str, Any] | None, previous: Any, applied: dict[str, Any]
) -> dict[str, Any]:
    """Merge an applied configuration into the live object, the way SSA does for one manager:
    fields the manager dropped since its last apply are removed, the rest merges like a
    strategic merge patch (lists by their merge keys)."""
    base = _prune(copy.deepcopy(live or {}), previous, applied)
    merged = strategic_merge_patch(base, applied)
    assert isinstance(merged, dict)
    return merged
