"""What each Terraform module is given: its variables and its backend configuration."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from budcluster.errors import ConfigurationError
from budcluster.provisioning.forms import Cloud, CpuNodePool, ProvisionClusterRequest

MODULES = {Cloud.EKS: "aws-eks", Cloud.AKS: "azure-aks"}
"""The module under ``terraform/`` for each cloud. Only these run: a user never names a path."""

DEFAULT_CPU_MACHINE_TYPES = {Cloud.EKS: ["m6i.xlarge"], Cloud.AKS: ["Standard_D4s_v5"]}


@dataclass(frozen=True)
class ModuleInputs:
    module: str
    variables: dict[str, Any]
    backend_config: dict[str, str]
    """``-backend-config`` pairs; empty for a local state file."""
    local_state: bool


def module_inputs(
    request: ProvisionClusterRequest, cloud_identity: Mapping[str, str] | None = None
) -> ModuleInputs:
    """Variables and backend configuration for ``request``.

    ``cloud_identity`` carries the non-secret account identifiers an AKS module needs
    (``subscription_id``, ``tenant_id``), read from the credentials block.
    """
    if request.cloud == Cloud.EKS:
        variables = _eks_variables(request)
    else:
        variables = _aks_variables(request, cloud_identity or {})
    return ModuleInputs(
        module=MODULES[request.cloud],
        variables=variables,
        backend_config=backend_config(request),
        local_state=request.state.kind == "local",
    )


def state_key(request: ProvisionClusterRequest) -> str:
    return f"{request.state.key_prefix.rstrip('/')}/{request.name}.tfstate"


def backend_config(request: ProvisionClusterRequest) -> dict[str, str]:
    state = request.state
    if state.kind == "s3":
        config = {
            "bucket": state.bucket or "",
            "key": state_key(request),
            "region": state.region or request.region,
            # Terraform's own lock: a conditional write of <key>.tflock next to the state
            # (no DynamoDB table to create and pay for).
            "use_lockfile": "true",
            "encrypt": "true",
        }
        if state.use_path_style:
            config["use_path_style"] = "true"
        return config
    if state.kind == "azurerm":
        return {
            "storage_account_name": state.storage_account or "",
            "container_name": state.container or "",
            "resource_group_name": state.resource_group or "",
            "key": state_key(request),
            # Entra ID auth for the state blob, with the same service principal (ARM_*).
            "use_azuread_auth": "true",
        }
    return {}


def _cpu_machine_types(request: ProvisionClusterRequest) -> list[str]:
    return list(request.cpu_nodes.machine_types or DEFAULT_CPU_MACHINE_TYPES[request.cloud])


def _scaling(pool: CpuNodePool) -> dict[str, Any]:
    desired = pool.min_count if pool.desired_count is None else pool.desired_count
    return {"min_size": pool.min_count, "max_size": pool.max_count, "desired_size": desired}


def _eks_variables(request: ProvisionClusterRequest) -> dict[str, Any]:
    variables: dict[str, Any] = {
        "cluster_name": request.name,
        "region": request.region,
        "vpc_cidr": request.network_cidr,
        "endpoint_public_access_cidrs": list(request.api_allowed_cidrs),
        "cpu_node_group": {
            "instance_types": _cpu_machine_types(request),
            **_scaling(request.cpu_nodes),
        },
        "gpu_node_groups": [
            {
                "name": pool.name,
                "instance_types": list(pool.machine_types),
                "labels": dict(pool.labels),
                **_scaling(pool),
            }
            for pool in request.gpu_nodes
        ],
        "tags": dict(request.tags),
    }
    if request.kubernetes_version:
        variables["kubernetes_version"] = request.kubernetes_version
    return variables


def _aks_variables(request: ProvisionClusterRequest, identity: Mapping[str, str]) -> dict[str, Any]:
    missing = [key for key in ("subscription_id", "tenant_id") if not identity.get(key)]
    if missing:
        raise ConfigurationError(
            f"the Azure credentials block lacks {', '.join(missing)}; add it again with "
            "`budcluster credentials add-azure`"
        )
    return {
        "cluster_name": request.name,
        "location": request.region,
        "subscription_id": identity["subscription_id"],
        "tenant_id": identity["tenant_id"],
        "resource_group_name": request.resource_group or "",
        "kubernetes_version": request.kubernetes_version,
        "vnet_cidr": request.network_cidr,
        "subnet_cidr": _first_subnet(request.network_cidr),
        "cpu_node_pool": {
            "vm_size": _cpu_machine_types(request)[0],
            "min_count": request.cpu_nodes.min_count,
            "max_count": request.cpu_nodes.max_count,
        },
        "gpu_node_pools": [
            {
                "name": pool.name,
                "vm_size": pool.machine_types[0],
                "min_count": pool.min_count,
                "max_count": pool.max_count,
                "labels": dict(pool.labels),
            }
            for pool in request.gpu_nodes
        ],
        "tags": dict(request.tags),
    }


def _first_subnet(network: str) -> str:
    """The node subnet: a /20 at the start of the network (or the network itself if smaller)."""
    net = ipaddress.ip_network(network)
    if net.prefixlen >= 20:
        return str(net)
    return str(next(net.subnets(new_prefix=20)))
