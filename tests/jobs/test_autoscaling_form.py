"""deploy-model's ``autoscaling``: validation that names the field and the fix, what it
becomes (AutoscalingSpec), the spec hash, and the refusal on a hosts cluster before any
work is done."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from budcluster.autoscaling import AutoscalingSpec, ScalingMetric, prometheus_query, quantity
from budcluster.catalogue.schema import RuntimeOverrides
from budcluster.errors import ConfigurationError
from budcluster.job_requests import DeployModelRequest
from budcluster.store.models import ClusterKind
from budcluster.targets.base import RolloutSpec
from budcluster.targets.hosts import HostsConfigError, HostsTarget
from budcluster.targets.ref import ClusterRef
from tests.ansible.helpers import local_inventory, plan


def _deploy(**overrides: object) -> DeployModelRequest:
    values: dict[str, object] = {"name": "qwen", "cluster": "lab", "model": {"uri": "/m/qwen"}}
    values.update(overrides)
    return DeployModelRequest.model_validate(values)


def _error(**overrides: object) -> dict[str, Any]:
    with pytest.raises(ValidationError) as caught:
        _deploy(**overrides)
    errors = caught.value.errors()
    assert len(errors) == 1, errors
    return dict(errors[0])


def test_min_above_max_names_both_fields_and_the_fix() -> None:
    error = _error(autoscaling={"min_replicas": 3, "max_replicas": 2})
    assert error["loc"] == ("autoscaling",)
    assert error["msg"] == (
        "Value error, max_replicas 2 is below min_replicas 3: set max_replicas to 3 or more, "
        "or lower min_replicas"
    )


def test_min_below_one_is_refused() -> None:
    error = _error(autoscaling={"min_replicas": 0, "max_replicas": 2})
    assert error["loc"] == ("autoscaling", "min_replicas")
    assert "set min_replicas to 1 or more" in error["msg"]


@pytest.mark.parametrize("maximum", [0, 10_000])
def test_max_out_of_range_is_refused(maximum: int) -> None:
    error = _error(autoscaling={"max_replicas": maximum})
    assert error["loc"] == ("autoscaling", "max_replicas")
    assert "set it from 1 to" in error["msg"]


def test_a_fixed_replica_count_and_autoscaling_contradict() -> None:
    error = _error(replicas=3, autoscaling={"max_replicas": 4})
    assert "leave replicas at 1 and set autoscaling.min_replicas instead" in error["msg"]
    with pytest.raises(ValidationError, match=r"autoscaling\.min_replicas"):
        RuntimeOverrides.model_validate({"replicas": "auto", "autoscaling": {}})


@pytest.mark.parametrize("url", ["prometheus:9090", "http://x/ y", "file:///etc/passwd"])
def test_prometheus_url_must_be_http(url: str) -> None:
    error = _error(autoscaling={"prometheus_url": url})
    assert error["loc"] == ("autoscaling", "prometheus_url")


def test_unknown_metric_lists_the_choices() -> None:
    error = _error(autoscaling={"metric": "gpu_util"})
    assert error["loc"] == ("autoscaling", "metric")
    assert "'requests_running' or 'requests_waiting'" in error["msg"]


def test_the_target_defaults_to_the_planned_concurrency_or_one_waiting() -> None:
    running = _deploy(concurrency=6, autoscaling={"max_replicas": 3}).autoscaling_spec()
    assert running == AutoscalingSpec(1, 3, ScalingMetric.REQUESTS_RUNNING, 6.0, 0, 300)
    waiting = _deploy(autoscaling={"metric": "requests_waiting"}).autoscaling_spec()
    assert waiting is not None and waiting.target_per_replica == 1.0
    assert _deploy().autoscaling_spec() is None


def test_engine_metric_names() -> None:
    spec = AutoscalingSpec(1, 2, ScalingMetric.REQUESTS_WAITING, 1.0)
    assert spec.metric_name("vllm") == "vllm:num_requests_waiting"
    assert spec.metric_name("llama.cpp") == "llamacpp:requests_deferred"
    with pytest.raises(ValueError, match=r"known engines: llama\.cpp, vllm"):
        spec.metric_name("tgi")


def test_quantities_and_the_prometheus_query() -> None:
    assert [quantity(v) for v in (4, 4.0, 2.5, 0.1, 1.0005)] == ["4", "4", "2500m", "100m", "1001m"]
    assert prometheus_query("vllm:num_requests_running", "bud-x", "qwen") == (
        'sum(vllm:num_requests_running{namespace="bud-x",pod=~"qwen-[a-z0-9]+-[a-z0-9]+"})'
    )


def test_spec_hash_is_unchanged_without_autoscaling_and_changes_with_it() -> None:
    base = _deploy().spec_hash()
    # What the form hashed to before it had the field: stored deployments keep their hash.
    assert base == "5d947acdcee0b6ea"
    assert _deploy(autoscaling=None).spec_hash() == base
    scaled = _deploy(autoscaling={"max_replicas": 3}).spec_hash()
    assert scaled != base
    assert _deploy(autoscaling={"max_replicas": 4}).spec_hash() != scaled


def test_the_catalogue_carries_autoscaling_into_the_deploy_request() -> None:
    overrides = RuntimeOverrides.model_validate({"autoscaling": {"max_replicas": 3}})
    assert overrides.autoscaling is not None and overrides.autoscaling.max_replicas == 3


def test_hosts_refuse_autoscaling_naming_the_field_and_the_fix() -> None:
    request = _deploy(autoscaling={"max_replicas": 2})
    request.check_cluster_kind("kubernetes")
    request.check_cluster_kind("openshift")
    _deploy().check_cluster_kind("hosts")
    with pytest.raises(ConfigurationError) as caught:
        request.check_cluster_kind(ClusterKind.HOSTS)
    assert str(caught.value) == (
        "autoscaling: a hosts cluster cannot autoscale (nothing there adds or removes runtimes "
        "on load); remove autoscaling from the request, or deploy to a kubernetes cluster"
    )


def test_deploy_model_on_hosts_fails_before_anything_is_staged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The flow's body with its tasks replaced: the refusal comes right after the cluster is
    looked up; nothing is verified, detected, planned or staged."""
    from flows import deploy_model as flow_module

    called: list[str] = []

    def forbidden(name: str) -> Any:
        def step(*_args: object, **_kwargs: object) -> None:
            called.append(name)
            raise AssertionError(f"{name} ran before the refusal")

        return step

    monkeypatch.setattr(
        flow_module,
        "registered_cluster",
        lambda name: ClusterRef(name=name, kind=ClusterKind.HOSTS, credentials_block="b"),
    )
    for step in (
        "current_endpoint",
        "verify_registered_cluster",
        "detect_nodes",
        "model_source",
        "plan_and_claim",
        "stage_model",
        "roll_out_undoable",
    ):
        monkeypatch.setattr(flow_module, step, forbidden(step))
    with pytest.raises(ConfigurationError, match=r"^autoscaling: a hosts cluster cannot"):
        flow_module._deploy(_deploy(autoscaling={"max_replicas": 2}))
    assert called == []


def test_the_hosts_target_refuses_an_autoscaled_rollout(tmp_path: Path) -> None:
    """Defence in depth: a rollout spec with autoscaling never reaches a playbook."""
    target = HostsTarget(local_inventory(), state_dir=str(tmp_path / "state"))
    spec = RolloutSpec(
        "qwen",
        plan(host_command=[sys.executable, "-c", "raise SystemExit(1)"]),
        str(tmp_path),
        autoscaling=AutoscalingSpec(1, 2, ScalingMetric.REQUESTS_RUNNING, 4.0),
    )
    with pytest.raises(HostsConfigError, match=r"^autoscaling: a hosts cluster cannot"):
        target.roll_out(spec)
    assert not (tmp_path / "state").exists()
