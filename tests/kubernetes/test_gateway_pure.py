"""The gateway's routes and chart values from the store's ready deployments (pure code)."""

from __future__ import annotations

import pytest

from budcluster.gateway import (
    GatewayError,
    GatewayHasNoRoutes,
    ReadyDeployment,
    config_hash,
    gateway_routes,
    gateway_values,
    in_cluster_url,
    listed_models,
    missing_routes,
)

LLAMA = ReadyDeployment("llama-8b", "llama-8b", "http://rt-llama-8b-1.bud-llama-1.svc:8000")
QWEN = ReadyDeployment("qwen", "qwen", "http://rt-qwen-2.bud-qwen-2.svc.cluster.local:8001/")


def test_routes_are_one_per_ready_deployment_in_a_stable_order() -> None:
    routes = gateway_routes("lab", [QWEN, LLAMA])
    assert routes == gateway_routes("lab", [LLAMA, QWEN])
    assert [(r.model_name, r.deployment, r.api_base) for r in routes] == [
        ("llama-8b", "llama-8b", "http://rt-llama-8b-1.bud-llama-1.svc:8000/v1"),
        ("qwen", "qwen", "http://rt-qwen-2.bud-qwen-2.svc.cluster.local:8001/v1"),
    ]


def test_no_ready_deployment_is_a_clear_error() -> None:
    with pytest.raises(GatewayHasNoRoutes, match="cluster 'lab' has no ready deployment"):
        gateway_routes("lab", [])


def test_a_url_outside_the_cluster_falls_back_to_the_revision_service() -> None:
    outside = ReadyDeployment(
        "llama",
        "llama",
        "https://10.0.0.1:6443/api/v1/namespaces/bud-x/services/rt-x:http/proxy",
        manifests=[
            {"kind": "Deployment", "metadata": {"name": "rt-x", "namespace": "bud-x"}},
            {
                "kind": "Service",
                "metadata": {"name": "rt-x", "namespace": "bud-x"},
                "spec": {"ports": [{"name": "http", "port": 8000}]},
            },
        ],
    )
    assert in_cluster_url(outside) == "http://rt-x.bud-x.svc:8000"
    with pytest.raises(GatewayError, match="'llama' has no in-cluster Service URL"):
        in_cluster_url(ReadyDeployment("llama", "llama", "http://10.0.0.1:8000"))


def test_values_and_their_hash() -> None:
    routes = gateway_routes("lab", [LLAMA, QWEN])
    values = gateway_values(routes, master_key_secret="gw-key", image="litellm:x", openshift=True)
    assert values == {
        "endpoints": [
            {
                "modelName": "llama-8b",
                "model": "llama-8b",
                "apiBase": "http://rt-llama-8b-1.bud-llama-1.svc:8000/v1",
            },
            {
                "modelName": "qwen",
                "model": "qwen",
                "apiBase": "http://rt-qwen-2.bud-qwen-2.svc.cluster.local:8001/v1",
            },
        ],
        "masterKeySecret": {"name": "gw-key"},
        "openshift": True,
        "image": "litellm:x",
    }
    assert config_hash(values) == config_hash(dict(reversed(values.items())))
    assert config_hash(values) != config_hash(gateway_values(routes[:1]))
    assert "image" not in gateway_values(routes)  # the chart's default image


def test_model_listings() -> None:
    listing = {"object": "list", "data": [{"id": "llama-8b", "object": "model"}, {"x": 1}]}
    routes = gateway_routes("lab", [LLAMA, QWEN])
    assert listed_models(listing) == ["llama-8b"]
    assert missing_routes(listing, routes) == ["qwen"]
    assert listed_models(None) == [] and listed_models({"data": None}) == []


def test_a_config_carries_its_hash_in_the_values() -> None:
    from budcluster.gateway import gateway_config

    config = gateway_config("lab", [LLAMA], master_key_secret="gw-key")
    assert config.values["configHash"] == config.config_hash
    assert config.config_hash == config_hash(
        gateway_values(config.routes, master_key_secret="gw-key")
    )
    assert config.master_key and config.service_url == "http://bud-gateway.bud-gateway.svc:4000"
    assert config == gateway_config("lab", [LLAMA], master_key_secret="gw-key")


def test_the_publish_form_names_the_bad_field() -> None:
    from pydantic import ValidationError

    from budcluster.job_requests import PublishGatewayRequest

    form = PublishGatewayRequest(cluster="lab")
    assert (form.release, form.namespace, form.master_key_secret) == (
        "bud-gateway",
        "bud-gateway",
        None,
    )
    assert PublishGatewayRequest(cluster="lab", master_key_secret="gw.key").master_key_secret
    for field, value, message in (
        ("release", "r" * 54, "longer than 53"),
        ("namespace", "Gateway", "must be 1-63 lowercase"),
        ("master_key_secret", "Key_1", "is not a Secret name"),
    ):
        with pytest.raises(ValidationError) as caught:
            PublishGatewayRequest.model_validate({"cluster": "lab", field: value})
        assert caught.value.errors()[0]["loc"] == (field,) and message in str(caught.value)
