"""Plan summaries of real aws-eks plans (captured from moto by
tests/fixtures/terraform/capture_plans.py) and the registration kubeconfig."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from budcluster.errors import ConfigurationError
from budcluster.provisioning import Cloud, summarize_plan
from budcluster.provisioning.kubeconfig import registration_kubeconfig

PLANS = Path(__file__).resolve().parents[1] / "fixtures" / "terraform" / "plans"


def _plan(name: str) -> dict[str, Any]:
    return json.loads((PLANS / f"{name}.json").read_text())  # type: ignore[no-any-return]


def test_a_create_plan_counts_what_terraform_prints() -> None:
    summary = summarize_plan(_plan("create"))
    # terraform plan printed "Plan: 17 to add, 0 to change, 0 to destroy." for this plan.
    assert summary.headline() == "Plan: 17 to add, 0 to change, 0 to destroy."
    assert summary.has_changes and summary.replaced == [] and summary.deleted == []
    addresses = [c.address for c in summary.changes]
    assert 'aws_eks_node_group.gpu["a10g"]' in addresses and "aws_eks_cluster.this" in addresses
    assert addresses == sorted(addresses)
    assert summary.terraform_version.startswith("1.")


def test_replacements_count_as_one_add_and_one_destroy_and_come_first() -> None:
    summary = summarize_plan(_plan("update_replace"))
    # A new VPC CIDR replaces the network and the node groups (9); the tags and the
    # cluster's subnets change in place (4); the policy attachments stay (4 no-op).
    assert (summary.add, summary.change, summary.destroy) == (9, 4, 9)
    assert "aws_vpc.this" in summary.replaced and "aws_eks_node_group.cpu" in summary.replaced
    assert ("aws_eks_cluster.this", "update") in [(c.address, c.action) for c in summary.changes]
    actions = [c.action for c in summary.changes]
    assert actions == ["replace"] * 9 + ["update"] * 4
    vpc = next(c for c in summary.changes if c.address == "aws_vpc.this")
    assert vpc.reason == "replace_because_cannot_update"
    assert vpc.as_row() == {
        "action": "replace",
        "address": "aws_vpc.this",
        "type": "aws_vpc",
        "reason": "replace_because_cannot_update",
    }


def test_a_destroy_plan_and_an_empty_plan() -> None:
    summary = summarize_plan(_plan("destroy"))
    assert summary.headline() == "Plan: 0 to add, 0 to change, 17 to destroy."
    assert len(summary.deleted) == 17
    empty = summarize_plan(
        {"resource_changes": [{"address": "a.b", "change": {"actions": ["no-op"]}}]}
    )
    assert not empty.has_changes and empty.changes == []


EKS_OUTPUT = """
apiVersion: v1
kind: Config
current-context: prod-eks
clusters:
- name: prod-eks
  cluster: {server: "https://ABC.gr7.eu-west-1.eks.amazonaws.com", certificate-authority-data: TFMwdExT}
contexts:
- name: prod-eks
  context: {cluster: prod-eks, user: prod-eks}
users:
- name: prod-eks
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: aws
      args: [eks, get-token, --cluster-name, prod-eks, --region, eu-west-1, --output, json]
      interactiveMode: Never
"""


def test_the_exec_plugin_gets_the_runs_credentials_and_nothing_else() -> None:
    env = {
        "AWS_ACCESS_KEY_ID": "AKIA1",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t",
        "AWS_REGION": "eu-west-1",
        "TF_IN_AUTOMATION": "1",
    }
    text, context = registration_kubeconfig(Cloud.EKS, {"kubeconfig": EKS_OUTPUT}, env)
    assert context == "prod-eks"
    exec_config = yaml.safe_load(text)["users"][0]["user"]["exec"]
    assert exec_config["command"] == "aws"
    assert exec_config["env"] == [
        {"name": "AWS_ACCESS_KEY_ID", "value": "AKIA1"},
        {"name": "AWS_SECRET_ACCESS_KEY", "value": "s3cr3t"},
        {"name": "AWS_REGION", "value": "eu-west-1"},
    ]


def test_aks_credentials_are_renamed_for_kubelogin() -> None:
    output = EKS_OUTPUT.replace("command: aws", "command: kubelogin")
    env = {"ARM_CLIENT_ID": "cid", "ARM_CLIENT_SECRET": "cs", "ARM_TENANT_ID": "tid"}
    text, _ = registration_kubeconfig(Cloud.AKS, {"kubeconfig": output}, env)
    exec_env = yaml.safe_load(text)["users"][0]["user"]["exec"]["env"]
    assert exec_env == [
        {"name": "AZURE_CLIENT_ID", "value": "cid"},
        {"name": "AZURE_CLIENT_SECRET", "value": "cs"},
        {"name": "AZURE_TENANT_ID", "value": "tid"},
    ]


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ({}, "produced no 'kubeconfig' output"),
        ({"kubeconfig": "just text"}, "is not a kubeconfig"),
        (
            {"kubeconfig": EKS_OUTPUT.replace("command: aws", "command: sh")},
            "not the expected 'aws'",
        ),
    ],
)
def test_an_unexpected_kubeconfig_output_is_refused(outputs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        registration_kubeconfig(Cloud.EKS, outputs, {})


def test_a_plan_that_changes_only_outputs_still_has_changes() -> None:
    assert summarize_plan(_plan("create")).outputs_changed == [
        "certificate_authority_data",
        "cluster_name",
        "endpoint",
        "kubeconfig",
        "node_group_names",
        "region",
    ]
    assert summarize_plan(_plan("update_replace")).outputs_changed == []
    # A module update that only adds an output: nothing to add, change or destroy, yet
    # applying is what puts the new output into the state.
    only_outputs = {"resource_changes": [], "output_changes": {"gateway": {"actions": ["create"]}}}
    summary = summarize_plan(only_outputs)
    assert summary.headline() == "Plan: 0 to add, 0 to change, 0 to destroy."
    assert summary.has_changes and summary.outputs_changed == ["gateway"]
