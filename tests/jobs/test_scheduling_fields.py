"""deploy-model's, transfer-model's and the catalogue's tolerations and node_selector:
validated with the field named, passed to the planner and the pods, refused on hosts, and
left out of the spec hash when empty."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from budcluster.catalogue import parse_catalogue
from budcluster.errors import ConfigurationError
from budcluster.job_requests import DeployModelRequest, TransferModelRequest
from budcluster.targets.base import ModelSourceSpec, PodScheduling, RolloutSpec
from budcluster.targets.hosts import HostsConfigError, HostsTarget
from tests.ansible.helpers import local_inventory, plan

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def _deploy(**overrides: Any) -> DeployModelRequest:
    values: dict[str, Any] = {"name": "llama", "cluster": "lab", "model": {"uri": "s3://m/l"}}
    values.update(overrides)
    return DeployModelRequest.model_validate(values)


def test_they_reach_the_planner_and_the_pods() -> None:
    request = _deploy(
        tolerations=[
            GPU_TOLERATION,
            {"key": "maint", "effect": "NoExecute", "tolerationSeconds": 30, "value": "yes"},
        ],
        node_selector={"cloud.google.com/gke-nodepool": "gpu-a"},
    )
    planned = request.plan_request()
    assert [t.key for t in planned.tolerations] == ["nvidia.com/gpu", "maint"]
    assert planned.node_selector == {"cloud.google.com/gke-nodepool": "gpu-a"}
    scheduling = request.pod_scheduling()
    assert scheduling.tolerations == (
        GPU_TOLERATION,
        {
            "key": "maint",
            "operator": "Equal",
            "value": "yes",
            "effect": "NoExecute",
            "tolerationSeconds": 30,
        },
    )
    assert scheduling.node_selector == {"cloud.google.com/gke-nodepool": "gpu-a"}


@pytest.mark.parametrize(
    ("overrides", "where", "says"),
    [
        ({"tolerations": [{"operator": "Equal"}]}, "tolerations.0", "operator must be Exists"),
        (
            {"tolerations": [{"key": "a", "effect": "NoSchedule", "tolerationSeconds": 1}]},
            "tolerations.0",
            "tolerationSeconds is only allowed with effect NoExecute",
        ),
        (
            {"tolerations": [{"key": "a", "operator": "Exists", "value": "b"}]},
            "tolerations.0",
            "must be empty with operator Exists",
        ),
        (
            {"tolerations": [{"key": "a", "effect": "NoSchedul"}]},
            "tolerations.0.effect",
            "'NoSchedule', 'PreferNoSchedule' or 'NoExecute'",
        ),
        ({"tolerations": [GPU_TOLERATION] * 33}, "tolerations", "at most 32 items"),
        ({"node_selector": {"pool name": "a"}}, "node_selector", "label key 'pool name'"),
        ({"node_selector": {"pool": "a b"}}, "node_selector", "label 'pool': value 'a b'"),
        ({"node_selector": {"pool": 3}}, "node_selector.pool", "valid string"),
    ],
)
def test_bad_input_names_the_field(overrides: dict[str, Any], where: str, says: str) -> None:
    with pytest.raises(ValidationError) as refused:
        _deploy(**overrides)
    text = str(refused.value)
    assert f"\n{where}\n" in text, text
    assert says in text


def test_a_hosts_cluster_refuses_them_naming_the_fields() -> None:
    with pytest.raises(ConfigurationError) as refused:
        _deploy(tolerations=[GPU_TOLERATION], node_selector={"pool": "a"}).check_cluster_kind(
            "hosts"
        )
    assert str(refused.value).startswith(
        "tolerations and node_selector: 'lab' is a hosts cluster, where no scheduler places pods"
    )
    _deploy(tolerations=[GPU_TOLERATION]).check_cluster_kind("kubernetes")
    _deploy().check_cluster_kind("hosts")
    with pytest.raises(ConfigurationError, match=r"^node_selector: 'lab' is a hosts cluster"):
        TransferModelRequest(
            cluster="lab",
            model={"uri": "s3://m/l"},
            node_selector={"pool": "a"},  # type: ignore[arg-type]
        ).check_cluster_kind("hosts")


def test_the_spec_hash_changes_with_them_and_is_unchanged_without() -> None:
    base = _deploy().spec_hash()
    # The hash main's code (2efd082, before these fields) gives this request: deployments
    # recorded before them are not redeployed.
    assert base == "4c78c4b53c59b9e2"
    tolerated = _deploy(tolerations=[GPU_TOLERATION]).spec_hash()
    selected = _deploy(node_selector={"pool": "a"}).spec_hash()
    assert len({base, tolerated, selected}) == 3


def test_the_catalogue_takes_them_under_hardware_and_names_the_entry() -> None:
    entry = {
        "name": "llama",
        "cluster": "lab",
        "model": {"uri": "s3://m/l"},
        "hardware": {
            "device": "cuda",
            "tolerations": [GPU_TOLERATION],
            "node_selector": {"pool": "a"},
        },
    }
    parsed = parse_catalogue({"deployments": [entry]}).deployments[0]
    request = parsed.deploy_request()
    assert request.pod_scheduling().tolerations == (GPU_TOLERATION,)
    assert request.node_selector == {"pool": "a"}
    assert parsed.spec_hash() == request.spec_hash()
    bad = {**entry, "hardware": {"tolerations": [{"key": "a", "operator": "Maybe"}]}}
    with pytest.raises(ConfigurationError) as refused:
        parse_catalogue({"deployments": [bad]}, "deployments.yaml")
    assert "deployments[0] ('llama'): field hardware.tolerations.0.operator" in str(refused.value)


def test_the_hosts_target_refuses_them_before_any_playbook(tmp_path: Path) -> None:
    """Defence in depth: a direct caller gets an error, not silently ignored tolerations."""
    target = HostsTarget(local_inventory(), state_dir=str(tmp_path / "state"))
    scheduling = PodScheduling(tolerations=(GPU_TOLERATION,))
    spec = RolloutSpec(
        "qwen",
        plan(host_command=[sys.executable, "-c", "raise SystemExit(1)"]),
        str(tmp_path),
        scheduling=scheduling,
    )
    with pytest.raises(HostsConfigError, match=r"^tolerations and node_selector: a hosts"):
        target.roll_out(spec)
    with pytest.raises(HostsConfigError, match=r"^tolerations and node_selector: a hosts"):
        target.stage_model(
            ModelSourceSpec(str(tmp_path)),
            "qwen",
            ["localhost"],
            scheduling=PodScheduling(node_selector={"pool": "a"}),
        )
    assert not (tmp_path / "state").exists()
