"""The kinds the charts use and where their objects live in the API (pure: no requests)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from budcluster.adapters.kubernetes.errors import KubernetesApiError

RELEASE_LABEL = "budcluster.io/release"
FIELD_MANAGER = "bud-serve-cluster"


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
    # After the Deployment they scale; ScaledObject is KEDA's CRD, served only with KEDA.
    "HorizontalPodAutoscaler": KindInfo("autoscaling/v2", "horizontalpodautoscalers", True, 6),
    "ScaledObject": KindInfo("keda.sh/v1alpha1", "scaledobjects", True, 6),
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


def collection_path(kind: str, namespace: str | None) -> str:
    info = kind_info(kind)
    base = (
        f"/api/{info.api_version}" if "/" not in info.api_version else f"/apis/{info.api_version}"
    )
    if info.namespaced and namespace:
        return f"{base}/namespaces/{namespace}/{info.plural}"
    # A namespaced kind without a namespace is the all-namespaces collection (list only).
    return f"{base}/{info.plural}"


def with_release_label(obj: Mapping[str, Any], release: str) -> dict[str, Any]:
    labelled = copy.deepcopy(dict(obj))
    labels = labelled.setdefault("metadata", {}).setdefault("labels", {})
    labels[RELEASE_LABEL] = release
    return labelled
