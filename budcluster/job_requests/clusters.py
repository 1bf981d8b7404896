"""Forms of register-cluster and deregister-cluster."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from budcluster.job_requests._common import ClusterKindChoice, _check_name, _Form
from budcluster.planning.placement import AUTO_CLUSTER


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


class DeregisterClusterRequest(_Form):
    name: str = Field(description="Name of a registered cluster.")
    force: bool = Field(
        False,
        description=(
            "Forget it even while deployments are recorded as running there (their runtimes "
            "are left running)."
        ),
    )
