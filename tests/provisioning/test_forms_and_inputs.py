"""The provisioning forms refuse bad input naming the field; module inputs are exact."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from budcluster.errors import ConfigurationError
from budcluster.provisioning import ProvisionClusterRequest, module_inputs


def _request(**overrides: Any) -> ProvisionClusterRequest:
    values: dict[str, Any] = {
        "name": "prod-eks",
        "credentials_block": "prod-aws",
        "region": "eu-west-1",
        "state": {"kind": "s3", "bucket": "acme-tfstate"},
    }
    values.update(overrides)
    return ProvisionClusterRequest.model_validate(values)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": "Prod_EKS"}, "cluster name 'Prod_EKS' is not valid"),
        ({"region": "eu west 1"}, "region 'eu west 1' is not valid"),
        ({"network_cidr": "10.0.0.1/16"}, "is not a network in CIDR form"),
        ({"network_cidr": "10.0.0.0/8"}, "must be a /16 to /24"),
        ({"network_cidr": "fd00::/56"}, "the modules take IPv4 networks"),
        ({"api_allowed_cidrs": ["2001:db8::/32"]}, "the modules take IPv4 networks"),
        ({"tags": {f"t{i}": "x" for i in range(41)}}, "at most 40 tags"),
        ({"api_allowed_cidrs": ["everyone"]}, "is not a network in CIDR form"),
        ({"state": {"kind": "s3", "bucket": "a/b"}}, "S3 bucket 'a/b' is not valid"),
        (
            {"state": {"kind": "azurerm"}},
            "state.storage_account, state.container, state.resource_group",
        ),
        (
            {"cpu_nodes": {"min_count": 3, "max_count": 2}},
            "min_count <= desired_count <= max_count",
        ),
        (
            {"gpu_nodes": [{"name": "h100", "machine_types": ["p5.48xlarge;rm -rf /"]}]},
            "machine type 'p5.48xlarge;rm -rf /' is not valid",
        ),
        (
            {"gpu_nodes": [{"name": "GPU-pool", "machine_types": ["g5.xlarge"]}]},
            "GPU pool name 'GPU-pool' is not valid",
        ),
        (
            {
                "gpu_nodes": [
                    {"name": "a10", "machine_types": ["g5.xlarge"]},
                    {"name": "a10", "machine_types": ["g5.2xlarge"]},
                ]
            },
            "pool names must be unique",
        ),
        (
            {
                "gpu_nodes": [
                    {"name": "a10", "machine_types": ["g5.xlarge"], "labels": {"a": "${x}"}}
                ]
            },
            "is not a valid Kubernetes label",
        ),
        ({"tags": {"team": "ml\n"}}, "tag team='ml\\\\n'"),
        ({"kubernetes_version": "latest"}, "Kubernetes version 'latest' is not valid"),
        ({"cloud": "aks"}, "state.kind s3 is for eks"),
        (
            {
                "state": {
                    "kind": "azurerm",
                    "storage_account": "acct1",
                    "container": "tfstate",
                    "resource_group": "rg",
                }
            },
            "azurerm is for aks",
        ),
        ({"surprise": 1}, "Extra inputs are not permitted"),
    ],
)
def test_bad_input_is_refused_naming_the_field(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _request(**overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"network_cidr": "10.0.0.0/20"}, "overlaps 10.0.0.0/16, the AKS cluster's service range"),
        ({"tags": {"team/ml": "x"}}, "Azure tag names cannot contain '/'"),
        ({"cpu_nodes": {"min_count": 0}}, "an AKS system pool needs at least 1 node"),
    ],
)
def test_aks_limits_are_checked_in_the_form(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _request(cloud="aks", state={"kind": "local"}, **overrides)


def test_aks_pools_take_exactly_one_vm_size() -> None:
    with pytest.raises(ValidationError, match=r"cpu_nodes.machine_types: an AKS node pool"):
        _request(
            cloud="aks",
            state={"kind": "local"},
            cpu_nodes={"machine_types": ["Standard_D4s_v5", "Standard_D8s_v5"]},
        )


def test_eks_inputs_are_the_module_variables_and_an_s3_backend_with_its_lockfile() -> None:
    request = _request(
        kubernetes_version="1.31",
        cpu_nodes={
            "machine_types": ["m6i.large"],
            "min_count": 1,
            "max_count": 4,
            "desired_count": 2,
        },
        gpu_nodes=[
            {
                "name": "a10g",
                "machine_types": ["g5.2xlarge"],
                "max_count": 3,
                "labels": {"tier": "x"},
            }
        ],
        tags={"team": "ml"},
        state={"kind": "s3", "bucket": "acme-tfstate", "key_prefix": "bud/", "region": "us-east-1"},
    )
    inputs = module_inputs(request)
    assert inputs.module == "aws-eks" and not inputs.local_state
    assert inputs.variables == {
        "cluster_name": "prod-eks",
        "region": "eu-west-1",
        "kubernetes_version": "1.31",
        "vpc_cidr": "10.42.0.0/16",
        "endpoint_public_access_cidrs": ["0.0.0.0/0"],
        "cpu_node_group": {
            "instance_types": ["m6i.large"],
            "min_size": 1,
            "max_size": 4,
            "desired_size": 2,
        },
        "gpu_node_groups": [
            {
                "name": "a10g",
                "instance_types": ["g5.2xlarge"],
                "labels": {"tier": "x"},
                "min_size": 0,
                "max_size": 3,
                "desired_size": 0,
            }
        ],
        "tags": {"team": "ml"},
    }
    assert inputs.backend_config == {
        "bucket": "acme-tfstate",
        "key": "bud/prod-eks.tfstate",
        "region": "us-east-1",
        "use_lockfile": "true",
        "encrypt": "true",
    }


def test_aks_inputs_take_the_account_ids_from_the_credentials_block() -> None:
    request = _request(
        name="prod-aks",
        cloud="aks",
        region="westeurope",
        cpu_nodes={"machine_types": ["Standard_D4s_v5"]},
        gpu_nodes=[{"name": "a100", "machine_types": ["Standard_NC24ads_A100_v4"]}],
        state={
            "kind": "azurerm",
            "storage_account": "acmetfstate",
            "container": "tfstate",
            "resource_group": "tfstate-rg",
        },
    )
    with pytest.raises(ConfigurationError, match="lacks subscription_id, tenant_id"):
        module_inputs(request, {})
    identity = {"subscription_id": "s-1", "tenant_id": "t-1"}
    inputs = module_inputs(request, identity)
    assert inputs.module == "azure-aks"
    assert inputs.variables["subscription_id"] == "s-1"
    assert inputs.variables["location"] == "westeurope"
    assert inputs.variables["subnet_cidr"] == "10.42.0.0/20"
    assert inputs.variables["cpu_node_pool"] == {
        "vm_size": "Standard_D4s_v5",
        "min_count": 1,
        "max_count": 3,
    }
    assert inputs.variables["gpu_node_pools"][0]["vm_size"] == "Standard_NC24ads_A100_v4"
    assert inputs.backend_config == {
        "storage_account_name": "acmetfstate",
        "container_name": "tfstate",
        "resource_group_name": "tfstate-rg",
        "key": "bud-serve-cluster/prod-aks.tfstate",
        "use_azuread_auth": "true",
    }


def test_the_smallest_form_is_a_name_a_region_and_a_credentials_block() -> None:
    request = ProvisionClusterRequest.model_validate(
        {"name": "c1", "region": "eu-west-1", "credentials_block": "aws"}
    )
    assert request.state.kind == "s3" and request.state.bucket is None  # named at run time
    assert module_inputs(request).variables["cpu_node_group"]["instance_types"] == ["m6i.xlarge"]


def test_a_local_state_has_no_backend_configuration() -> None:
    inputs = module_inputs(_request(state={"kind": "local"}))
    assert inputs.local_state and inputs.backend_config == {}
