"""The API resources the emulator serves, per flavour: what discovery advertises and what
the store accepts. Only what the project (and kubectl) touches; unknown paths answer 404."""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
READ_VERBS = ("get", "list", "watch")


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    status_subresource: bool = False
    # metadata.generation is kept for workload-like kinds (bumped on spec change).
    tracks_generation: bool = False
    categories: tuple[str, ...] = ()
    extra_subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def qualified(self) -> str:
        """``deployments.apps`` as the real server names a resource in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _core(kind: str, plural: str, namespaced: bool = True, **kw: object) -> ResourceType:
    return ResourceType("", "v1", kind, plural, namespaced, **kw)  # type: ignore[arg-type]


def _t(
    group: str, kind: str, plural: str, namespaced: bool = True, version: str = "v1", **kw: object
) -> ResourceType:
    return ResourceType(group, version, kind, plural, namespaced, **kw)  # type: ignore[arg-type]


_ALL = ("all",)

KUBERNETES_TYPES: tuple[ResourceType, ...] = (
    _core("Namespace", "namespaces", False, short_names=("ns",), status_subresource=True),
    _core(
        "Pod",
        "pods",
        short_names=("po",),
        status_subresource=True,
        categories=_ALL,
        extra_subresources=("log",),
    ),
    _core(
        "Service",
        "services",
        short_names=("svc",),
        status_subresource=True,
        categories=_ALL,
        extra_subresources=("proxy",),
    ),
    _core("ConfigMap", "configmaps", short_names=("cm",)),
    _core("Secret", "secrets"),
    _core("ServiceAccount", "serviceaccounts", short_names=("sa",)),
    _core("Endpoints", "endpoints", short_names=("ep",)),
    _core(
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        short_names=("pvc",),
        status_subresource=True,
    ),
    _core(
        "PersistentVolume", "persistentvolumes", False, short_names=("pv",), status_subresource=True
    ),
    _core("Node", "nodes", False, short_names=("no",), status_subresource=True),
    _core("Event", "events", short_names=("ev",)),
    _core("ResourceQuota", "resourcequotas", short_names=("quota",), status_subresource=True),
    _core("LimitRange", "limitranges", short_names=("limits",)),
    _t(
        "apps",
        "Deployment",
        "deployments",
        short_names=("deploy",),
        status_subresource=True,
        tracks_generation=True,
        categories=_ALL,
    ),
    _t(
        "apps",
        "ReplicaSet",
        "replicasets",
        short_names=("rs",),
        status_subresource=True,
        tracks_generation=True,
        categories=_ALL,
    ),
    _t(
        "apps",
        "DaemonSet",
        "daemonsets",
        short_names=("ds",),
        status_subresource=True,
        tracks_generation=True,
        categories=_ALL,
    ),
    _t(
        "apps",
        "StatefulSet",
        "statefulsets",
        short_names=("sts",),
        status_subresource=True,
        tracks_generation=True,
        categories=_ALL,
    ),
    _t("apps", "ControllerRevision", "controllerrevisions"),
    _t("batch", "Job", "jobs", status_subresource=True, tracks_generation=True, categories=_ALL),
    _t(
        "batch",
        "CronJob",
        "cronjobs",
        short_names=("cj",),
        status_subresource=True,
        tracks_generation=True,
        categories=_ALL,
    ),
    _t(
        "policy",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        short_names=("pdb",),
        status_subresource=True,
        tracks_generation=True,
    ),
    _t(
        "networking.k8s.io",
        "Ingress",
        "ingresses",
        short_names=("ing",),
        status_subresource=True,
        tracks_generation=True,
    ),
    _t("networking.k8s.io", "IngressClass", "ingressclasses", False),
    _t(
        "networking.k8s.io",
        "NetworkPolicy",
        "networkpolicies",
        short_names=("netpol",),
        tracks_generation=True,
    ),
    _t("rbac.authorization.k8s.io", "Role", "roles"),
    _t("rbac.authorization.k8s.io", "RoleBinding", "rolebindings"),
    _t("rbac.authorization.k8s.io", "ClusterRole", "clusterroles", False),
    _t("rbac.authorization.k8s.io", "ClusterRoleBinding", "clusterrolebindings", False),
    _t("node.k8s.io", "RuntimeClass", "runtimeclasses", False),
    _t("storage.k8s.io", "StorageClass", "storageclasses", False, short_names=("sc",)),
    _t("coordination.k8s.io", "Lease", "leases"),
    # Only v2 of autoscaling is served (the real 1.31 also serves v1; nothing here uses it).
    _t(
        "autoscaling",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        version="v2",
        short_names=("hpa",),
        status_subresource=True,
        tracks_generation=True,
        categories=_ALL,
    ),
    _t(
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        False,
        short_names=("crd", "crds"),
        status_subresource=True,
        tracks_generation=True,
    ),
)

OPENSHIFT_TYPES: tuple[ResourceType, ...] = (
    _t(
        "config.openshift.io",
        "ClusterVersion",
        "clusterversions",
        False,
        status_subresource=True,
        tracks_generation=True,
    ),
    _t("route.openshift.io", "Route", "routes", status_subresource=True, tracks_generation=True),
    _t(
        "security.openshift.io",
        "SecurityContextConstraints",
        "securitycontextconstraints",
        False,
        short_names=("scc",),
    ),
)

FLAVOURS = ("kubernetes", "openshift")


@dataclass
class ResourceRegistry:
    types: tuple[ResourceType, ...]
    _by_path: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)
    _by_kind: dict[tuple[str, str], ResourceType] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for rt in self.types:
            self._by_path[(rt.group, rt.version, rt.plural)] = rt
            self._by_kind[(rt.api_version, rt.kind)] = rt

    @classmethod
    def for_flavour(cls, flavour: str) -> ResourceRegistry:
        if flavour not in FLAVOURS:
            raise ValueError(f"flavour must be one of {FLAVOURS}, got {flavour!r}")
        types = KUBERNETES_TYPES + (OPENSHIFT_TYPES if flavour == "openshift" else ())
        return cls(types)

    def register(self, rt: ResourceType) -> None:
        """Serve one more resource (a CustomResourceDefinition's version, once established)."""
        self.types = (*self.types, rt)
        self._by_path[(rt.group, rt.version, rt.plural)] = rt
        self._by_kind[(rt.api_version, rt.kind)] = rt

    def unregister(self, rt: ResourceType) -> None:
        self.types = tuple(t for t in self.types if t is not rt)
        self._by_path.pop((rt.group, rt.version, rt.plural), None)
        self._by_kind.pop((rt.api_version, rt.kind), None)

    def versions(self, group: str) -> list[str]:
        """The versions served for ``group``, the preferred (first defined) first."""
        found: list[str] = []
        for rt in self.types:
            if rt.group == group and rt.version not in found:
                found.append(rt.version)
        return found

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((api_version, kind))

    def get(self, plural: str, group: str = "") -> ResourceType:
        for rt in self.types:
            if rt.plural == plural and rt.group == group:
                return rt
        raise KeyError(f"{plural}.{group}" if group else plural)

    def groups(self) -> list[str]:
        """API groups in the order the real server lists them (core first, then as defined)."""
        seen: list[str] = []
        for rt in self.types:
            if rt.group and rt.group not in seen:
                seen.append(rt.group)
        return seen

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for rt in self.types if rt.group == group and rt.version == version]
