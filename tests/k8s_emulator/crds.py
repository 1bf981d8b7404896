"""CustomResourceDefinitions (apiextensions.k8s.io/v1) as the real apiextensions-apiserver
treats them, as far as the tests need: a CRD is validated on write, and once the controller
has accepted its names and marked it Established, each served version appears in discovery
and its custom resources can be created, listed, watched and deleted like any other object.
Deleting the CRD deletes its custom resources and stops serving them.

Not emulated: OpenAPI schema validation and pruning of custom resources (they are stored as
sent), conversion between versions, the scale subresource, and changes to a CRD's names or
versions after it was established.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from tests.k8s_emulator.resources import ResourceType

if TYPE_CHECKING:
    from tests.k8s_emulator.cluster import Cluster

Obj = dict[str, Any]
SCOPES = ("Cluster", "Namespaced")


def crd_causes(crd: Obj) -> list[tuple[str, str]]:
    """The validation errors the real server reports for a CRD, as (field, message)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = str(spec.get("group") or "")
    plural = str(names.get("plural") or "")
    name = str((crd.get("metadata") or {}).get("name") or "")
    causes: list[tuple[str, str]] = []
    if name != f"{plural}.{group}":
        causes.append(
            (
                "metadata.name",
                f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
            )
        )
    if "." not in group:
        causes.append(
            ("spec.group", f'Invalid value: "{group}": should be a domain with at least one dot')
        )
    if not names.get("kind"):
        causes.append(("spec.names.kind", "Required value"))
    if spec.get("scope") not in SCOPES:
        causes.append(
            (
                "spec.scope",
                f'Unsupported value: "{spec.get("scope", "")}": supported values: "Cluster", '
                '"Namespaced"',
            )
        )
    versions = spec.get("versions") or []
    if not versions:
        causes.append(("spec.versions", "Invalid value: null: must have exactly one version"))
    elif sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(
            (
                "spec.versions",
                "Invalid value: []apiextensions.CustomResourceDefinitionVersion{...}: must have "
                "exactly one version marked as storage version",
            )
        )
    return causes


def _resource_types(crd: Obj) -> list[ResourceType]:
    spec = crd["spec"]
    names = spec["names"]
    return [
        ResourceType(
            group=spec["group"],
            version=version["name"],
            kind=names["kind"],
            plural=names["plural"],
            namespaced=spec["scope"] == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()),
            status_subresource="status" in (version.get("subresources") or {}),
            # Custom resources always carry metadata.generation.
            tracks_generation=True,
            categories=tuple(names.get("categories") or ()),
        )
        for version in spec["versions"]
        if version.get("served")
    ]


def reconcile_crds(cluster: Cluster) -> None:
    """Establish new CRDs (serve their versions) and retire deleted ones."""
    from tests.k8s_emulator.store import now_iso

    store = cluster.store
    crd_rt = cluster.registry.get("customresourcedefinitions", "apiextensions.k8s.io")
    live = {crd["metadata"]["uid"]: crd for crd in store.list(crd_rt)}
    for uid in [u for u in cluster.crd_types if u not in live]:
        for rt in cluster.crd_types.pop(uid):
            for obj in list(store.list(rt)):
                store.remove(rt, obj)
            cluster.registry.unregister(rt)
    for uid, crd in live.items():
        if uid in cluster.crd_types:
            continue
        types = _resource_types(crd)
        for rt in types:
            cluster.registry.register(rt)
        cluster.crd_types[uid] = types
        established = copy.deepcopy(crd)
        now = now_iso()
        established["status"] = {
            "conditions": [
                {
                    "type": type_,
                    "status": "True",
                    "lastTransitionTime": now,
                    "reason": reason,
                    "message": message,
                }
                for type_, reason, message in (
                    ("NamesAccepted", "NoConflicts", "no conflicts found"),
                    ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
                )
            ],
            "acceptedNames": copy.deepcopy(crd["spec"]["names"]),
            "storedVersions": [v["name"] for v in crd["spec"]["versions"] if v.get("storage")],
        }
        store.write(crd_rt, established)
