"""OpenShift SecurityContextConstraints grants: the RBAC that lets a service account ``use``
an SCC, i.e. ``oc adm policy add-scc-to-user <scc> -z <sa> -n <ns>`` done with plain RBAC.

Pure: which objects make the grant. :mod:`.scc_grants` applies and removes them through
the Kubernetes adapter. register-cluster grants the SCC to the node-info collector's service
account on OpenShift, and ``playbooks/apply_security_context.yml`` grants it to any other
service account (a runtime release's): both build the objects here, so they never drift.
"""

from __future__ import annotations

import re
from typing import Any

from budcluster.targets.kubernetes.errors import KubernetesTargetConfigError

SCC_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{0,62}$")
"""An SCC's name as OpenShift's own are spelt (restricted-v2, nonroot-v2, anyuid)."""
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
SCC_ROLE_PREFIX = "system:openshift:scc:"
"""OpenShift (4.x) ships one ClusterRole per default SCC under this name."""


def check_scc_name(scc: str, field: str = "openshift_scc") -> str:
    if not SCC_NAME.match(scc):
        raise KubernetesTargetConfigError(
            f"{field}: {scc!r} is not an SCC name; use lowercase letters, digits, '.' and '-', "
            "e.g. nonroot-v2 (`oc get scc` lists them)"
        )
    return scc


def scc_role_name(scc: str) -> str:
    return f"{SCC_ROLE_PREFIX}{check_scc_name(scc)}"


def scc_binding_name(scc: str, service_account: str) -> str:
    return f"bud-scc-{check_scc_name(scc)}-{service_account}"


def scc_grant_objects(scc: str, namespace: str, service_account: str) -> list[dict[str, Any]]:
    """The ClusterRole that may ``use`` the SCC, and the RoleBinding of ``service_account``
    in ``namespace`` to it."""
    for what, value in (("namespace", namespace), ("service_account", service_account)):
        if not _DNS_LABEL.match(value):
            raise KubernetesTargetConfigError(
                f"{what}: {value!r} is not a DNS-1123 label (lowercase letters, digits, '-')"
            )
    role = scc_role_name(scc)
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": role},
            "rules": [
                {
                    "apiGroups": ["security.openshift.io"],
                    "resources": ["securitycontextconstraints"],
                    "resourceNames": [scc],
                    "verbs": ["use"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": scc_binding_name(scc, service_account), "namespace": namespace},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": service_account, "namespace": namespace}
            ],
        },
    ]
