"""The flow parameter forms: validation that names the field, and the spec hash."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from budcluster.job_requests import (
    BenchmarkEndpointRequest,
    BenchmarkProfile,
    DeployModelRequest,
    ModelSourceRequest,
)


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
