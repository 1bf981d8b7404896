"""One emulated cluster: the store, the fake nodes, the controllers and kubelet, the faults."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from tests.k8s_emulator.api_faults import ApiFaultBook
from tests.k8s_emulator.autoscaler import PodMetrics, _State
from tests.k8s_emulator.controllers import (
    reconcile_daemonsets,
    reconcile_deployments,
    reconcile_jobs,
    reconcile_namespaces,
    reconcile_pvcs,
    reconcile_replicasets,
    schedule_pods,
)
from tests.k8s_emulator.crds import reconcile_crds
from tests.k8s_emulator.faults import FaultBook
from tests.k8s_emulator.hpa_controller import reconcile_hpas
from tests.k8s_emulator.kubelet import Kubelet
from tests.k8s_emulator.node_lifecycle import LostNode, reconcile_lost_nodes
from tests.k8s_emulator.nodes import NodeSpec, default_nodes
from tests.k8s_emulator.resources import ResourceRegistry, ResourceType
from tests.k8s_emulator.store import DEFAULT_HISTORY_SIZE, Store, now_iso
from tests.k8s_emulator.traffic import LOG_SIZE, ProxiedRequest, ServedRequest

OPENSHIFT_VERSION = "4.16.21"
SEED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
OPENSHIFT_NAMESPACES = ("openshift", "openshift-config", "openshift-ingress")


@dataclass
class Timings:
    """Simulated delays in seconds; small so the tests stay fast, all configurable."""

    tick_s: float = 0.05
    pod_start_s: float = 0.15
    ready_s: float = 0.25
    job_run_s: float = 0.4
    crash_interval_s: float = 0.5
    job_backoff_s: float = 0.1
    namespace_finalize_s: float = 0.5
    hpa_sync_s: float = 0.2  # --horizontal-pod-autoscaler-sync-period (15 s on a real cluster)
    toleration_scale: float = 0.01
    """Emulated seconds per real second of a pod's ``tolerationSeconds`` on a lost node."""


@dataclass
class Cluster:
    flavour: str = "kubernetes"
    nodes: list[NodeSpec] = field(default_factory=default_nodes)
    timings: Timings = field(default_factory=Timings)
    history_size: int = DEFAULT_HISTORY_SIZE
    volumes_dir: Path | None = None
    """Where bound volumes keep their files (``<dir>/<pv name>``, as a hostpath provisioner
    does); with it, a model-transfer Job's pod really copies its source into its volume.
    Without it (the default) the Job reports a simulated copy and no files exist."""

    def __post_init__(self) -> None:
        self.registry = ResourceRegistry.for_flavour(self.flavour)
        self.store = Store(self.registry, self.history_size)
        self.faults = FaultBook()
        self.api_faults = ApiFaultBook()
        self.lost_nodes: dict[str, LostNode] = {}
        self.kubelet = Kubelet(self)
        self.node_specs = {n.name: n for n in self.nodes}
        self.rollout_started: dict[str, tuple[str, float]] = {}
        self.job_started: dict[str, float] = {}
        self.job_last_failure: dict[str, float] = {}
        self.namespace_terminating: dict[str, float] = {}
        self.pod_ip_counter = 0
        self.pod_metrics = PodMetrics()  # fed by tests only: see autoscaler.py
        self.hpa_state: dict[str, _State] = {}
        self.crd_types: dict[str, list[ResourceType]] = {}
        # What went through services/proxy (the API server's access log of it) and what
        # reached a pod's simulated server (from the proxy or from another pod): tests
        # read both to prove which way a request went.
        self.proxy_log: deque[ProxiedRequest] = deque(maxlen=LOG_SIZE)
        self.engine_log: deque[ServedRequest] = deque(maxlen=LOG_SIZE)
        self._seed()

    def _seed(self) -> None:
        ns_rt = self.registry.get("namespaces")
        names = SEED_NAMESPACES + (OPENSHIFT_NAMESPACES if self.flavour == "openshift" else ())
        for name in names:
            self.store.create(ns_rt, None, {"metadata": {"name": name}})
        created = now_iso()
        for spec in self.nodes:
            self.store.create(self.registry.get("nodes"), None, spec.node_object(created))
        self.store.create(
            self.registry.get("storageclasses", "storage.k8s.io"),
            None,
            {
                "metadata": {
                    "name": "standard",
                    "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
                },
                "provisioner": "emulator.local/hostpath",
                "reclaimPolicy": "Delete",
                "volumeBindingMode": "Immediate",
            },
        )
        for runtime_class, handler in (("nvidia", "nvidia"), ("habana", "habana")):
            self.store.create(
                self.registry.get("runtimeclasses", "node.k8s.io"),
                None,
                {"metadata": {"name": runtime_class}, "handler": handler},
            )
        if self.flavour == "openshift":
            self.store.create(
                self.registry.get("clusterversions", "config.openshift.io"),
                None,
                {
                    "metadata": {"name": "version"},
                    "spec": {"channel": "stable-4.16", "clusterID": "00000000-emulated-openshift"},
                    "status": {
                        "desired": {
                            "version": OPENSHIFT_VERSION,
                            "image": "quay.io/openshift-release-dev/ocp-release",
                        },
                        "history": [
                            {
                                "state": "Completed",
                                "version": OPENSHIFT_VERSION,
                                "startedTime": created,
                                "completionTime": created,
                            }
                        ],
                        "conditions": [
                            {"type": "Available", "status": "True", "lastTransitionTime": created}
                        ],
                        "observedGeneration": 1,
                    },
                },
            )
            run_as_user = {
                "restricted-v2": "MustRunAsRange",
                "nonroot-v2": "MustRunAsNonRoot",
                "anyuid": "RunAsAny",
                "privileged": "RunAsAny",
            }
            for scc, user_strategy in run_as_user.items():
                self.store.create(
                    self.registry.get("securitycontextconstraints", "security.openshift.io"),
                    None,
                    {
                        "metadata": {"name": scc},
                        "allowPrivilegedContainer": scc == "privileged",
                        "runAsUser": {"type": user_strategy},
                    },
                )
                # OpenShift 4.x ships a ClusterRole per default SCC that may `use` it.
                self.store.create(
                    self.registry.get("clusterroles", "rbac.authorization.k8s.io"),
                    None,
                    {
                        "metadata": {
                            "name": f"system:openshift:scc:{scc}",
                            "annotations": {
                                "include.release.openshift.io/self-managed-high-availability": "true"
                            },
                        },
                        "rules": [
                            {
                                "apiGroups": ["security.openshift.io"],
                                "resources": ["securitycontextconstraints"],
                                "resourceNames": [scc],
                                "verbs": ["use"],
                            }
                        ],
                    },
                )

    def tick(self) -> None:
        reconcile_namespaces(self)
        reconcile_lost_nodes(self)
        reconcile_crds(self)
        reconcile_hpas(self)
        reconcile_deployments(self)
        reconcile_replicasets(self)
        reconcile_daemonsets(self)
        reconcile_jobs(self)
        reconcile_pvcs(self)
        schedule_pods(self)
        self.kubelet.tick()
