"""The forms of provision-cluster, destroy-cluster and the plan approval.

Every user-supplied string that reaches a Terraform variable is checked against a strict
pattern here, so a bad value is refused naming its field before anything runs.
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from budcluster.errors import TemporaryError

_CLUSTER_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_POOL_NAME = re.compile(r"^[a-z][a-z0-9]{0,11}$")
_MACHINE_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_REGION = re.compile(r"^[a-z][a-z0-9-]{1,39}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_STATE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,200}$")
_AZURE_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._()-]{0,88}[A-Za-z0-9_()-])?$")
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_TAG_TEXT = re.compile(r"^[\w .:/=+@-]{0,256}$")


def _matching(pattern: re.Pattern[str], what: str, example: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{what} {value!r} is not valid; write it like {example!r}")
        return value

    return AfterValidator(check)


def _cidr(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a network in CIDR form such as '10.42.0.0/16'") from exc
    if network.version != 4:
        raise ValueError(f"{value!r}: the modules take IPv4 networks, e.g. '10.42.0.0/16'")
    return str(network)


def _cluster_network(value: str) -> str:
    network = ipaddress.ip_network(_cidr(value))
    if not 16 <= network.prefixlen <= 24:
        raise ValueError(
            f"{value!r}: the cluster network must be a /16 to /24 (room for a subnet per zone)"
        )
    return value


# The AKS module's Kubernetes service range; its VNet must not overlap it.
AKS_SERVICE_CIDR = ipaddress.ip_network("10.0.0.0/16")
_MAX_TAGS = 40


MachineType = Annotated[str, _matching(_MACHINE_TYPE, "machine type", "g5.2xlarge")]
Region = Annotated[str, _matching(_REGION, "region", "eu-west-1")]
Cidr = Annotated[str, AfterValidator(_cidr)]
ClusterNetwork = Annotated[str, AfterValidator(_cluster_network)]


class NotRegistered(TemporaryError):
    """The cluster exists (its infrastructure is applied) but registering it failed."""

    def __init__(self, cluster: str, kubeconfig_block: str, cause: BaseException) -> None:
        super().__init__(
            f"cluster {cluster!r} was created and its kubeconfig sealed in block "
            f"{kubeconfig_block!r}, but registering it failed: {cause}. Once its API server "
            "is reachable from the worker (and the kubeconfig's exec plugin, aws or kubelogin, "
            "is installed there), rerun provision-cluster (nothing is re-created) or run "
            f"register-cluster with credentials_block={kubeconfig_block!r}."
        )


class Cloud(StrEnum):
    EKS = "eks"
    AKS = "aks"


class _Form(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CpuNodePool(_Form):
    """The nodes for system pods and CPU runtimes."""

    machine_types: list[MachineType] = Field(
        default_factory=list,
        description=(
            "Instance types (EKS, several allowed) or one VM size (AKS). Empty: m6i.xlarge "
            "on EKS, Standard_D4s_v5 on AKS."
        ),
    )
    min_count: int = Field(1, ge=0, le=1000, description="Fewest nodes.")
    max_count: int = Field(3, ge=1, le=1000, description="Most nodes.")
    desired_count: int | None = Field(
        None, ge=0, le=1000, description="Nodes to start with (EKS; default min_count)."
    )

    @model_validator(mode="after")
    def _ordered(self) -> CpuNodePool:
        desired = self.min_count if self.desired_count is None else self.desired_count
        if not self.min_count <= desired <= self.max_count:
            raise ValueError(
                f"need min_count <= desired_count <= max_count, got {self.min_count}, "
                f"{desired}, {self.max_count}"
            )
        return self


class GpuNodePool(CpuNodePool):
    """GPU nodes: tainted nvidia.com/gpu=present:NoSchedule so only GPU workloads land there."""

    name: Annotated[str, _matching(_POOL_NAME, "GPU pool name", "h100")] = Field(
        description="1-12 lowercase letters and digits, starting with a letter (AKS's rule)."
    )
    machine_types: list[MachineType] = Field(
        min_length=1,
        description="GPU instance types, e.g. ['g5.2xlarge'] or ['Standard_NC24ads_A100_v4'].",
    )
    min_count: int = Field(0, ge=0, le=1000, description="Fewest nodes.")
    max_count: int = Field(2, ge=1, le=1000, description="Most nodes.")
    labels: dict[str, str] = Field(
        default_factory=dict, description="Extra Kubernetes node labels for this pool."
    )

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: dict[str, str]) -> dict[str, str]:
        for key, value in labels.items():
            if not _LABEL_KEY.fullmatch(key) or not _LABEL_VALUE.fullmatch(value):
                raise ValueError(
                    f"label {key}={value!r} is not a valid Kubernetes label "
                    "(e.g. 'accelerator': 'h100')"
                )
        return labels


class StateBackend(_Form):
    """Where Terraform keeps the cluster's state, and its lock."""

    kind: Literal["s3", "azurerm", "local"] = Field(
        "s3",
        description=(
            "s3 (EKS; locked with a .tflock object), azurerm (AKS; locked with a blob lease) or "
            "local (a file on the worker: development only, the state is lost with the worker)."
        ),
    )
    bucket: Annotated[str, _matching(_BUCKET, "S3 bucket", "acme-terraform-state")] | None = Field(
        None, description="S3 bucket for the state (s3)."
    )
    key_prefix: Annotated[str, _matching(_STATE_KEY, "state key prefix", "bud/clusters")] = Field(
        "bud-serve-cluster",
        description="The state lives at <key_prefix>/<cluster name>.tfstate.",
    )
    region: Region | None = Field(
        None, description="Region of the S3 bucket (s3; default: the cluster's region)."
    )
    use_path_style: bool = Field(
        False, description="Path-style S3 URLs (for S3-compatible stores such as MinIO)."
    )
    storage_account: (
        Annotated[str, _matching(re.compile(r"^[a-z0-9]{3,24}$"), "storage account", "acmetfstate")]
        | None
    ) = Field(None, description="Azure storage account for the state (azurerm).")
    container: (
        Annotated[
            str, _matching(re.compile(r"^[a-z0-9](-?[a-z0-9]){2,62}$"), "container", "tfstate")
        ]
        | None
    ) = Field(None, description="Blob container in that account (azurerm).")
    resource_group: (
        Annotated[str, _matching(_AZURE_NAME, "resource group", "tfstate-rg")] | None
    ) = Field(None, description="Resource group of the storage account (azurerm).")

    @model_validator(mode="after")
    def _complete(self) -> StateBackend:
        if self.kind == "azurerm":
            missing = [
                name
                for name in ("storage_account", "container", "resource_group")
                if not getattr(self, name)
            ]
            if missing:
                raise ValueError(
                    f"state.{', state.'.join(missing)} required for an azurerm state backend"
                )
        return self


class Approval(_Form):
    """How the plan is approved before anything is created or destroyed."""

    auto_approve: bool = Field(
        False,
        description=(
            "Apply without waiting for a person (automation). Otherwise the run pauses after "
            "the plan until someone approves it in the Prefect UI or with "
            "`budcluster cluster approve`."
        ),
    )
    timeout_s: int = Field(
        3600, ge=60, le=7 * 86400, description="How long a paused run waits for an answer."
    )


class ProvisionClusterRequest(_Form):
    name: Annotated[str, _matching(_CLUSTER_NAME, "cluster name", "prod-eks-1")] = Field(
        description="Cluster name: 1-63 lowercase letters, digits or '-'."
    )
    cloud: Cloud = Field(Cloud.EKS, description="eks (AWS) or aks (Azure).")
    credentials_block: str = Field(
        description=(
            "Name of a Bud AWS Credentials (eks) or Bud Azure Credentials (aks) block; its "
            "keys reach Terraform only through the environment of this run."
        ),
        min_length=1,
        max_length=253,
    )
    region: Region = Field(description="AWS region (eu-west-1) or Azure location (westeurope).")
    kubernetes_version: (
        Annotated[str, _matching(re.compile(r"^1\.[0-9]{1,2}$"), "Kubernetes version", "1.31")]
        | None
    ) = Field(None, description="Kubernetes minor version; empty: the module's default.")
    network_cidr: ClusterNetwork = Field(
        "10.42.0.0/16", description="The cluster network's address range, a /16 to /24."
    )
    api_allowed_cidrs: list[Cidr] = Field(
        default_factory=lambda: ["0.0.0.0/0"],
        min_length=1,
        description="Networks allowed to reach the public API endpoint (EKS).",
    )
    cpu_nodes: CpuNodePool = Field(default_factory=CpuNodePool)
    gpu_nodes: list[GpuNodePool] = Field(default_factory=list, max_length=20)
    resource_group: (
        Annotated[str, _matching(_AZURE_NAME, "resource group", "prod-aks-rg")] | None
    ) = Field(None, description="AKS: resource group to create (default <name>-rg).")
    tags: dict[str, str] = Field(default_factory=dict, description="Tags on every resource.")
    state: StateBackend = Field(
        default_factory=StateBackend,
        description="Where Terraform keeps this cluster's state (default: S3, for eks).",
    )
    approval: Approval = Field(default_factory=Approval)
    register_cluster: bool = Field(
        True,
        description=(
            "Register the new cluster and detect its nodes (needs the API server reachable "
            "from the worker and `aws`/`kubelogin` on it for the kubeconfig's exec plugin)."
        ),
    )

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: dict[str, str]) -> dict[str, str]:
        if len(tags) > _MAX_TAGS:
            raise ValueError(f"at most {_MAX_TAGS} tags (one more is added by the project)")
        for key, value in tags.items():
            if not key or not _TAG_TEXT.fullmatch(key) or not _TAG_TEXT.fullmatch(value):
                raise ValueError(
                    f"tag {key}={value!r}: use letters, digits, spaces and _ . : / = + @ - "
                    "(at most 256 characters)"
                )
        return tags

    @model_validator(mode="after")
    def _fits_the_cloud(self) -> ProvisionClusterRequest:
        names = [pool.name for pool in self.gpu_nodes]
        if len(set(names)) != len(names):
            raise ValueError(f"gpu_nodes: pool names must be unique, got {names}")
        if self.cloud == Cloud.EKS and self.state.kind == "azurerm":
            raise ValueError("state.kind azurerm is for aks; an eks cluster uses s3 (or local)")
        if self.cloud == Cloud.AKS:
            if self.state.kind == "s3":
                raise ValueError(
                    "state.kind s3 is for eks; an aks cluster keeps its state in azurerm (set "
                    "state.kind, state.storage_account, state.container, state.resource_group) "
                    "or local"
                )
            if ipaddress.ip_network(self.network_cidr).overlaps(AKS_SERVICE_CIDR):
                raise ValueError(
                    f"network_cidr {self.network_cidr} overlaps {AKS_SERVICE_CIDR}, the AKS "
                    "cluster's service range: use e.g. 10.42.0.0/16"
                )
            slashed = [key for key in self.tags if "/" in key]
            if slashed:
                raise ValueError(f"tags: Azure tag names cannot contain '/': {slashed}")
            if self.cpu_nodes.min_count < 1:
                raise ValueError("cpu_nodes.min_count: an AKS system pool needs at least 1 node")
            for where, pool in [("cpu_nodes", self.cpu_nodes)] + [
                (f"gpu_nodes[{pool.name}]", pool) for pool in self.gpu_nodes
            ]:
                if len(pool.machine_types) > 1:
                    raise ValueError(
                        f"{where}.machine_types: an AKS node pool has exactly one VM size, "
                        f"got {pool.machine_types}"
                    )
        return self


class DestroyClusterRequest(_Form):
    name: Annotated[str, _matching(_CLUSTER_NAME, "cluster name", "prod-eks-1")] = Field(
        description="A cluster created by provision-cluster."
    )
    force: bool = Field(
        False,
        description=(
            "Destroy even while deployments are recorded as running on it (they go with it)."
        ),
    )
    approval: Approval = Field(default_factory=Approval)
