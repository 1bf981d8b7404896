"""Granting and revoking an OpenShift SCC through the Kubernetes adapter (the objects are
:mod:`.scc`'s)."""

from __future__ import annotations

from kubernetes import client as k8s_client

from budcluster.adapters import kubernetes as kube
from budcluster.targets.kubernetes.errors import wrap
from budcluster.targets.kubernetes.scc import scc_grant_objects


def grant_scc(
    api: k8s_client.ApiClient,
    scc: str,
    namespace: str,
    service_account: str,
    *,
    timeout_s: float,
) -> list[str]:
    """Let ``service_account`` use ``scc``; idempotent. Returns ``Kind/name`` of what it wrote.

    The ClusterRole is created only when missing: OpenShift ships ``system:openshift:scc:*``
    for its own SCCs, managed by the cluster, and those are left as they are. The RoleBinding
    is created, or merge-patched back to these subjects when it exists.
    """
    role, binding = scc_grant_objects(scc, namespace, service_account)
    release = f"scc-{scc}"
    written = []
    try:
        if kube.get_object(api, kube.ObjectRef.of(role), timeout_s=timeout_s) is None:
            kube.apply_objects(api, [role], release, timeout_s=timeout_s)
            written.append(f"ClusterRole/{role['metadata']['name']}")
        kube.apply_objects(api, [binding], release, timeout_s=timeout_s)
    except kube.KubernetesError as exc:
        raise wrap(exc, f"grant SCC {scc} to {namespace}/{service_account}") from exc
    written.append(f"RoleBinding/{namespace}/{binding['metadata']['name']}")
    return written


def revoke_scc(
    api: k8s_client.ApiClient,
    scc: str,
    namespace: str,
    service_account: str,
    *,
    timeout_s: float,
) -> None:
    """Remove the RoleBinding :func:`grant_scc` made (the shared ClusterRole stays)."""
    _, binding = scc_grant_objects(scc, namespace, service_account)
    try:
        kube.delete_objects(api, [kube.ObjectRef.of(binding)], timeout_s=timeout_s)
    except kube.KubernetesError as exc:
        raise wrap(exc, f"revoke SCC {scc} from {namespace}/{service_account}") from exc
