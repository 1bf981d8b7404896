"""The Kubernetes adapter: the one place that talks to an API server.

Clients are built in memory from a kubeconfig mapping; the kubeconfig is never
written to disk by this package (the client itself writes the decoded client key, into the
process's private secrets directory).

:mod:`.kinds` says where objects live (pure); :mod:`.client` builds clients and makes one
call; :mod:`.objects`, :mod:`.watch`, :mod:`.cluster`, :mod:`.diagnostics` and :mod:`.proxy`
do the reads and writes; :mod:`.errors` holds the error tree.
"""

from budcluster.adapters.kubernetes.client import (
    DEFAULT_TIMEOUT_S,
    api_client_from_kubeconfig,
    request_json,
    retry_deadline_s,
    set_retry_deadline,
)
from budcluster.adapters.kubernetes.cluster import (
    OPENSHIFT_GROUP,
    platform_kind,
    served_api_groups,
    server_version,
    serves_resource,
)
from budcluster.adapters.kubernetes.diagnostics import events_for, pod_log_tail
from budcluster.adapters.kubernetes.errors import (
    KubernetesApiError,
    KubernetesConfigError,
    KubernetesConflict,
    KubernetesError,
    KubernetesNotFound,
    KubernetesServerError,
    KubernetesTimeout,
    KubernetesUnavailable,
    translate,
)
from budcluster.adapters.kubernetes.kinds import (
    FIELD_MANAGER,
    KINDS,
    RELEASE_LABEL,
    KindInfo,
    ObjectRef,
    kind_info,
    with_release_label,
)
from budcluster.adapters.kubernetes.objects import (
    apply_objects,
    delete_objects,
    get_object,
    list_objects,
    list_release,
    prune_release,
    release_namespaces,
    secret_value,
)
from budcluster.adapters.kubernetes.proxy import ProxyResponse, service_proxy, service_proxy_path
from budcluster.adapters.kubernetes.watch import wait_for

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "FIELD_MANAGER",
    "KINDS",
    "OPENSHIFT_GROUP",
    "RELEASE_LABEL",
    "KindInfo",
    "KubernetesApiError",
    "KubernetesConfigError",
    "KubernetesConflict",
    "KubernetesError",
    "KubernetesNotFound",
    "KubernetesServerError",
    "KubernetesTimeout",
    "KubernetesUnavailable",
    "ObjectRef",
    "ProxyResponse",
    "api_client_from_kubeconfig",
    "apply_objects",
    "delete_objects",
    "events_for",
    "get_object",
    "kind_info",
    "list_objects",
    "list_release",
    "platform_kind",
    "pod_log_tail",
    "prune_release",
    "release_namespaces",
    "request_json",
    "retry_deadline_s",
    "secret_value",
    "served_api_groups",
    "server_version",
    "serves_resource",
    "service_proxy",
    "service_proxy_path",
    "set_retry_deadline",
    "translate",
    "wait_for",
    "with_release_label",
]
