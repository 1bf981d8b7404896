"""Forms of register-cluster and deregister-cluster."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from budcluster.job_requests._common import ClusterKindChoice, _check_name, _Form
from budcluster.planning.placement import AUTO_CLUSTER

# The same pattern as budcluster.targets.kubernetes.scc.SCC_NAME, which a form cannot import
# without loading the Kubernetes client (tests/kubernetes/test_scc.py keeps the two equal).
SCC_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{0,62}$")


class RegisterClusterRequest(_Form):
    name: str = Field(description="Name for the cluster, e.g. 'lab-hosts' or 'prod-eks'.")
    kind: ClusterKindChoice = Field(
        ClusterKindChoice.HOSTS,
        description="hosts: servers reached through Ansible; kubernetes: a Kubernetes or OpenShift API.",
    )
    credentials_block: str = Field(
        description=(
            "Name of the credentials block: a Bud Host Inventory for hosts, a Bud Kubeconfig "
            "Credentials for kubernetes (add one with `budcluster credentials ...`)."
        )
    )
    provider: Literal["onprem", "eks", "aks"] = Field("onprem", description="Where it runs.")
    openshift_scc: str | None = Field(
        "nonroot-v2",
        description=(
            "OpenShift only: the SecurityContextConstraints granted to the node-info "
            "collector's service account (<prefix>-system/node-info-collector) before its pods "
            "start; nonroot-v2 lets the image run as its own non-root user. Empty grants "
            "nothing (restricted-v2 applies). Ignored on plain Kubernetes."
        ),
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value == AUTO_CLUSTER:
            # deploy-model reads cluster 'auto' as "pick one for me" (docs/placement.md).
            raise ValueError(
                f"cluster name {value!r} is reserved: deploy-model's cluster '{AUTO_CLUSTER}' "
                "places a model across clusters; pick another name (e.g. 'auto-1')"
            )
        return _check_name(value, "cluster name")

    @field_validator("openshift_scc")
    @classmethod
    def _scc(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not SCC_NAME.match(value):
            raise ValueError(
                f"openshift_scc: {value!r} is not an SCC name; use lowercase letters, digits, "
                "'.' and '-', e.g. nonroot-v2 (`oc get scc` lists them), or leave it empty"
            )
        return value


class DeregisterClusterRequest(_Form):
    name: str = Field(description="Name of a registered cluster.")
    force: bool = Field(
        False,
        description=(
            "Forget it even while deployments are recorded as running there (their runtimes "
            "are left running)."
        ),
    )
