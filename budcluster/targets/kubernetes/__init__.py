"""The ``kubernetes`` cluster target: Kubernetes and OpenShift through Helm charts.

:mod:`.target` holds :class:`KubernetesTarget`, which does the I/O through the Kubernetes
and Helm adapters and hands three jobs to I/O modules of their own: :mod:`.staging` (the
model transfer Job), :mod:`.node_detection` (node health and the collector's inventory) and
:mod:`.verification` (endpoint and gateway checks, sent by :mod:`.probe` through the service
proxy). The rest is pure: :mod:`.names` (namespaces, releases, PVC paths), :mod:`.values`
(chart values), :mod:`.nodes` (node state, inventory, devices in use), :mod:`.status`
(runtime state, failure reasons), :mod:`.reach` (how the worker reaches a Service
from outside: the API server's service proxy), :mod:`.objects` (the Kubernetes objects read, as
TypedDicts), :mod:`.timeouts` (how long each step may take) and :mod:`.errors` (the error
tree).
"""

from budcluster.targets.kubernetes.errors import (
    KubernetesRuntimeFailed,
    KubernetesTargetConfigError,
    KubernetesTargetError,
    KubernetesTargetTemporary,
)
from budcluster.targets.kubernetes.names import (
    COLLECTOR_RELEASE,
    MAX_NAMESPACE,
    MAX_RELEASE,
    NODE_INFO_PREFIX,
    PVC_SCHEME,
    dns_name,
    model_release_for,
    namespace_for,
    parse_pvc_path,
    pvc_path,
    release_for,
)
from budcluster.targets.kubernetes.nodes import (
    GAUDI_RESOURCE,
    GPU_RESOURCE,
    RUNTIME_SELECTOR,
    SERVED_MODEL_ANNOTATION,
    NodeState,
    devices_in_use,
    is_accelerator,
    node_state,
    pod_accelerator_requests,
    pods_by_node,
    reconcile_node,
)
from budcluster.targets.kubernetes.objects import (
    DeploymentObject,
    EventObject,
    NodeObject,
    PodObject,
)
from budcluster.targets.kubernetes.reach import (
    VIA_SERVICE_PROXY,
    InClusterService,
    in_cluster_service,
    service_proxy_access,
)
from budcluster.targets.kubernetes.status import rollout_complete, runtime_state
from budcluster.targets.kubernetes.target import CHARTS_DIR, KubernetesTarget
from budcluster.targets.kubernetes.timeouts import KubernetesTimeouts
from budcluster.targets.kubernetes.values import runtime_values, transfer_values

__all__ = [
    "CHARTS_DIR",
    "COLLECTOR_RELEASE",
    "GAUDI_RESOURCE",
    "GPU_RESOURCE",
    "MAX_NAMESPACE",
    "MAX_RELEASE",
    "NODE_INFO_PREFIX",
    "PVC_SCHEME",
    "RUNTIME_SELECTOR",
    "SERVED_MODEL_ANNOTATION",
    "VIA_SERVICE_PROXY",
    "DeploymentObject",
    "EventObject",
    "InClusterService",
    "KubernetesRuntimeFailed",
    "KubernetesTarget",
    "KubernetesTargetConfigError",
    "KubernetesTargetError",
    "KubernetesTargetTemporary",
    "KubernetesTimeouts",
    "NodeObject",
    "NodeState",
    "PodObject",
    "devices_in_use",
    "dns_name",
    "in_cluster_service",
    "is_accelerator",
    "model_release_for",
    "namespace_for",
    "node_state",
    "parse_pvc_path",
    "pod_accelerator_requests",
    "pods_by_node",
    "pvc_path",
    "reconcile_node",
    "release_for",
    "rollout_complete",
    "runtime_state",
    "runtime_values",
    "service_proxy_access",
    "transfer_values",
]
