"""Secret volumes as the kubelet projects them (``pkg/volume/secret``, ``AtomicWriter``).

- Every key of the Secret becomes a file under the mountPath (or each ``items`` entry at
  its ``path``, with its own ``mode``); ``subPath`` mounts one of them as the mountPath.
- Mode: the item's ``mode``, else the volume's ``defaultMode``, else 0644 (the API server's
  default). With a pod ``fsGroup``, the kubelet then ORs 0440 into it and gives the files
  that group (kubernetes/kubernetes#57923: a 0400 ``defaultMode`` becomes 0440); the owner
  is always root.
- A Secret that does not exist: with ``optional: true`` the volume is an empty directory;
  without it the pod cannot start, and the kubelet reports ``FailedMount`` with
  ``MountVolume.SetUp failed for volume "<volume>" : secret "<name>" not found`` until the
  Secret appears. A missing key named in ``items`` fails the same way unless optional.
- The mount is read-only (Secret volumes always are since Kubernetes 1.10).

Not simulated: the ``..data`` symlink layout, and updates of a running pod's files.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]
Lookup = Callable[[str, str], Obj | None]
"""(plural, name) -> the object in the pod's namespace, or None."""
DEFAULT_MODE = 0o644
FS_GROUP_MASK = 0o440


@dataclass(frozen=True)
class ProjectedFile:
    """One file of a Secret volume, as the container sees it."""

    data: bytes
    mode: int
    uid: int = 0
    gid: int = 0
    read_only: bool = True


def _secret_data(secret: Obj) -> dict[str, bytes]:
    return {str(k): base64.b64decode(str(v)) for k, v in (secret.get("data") or {}).items()}


def mount_failures(pod: Obj, lookup: Lookup) -> list[str]:
    """The kubelet's FailedMount messages for the pod's Secret volumes (empty: all mount)."""
    failures = []
    for volume in pod["spec"].get("volumes") or []:
        source = volume.get("secret")
        if not source:
            continue
        name = str(source.get("secretName", ""))
        prefix = f'MountVolume.SetUp failed for volume "{volume.get("name")}" : '
        secret = lookup("secrets", name)
        if secret is None:
            if not source.get("optional"):
                failures.append(f'{prefix}secret "{name}" not found')
            continue
        data = _secret_data(secret)
        for item in source.get("items") or []:
            if item.get("key") not in data and not source.get("optional"):
                failures.append(f"{prefix}references non-existent secret key: {item.get('key')}")
    return failures


def secret_files(pod: Obj, container: Obj, lookup: Lookup) -> dict[str, ProjectedFile]:
    """Path -> file of every Secret volume mounted into ``container``."""
    volumes = {v.get("name"): v for v in pod["spec"].get("volumes") or []}
    fs_group = (pod["spec"].get("securityContext") or {}).get("fsGroup")
    files: dict[str, ProjectedFile] = {}
    for mount in container.get("volumeMounts") or []:
        source = (volumes.get(mount.get("name")) or {}).get("secret")
        if not source:
            continue
        secret = lookup("secrets", str(source.get("secretName", "")))
        data = _secret_data(secret) if secret is not None else {}
        default_mode = source.get("defaultMode")
        default_mode = DEFAULT_MODE if default_mode is None else int(default_mode)
        items = source.get("items")
        projected = (
            {
                str(i["path"]): (data[i["key"]], int(i.get("mode", default_mode)))
                for i in items
                if i.get("key") in data
            }
            if items
            else {key: (value, default_mode) for key, value in data.items()}
        )
        base = str(mount["mountPath"]).rstrip("/")
        for path, (value, mode) in projected.items():
            if fs_group is not None:
                mode |= FS_GROUP_MASK
            projected_file = ProjectedFile(value, mode, 0, int(fs_group or 0))
            if mount.get("subPath"):
                if mount["subPath"] == path:
                    files[base] = projected_file
                continue
            files[f"{base}/{path}"] = projected_file
    return files
