"""The flow forms refuse numbers no deployment means (non-finite, absurd, floats for
counts) and strings that are not what the field names, with the field in the message."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from budcluster.bench.specs import parse_profile, parse_token_spec
from budcluster.errors import ConfigurationError
from budcluster.job_requests import BenchmarkProfile, DeployModelRequest, PublishGatewayRequest

BASE: dict[str, Any] = {"name": "demo", "cluster": "lab", "model": {"uri": "/models/demo"}}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_model_len", 1e30),
        ("max_model_len", 4096.5),
        ("max_model_len", 10**12),
        ("ready_timeout_s", float("inf")),
        ("ready_timeout_s", float("nan")),
        ("ready_timeout_s", -1),
        ("concurrency", True),
        ("concurrency", 10**9),
        ("replicas", 5000),
        ("replicas", 2.5),
    ],
)
def test_deploy_form_refuses(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as refused:
        DeployModelRequest.model_validate(BASE | {field: value})
    assert refused.value.errors()[0]["loc"][0] == field
    message = str(refused.value)
    assert any(words in message for words in ("from 1 to", "finite number", "at most 1024"))


def test_deploy_form_keeps_what_users_write() -> None:
    form = DeployModelRequest.model_validate(
        BASE | {"max_model_len": 8192, "ready_timeout_s": 900, "concurrency": "4", "replicas": 3}
    )
    assert (form.max_model_len, form.ready_timeout_s, form.concurrency) == (8192, 900.0, 4)


@pytest.mark.parametrize(
    ("field", "value"),
    [("requests", 1e30), ("duration_s", float("inf")), ("warmup_requests", -1)],
)
def test_benchmark_profile_refuses(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as refused:
        BenchmarkProfile.model_validate({field: value})
    assert refused.value.errors()[0]["loc"][0] == field


@pytest.mark.parametrize(
    "profile",
    ["rate:inf", "rate:nan", "poisson:1e9", "gamma:5,inf", "concurrency:1e11", "sweep:100000"],
)
def test_profiles_must_be_finite_and_bounded(profile: str) -> None:
    with pytest.raises(ConfigurationError, match="--profile: cannot parse"):
        parse_profile(profile)
    with pytest.raises(ValidationError, match="profile"):
        BenchmarkProfile(profile=profile)


@pytest.mark.parametrize(
    "spec", ["normal:nan,1", "normal:5,inf", "normal:5,1,1,inf", "99999999999"]
)
def test_token_specs_must_be_finite_and_bounded(spec: str) -> None:
    with pytest.raises(ConfigurationError, match="--input-tokens: "):
        parse_token_spec(spec)


def test_gateway_image_is_an_image_reference() -> None:
    form = PublishGatewayRequest(cluster="lab", image="ghcr.io/berriai/litellm:main-v1.0")
    assert form.image == "ghcr.io/berriai/litellm:main-v1.0"
    with pytest.raises(ValidationError, match="image"):
        PublishGatewayRequest(cluster="lab", image="evil{{x}}")
