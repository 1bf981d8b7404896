"""The flow parameter forms: validation that names the field, and the spec hash."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from budcluster.errors import ConfigurationError
from budcluster.hardware.inventory import NodeInventory
from budcluster.job_requests import (
    BenchmarkEndpointRequest,
    BenchmarkProfile,
    DeployModelRequest,
    ModelSourceRequest,
)
from budcluster.planning import NoFeasiblePlan, RuntimePlan, plan
from tests.planning.test_known_cases import facts, gpu_node


def _deploy(**overrides: object) -> DeployModelRequest:
    values: dict[str, object] = {"name": "qwen-cpu", "cluster": "lab", "model": {"uri": "/m/qwen"}}
    values.update(overrides)
    return DeployModelRequest.model_validate(values)


@pytest.mark.parametrize("name", ["Qwen", "qwen_cpu", "-qwen", "q" * 64, ""])
def test_names_must_be_dns_labels(name: str) -> None:
    with pytest.raises(ValidationError, match="name") as info:
        _deploy(name=name)
    assert "lowercase letters, digits or '-'" in str(info.value)


def test_bad_benchmark_profile_names_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        _deploy(benchmark={"profile": "bogus:1"})
    error = info.value.errors()[0]
    assert error["loc"] == ("benchmark", "profile")
    assert "concurrency:N" in error["msg"]


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="replica_count"):
        _deploy(replica_count=2)


def test_spec_hash_follows_what_runs_and_ignores_the_rest() -> None:
    base = _deploy().spec_hash()
    assert (
        _deploy(benchmark=BenchmarkProfile(), ready_timeout_s=5, if_busy="fail").spec_hash() == base
    )
    assert _deploy(model={"uri": "/m/qwen", "registry_block": "s3"}).spec_hash() == base
    assert _deploy(max_model_len=1024).spec_hash() != base
    assert _deploy(engine_args=["--seed", "1"]).spec_hash() != base
    assert _deploy(model={"uri": "/m/other"}).spec_hash() != base
    # A changed replica count changes what runs: redeploy.
    assert _deploy(replicas=1).spec_hash() == base
    assert len({base, _deploy(replicas=2).spec_hash(), _deploy(replicas="auto").spec_hash()}) == 3


def test_model_name_comes_from_the_uri() -> None:
    assert ModelSourceRequest(uri="s3://bucket/models/qwen/").model_name == "qwen"
    assert ModelSourceRequest(uri="hf://Qwen/Qwen2.5-0.5B@abc123").model_name == "Qwen2.5-0.5B"
    assert ModelSourceRequest(uri="/data/models/demo-tiny").model_name == "demo-tiny"


def test_benchmark_request_needs_a_target() -> None:
    with pytest.raises(ValidationError, match="give cluster and deployment, or url and model"):
        BenchmarkEndpointRequest()
    with pytest.raises(ValidationError, match="model is required with url"):
        BenchmarkEndpointRequest(url="http://127.0.0.1:8000")
    assert BenchmarkEndpointRequest(url="http://h:1", model="m").profile.profile == "concurrency:4"


def test_forms_render_as_json_schema_for_the_ui() -> None:
    schema = DeployModelRequest.model_json_schema()
    assert schema["properties"]["device"]["$ref"].endswith("DeviceChoice")
    assert "description" in schema["properties"]["cluster"]
    replicas = schema["properties"]["replicas"]
    assert replicas["default"] == 1 and "auto: as many replicas" in replicas["description"]
    assert replicas["anyOf"] == [
        {"type": "integer", "minimum": 1, "maximum": 1024},
        {"type": "string", "const": "auto"},
    ]


# Llama 3.1 70B with one 8k sequence is TP 2 on H100s (test_known_cases): 2 GPUs a replica.
_LLAMA_70B_ONE_SEQUENCE = {"max_model_len": 8192, "concurrency": 1, "device": "cuda"}


def _h100s(count: int = 8) -> NodeInventory:
    return gpu_node(count, "NVIDIA H100 80GB HBM3", 81559)


def _plan_70b(**overrides: object) -> RuntimePlan:
    request = _deploy(name="llama-70b", **{**_LLAMA_70B_ONE_SEQUENCE, **overrides})
    return plan(facts("Llama-3.1-70B-Instruct"), [_h100s()], request.plan_request())


def test_replicas_default_to_one_so_a_deploy_takes_only_its_own_devices() -> None:
    """TP 2 on 8 free H100s: one replica on GPUs 0-1 by default; auto fills the node
    (8 // 2 = 4 replicas), as the planner's own default does."""
    assert _deploy().replicas == 1 and _deploy().plan_request().replicas == 1
    one = _plan_70b()
    assert (one.tensor_parallel_size, one.replicas) == (2, 1)
    assert [p.device_indices for p in one.placements] == [[0, 1]]
    assert one.decisions[2] == "replicas 1: requested"
    filled = _plan_70b(replicas="auto")
    assert _deploy(replicas="auto").plan_request().replicas == "auto"
    assert filled.replicas == 4
    assert [p.device_indices for p in filled.placements] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert _plan_70b(replicas=3).replicas == 3
    assert _deploy(replicas="2").replicas == 2  # a CLI --param may send digits as a string


@pytest.mark.parametrize("value", [0, -1, "0", "two", "", True, 1.5, None])
def test_replicas_must_be_a_positive_integer_or_auto(value: object) -> None:
    with pytest.raises(ValidationError) as info:
        _deploy(replicas=value)
    (error,) = info.value.errors()
    assert error["loc"] == ("replicas",)
    assert "give a positive integer (1, 2, ...) or 'auto'" in error["msg"]
    assert f"replicas {value!r}" in error["msg"]


def test_more_replicas_than_free_devices_names_the_field_to_change() -> None:
    """5 replicas of TP 2 need 10 GPUs; the node has 8, which hold 4."""
    with pytest.raises(NoFeasiblePlan) as caught:
        _plan_70b(replicas=5)
    assert caught.value.reason == (
        "5 replicas of TP 2 need 10 free devices on one node; gpu-node has 8 free"
    )
    assert caught.value.fixes[0].startswith(
        "set replicas (deploy-model's replicas, runtime.replicas in deployments.yaml, "
        "--replicas of `budcluster plan`) to at most 4, or to 'auto'"
    )
    assert caught.value.fixes[1] == (
        "free nvidia.com/gpu on gpu-node, or add a node with 10 free nvidia.com/gpu"
    )


def test_a_hosts_cluster_refuses_a_plan_of_several_replicas() -> None:
    """Hosts run one runtime per deployment, on the plan's first placement: a plan of
    several replicas is refused before anything is staged; Kubernetes runs them all."""
    two = _deploy(name="llama-70b", replicas=2, **_LLAMA_70B_ONE_SEQUENCE)
    two_replicas = _plan_70b(replicas=2)
    two.check_plan(two_replicas, "kubernetes")
    two.check_plan(two_replicas, "openshift")
    with pytest.raises(ConfigurationError) as caught:
        two.check_plan(two_replicas, "hosts")
    assert str(caught.value) == (
        "replicas: a hosts cluster runs one runtime per deployment, but the plan has 2 "
        "(replicas=2, TP 2 on gpu-node); set replicas to 1, or deploy each copy as a deployment "
        "of its own with its own name and port"
    )
    auto = _deploy(name="llama-70b", replicas="auto", **_LLAMA_70B_ONE_SEQUENCE)
    with pytest.raises(ConfigurationError, match=r"the plan has 4 \(replicas='auto'"):
        auto.check_plan(_plan_70b(replicas="auto"), "hosts")
    _deploy(name="llama-70b", **_LLAMA_70B_ONE_SEQUENCE).check_plan(_plan_70b(), "hosts")


def test_a_cpu_plan_runs_one_replica_so_asking_for_more_is_refused() -> None:
    node = NodeInventory.model_validate(
        {
            "cpu": {"architecture": "x86_64", "isa_flags": ["avx2", "avx512f"],
                    "numa_nodes": [{"id": 0, "cpus": [0, 1, 2, 3], "physical_cpus": [0, 1, 2, 3]}]},
            "memory": {"total_mib": 64 * 1024},
        }
    )  # fmt: skip
    for replicas in (2, "auto", 1):
        request = _deploy(replicas=replicas, max_model_len=2048)
        cpu_plan = plan(facts("Qwen2.5-0.5B-Instruct"), [node], request.plan_request())
        assert (cpu_plan.device_kind, cpu_plan.replicas) == ("cpu", 1)
        if replicas == 2:
            with pytest.raises(ConfigurationError) as caught:
                request.check_plan(cpu_plan, "kubernetes")
            assert str(caught.value) == (
                "replicas: 2 asked, but the vllm plan on cpu runs 1 (CPU plans run one replica "
                "on one node); set replicas to 1, or choose device cuda or hpu"
            )
        else:
            request.check_plan(cpu_plan, "kubernetes")
            request.check_plan(cpu_plan, "hosts")
