"""The gateway release against the emulator: ``KubernetesTarget.apply_release`` renders and
applies ``litellm_container``, ``verify_gateway`` waits for it and checks through its Service.

The LiteLLM container is simulated (``tests/k8s_emulator/litellm_http.py``) from its pod spec
and the config file its ConfigMap volume held at start; a completion through it goes to the
runtime's Service by the emulator's in-cluster name resolution and reaches the simulated
vLLM engine there.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from budcluster.adapters import kubernetes as kube
from budcluster.endpoints import EndpointNotReady
from budcluster.gateway import GATEWAY_CHART, GatewayConfig, ReadyDeployment, gateway_config
from budcluster.targets.base import RolloutSpec, RuntimeState
from budcluster.targets.kubernetes import KubernetesTarget, KubernetesTimeouts, namespace_for
from tests.k8s_emulator.emulator import Emulator
from tests.k8s_emulator.fixtures import (
    emulator_factory,  # noqa: F401  (pytest fixture)
    kubectl_path,
)
from tests.k8s_emulator.nodes import h100_node
from tests.kubernetes.helpers import make_tp2_plan

FAST = KubernetesTimeouts(api_s=10, ready_s=20, resync_s=1, endpoint_poll_s=0.1)
MODEL_NAMESPACE = namespace_for("bud", "llama-70b")
Factory = Callable[..., Emulator]


@pytest.fixture
def k8s(emulator_factory: Factory) -> Emulator:  # noqa: F811
    return emulator_factory(flavour="kubernetes", nodes=[h100_node()])


def _target(emu: Emulator) -> KubernetesTarget:
    target = KubernetesTarget(kube.api_client_from_kubeconfig(emu.kubeconfig_dict()), timeouts=FAST)
    kube.apply_objects(
        target._api,
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": MODEL_NAMESPACE}},
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "llama-model", "namespace": MODEL_NAMESPACE},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        ],
        release="model-llama",
    )
    return target


def _serve(target: KubernetesTarget, name: str) -> ReadyDeployment:
    """A ready TP-2 runtime serving ``name``, as the store would list it."""
    plan = make_tp2_plan(h100_node().name)
    args = list(plan.args)
    args[args.index("--served-model-name") + 1] = name
    plan = plan.model_copy(update={"args": args, "served_model_name": name})
    status = target.roll_out(
        RolloutSpec(name, plan, f"pvc://{MODEL_NAMESPACE}/llama-model/llama", port=8000)
    )
    assert target.wait_until_settled(name).state is RuntimeState.RUNNING
    return ReadyDeployment(name, name, status.endpoint_url, target.last_manifests)


def _publish(target: KubernetesTarget, config: GatewayConfig) -> list[dict[str, object]]:
    return target.apply_release(GATEWAY_CHART, config.values, config.release, config.namespace)


def _ask(
    target: KubernetesTarget, method: str, path: str, body: object = None
) -> kube.ProxyResponse:
    return kube.service_proxy(
        target._api, "bud-gateway", "bud-gateway", "http", path, method=method, body=body
    )


def test_the_gateway_routes_a_completion_to_the_runtime(k8s: Emulator, tmp_path: Path) -> None:
    target = _target(k8s)
    config = gateway_config("lab", [_serve(target, "alpha")])
    manifests = _publish(target, config)
    assert {o["kind"] for o in manifests} == {"ConfigMap", "Deployment", "Service"}
    assert all(o["metadata"]["labels"][kube.RELEASE_LABEL] == "bud-gateway" for o in manifests)

    check = target.verify_gateway("bud-gateway", "bud-gateway", config.routes, timeout_s=20)

    assert check.listed_models == ["alpha"] and check.routes_checked
    assert check.completion_tokens == {"alpha": 1}  # the max_tokens asked for
    assert check.base_url.endswith("/namespaces/bud-gateway/services/bud-gateway:http/proxy")
    deployment = target.release_deployment("bud-gateway", "bud-gateway")
    assert deployment is not None
    assert deployment["metadata"]["annotations"]["budcluster.io/config-hash"] == config.config_hash

    # LiteLLM's own answers, as its proxy gives them.
    assert _ask(target, "GET", "health/liveliness").json() == "I'm alive!"
    assert _ask(target, "GET", "health/readiness").json()["status"] == "healthy"
    assert _ask(target, "GET", "v1/models").json() == {
        "data": [{"id": "alpha", "object": "model", "created": 1677610602, "owned_by": "openai"}],
        "object": "list",
    }
    chat = _ask(
        target,
        "POST",
        "v1/chat/completions",
        {"model": "alpha", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3},
    )
    assert chat.status == 200 and chat.json()["usage"]["completion_tokens"] == 3
    unknown = _ask(target, "POST", "v1/completions", {"model": "nope", "prompt": "Hi"})
    assert unknown.status == 400
    assert "Invalid model name passed in model=nope" in unknown.json()["error"]["message"]

    # kubectl, an independent client, agrees: the gateway is available, its config routes
    # the runtime's Service.
    kubectl = [
        str(kubectl_path()),
        "--kubeconfig",
        str(k8s.write_kubeconfig(tmp_path / "kubeconfig")),
        "-n",
        "bud-gateway",
    ]
    waited = subprocess.run(
        [*kubectl, "wait", "--for=condition=Available", "deployment/bud-gateway", "--timeout=10s"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert waited.returncode == 0 and "condition met" in waited.stdout, waited.stderr
    shown = subprocess.run(
        [
            *kubectl,
            "get",
            "configmap",
            "bud-gateway-config",
            "-o",
            "jsonpath={.data.config\\.yaml}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert config.routes[0].api_base in shown.stdout


def test_a_new_config_rolls_the_pods_so_the_proxy_reads_it(k8s: Emulator) -> None:
    target = _target(k8s)
    alpha = _serve(target, "alpha")
    first = gateway_config("lab", [alpha])
    _publish(target, first)
    target.verify_gateway("bud-gateway", "bud-gateway", first.routes, timeout_s=20)
    # LiteLLM reads its config once, at start: only new pods see the new route.
    second = gateway_config("lab", [alpha, _serve(target, "beta")])
    assert second.config_hash != first.config_hash
    _publish(target, second)
    check = target.verify_gateway("bud-gateway", "bud-gateway", second.routes, timeout_s=20)
    assert check.listed_models == ["alpha", "beta"]
    assert check.completion_tokens == {"alpha": 1, "beta": 1}


def test_a_route_to_a_runtime_that_is_gone_fails_the_check(k8s: Emulator) -> None:
    target = _target(k8s)
    gone = ReadyDeployment("gone", "gone", f"http://rt-gone.{MODEL_NAMESPACE}.svc:8000")
    config = gateway_config("lab", [_serve(target, "alpha"), gone])
    _publish(target, config)
    with pytest.raises(EndpointNotReady) as caught:
        target.verify_gateway("bud-gateway", "bud-gateway", config.routes, timeout_s=2)
    assert "could not complete with 'gone'" in str(caught.value)
    assert "APIConnectionError" in str(caught.value)


def test_with_a_master_key_the_routes_are_closed_to_the_unauthenticated(k8s: Emulator) -> None:
    target = _target(k8s)
    kube.apply_objects(
        target._api,
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bud-gateway"}},
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "gw-key", "namespace": "bud-gateway"},
                "stringData": {"master-key": "sk-test"},
            },
        ],
        release="gw-key",
    )
    config = gateway_config("lab", [_serve(target, "alpha")], master_key_secret="gw-key")
    _publish(target, config)
    check = target.verify_gateway(
        "bud-gateway", "bud-gateway", config.routes, timeout_s=20, master_key=True
    )
    assert not check.routes_checked and check.completion_tokens == {}
    refused = _ask(target, "GET", "v1/models")
    assert refused.status == 401
    assert refused.json()["error"]["message"] == "Authentication Error, No api key passed in."
    assert _ask(target, "GET", "health/liveliness").status == 200
