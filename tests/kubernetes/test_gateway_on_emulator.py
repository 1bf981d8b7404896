"""The gateway release against the emulator: ``KubernetesTarget.apply_release`` renders and
applies ``litellm_container``, ``verify_gateway`` waits for it and checks through its Service.

The LiteLLM container is simulated (``tests/k8s_emulator/litellm_http.py``) from its pod spec
and the config file its ConfigMap volume held at start; a completion through it goes to the
runtime's Service by the emulator's in-cluster name resolution and reaches the simulated
vLLM engine there.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest

from budcluster.adapters import kubernetes as kube
from budcluster.endpoints import EndpointNotReady
from budcluster.gateway import GATEWAY_CHART, GatewayConfig, ReadyDeployment, gateway_config
from budcluster.targets.base import RolloutSpec, RuntimeState
from budcluster.targets.kubernetes import (
    KubernetesRuntimeFailed,
    KubernetesTarget,
    KubernetesTargetError,
)
from tests.k8s_emulator.emulator import Emulator
from tests.k8s_emulator.fixtures import kubectl_path
from tests.k8s_emulator.litellm_http import SimulatedLiteLLM
from tests.k8s_emulator.nodes import h100_node
from tests.k8s_emulator.runtime_http import HttpAnswer
from tests.k8s_emulator.waiting import raw_request
from tests.kubernetes.helpers import (
    MODEL_NAMESPACE,
    MODEL_PATH,
    make_tp2_plan,
    target_with_model_volume,
)


def _serve(target: KubernetesTarget, name: str) -> ReadyDeployment:
    """A ready TP-2 runtime serving ``name``, as the store would list it."""
    plan = make_tp2_plan(h100_node().name)
    args = list(plan.args)
    args[args.index("--served-model-name") + 1] = name
    plan = plan.model_copy(update={"args": args, "served_model_name": name})
    status = target.roll_out(RolloutSpec(name, plan, MODEL_PATH, port=8000))
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


def test_the_gateway_routes_a_completion_to_the_runtime(h100_k8s: Emulator, tmp_path: Path) -> None:
    target = target_with_model_volume(h100_k8s)
    config = gateway_config("lab", [_serve(target, "alpha")])
    manifests = _publish(target, config)
    assert {o["kind"] for o in manifests} == {"ConfigMap", "Deployment", "Service"}
    assert all(o["metadata"]["labels"][kube.RELEASE_LABEL] == "bud-gateway" for o in manifests)

    check = target.verify_gateway("bud-gateway", "bud-gateway", config.routes, timeout_s=20)

    assert check.listed_models == ["alpha"] and not check.key_enforced
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
        str(h100_k8s.write_kubeconfig(tmp_path / "kubeconfig")),
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


def test_a_new_config_rolls_the_pods_so_the_proxy_reads_it(h100_k8s: Emulator) -> None:
    target = target_with_model_volume(h100_k8s)
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


def test_a_route_to_a_runtime_that_is_gone_fails_the_check(h100_k8s: Emulator) -> None:
    target = target_with_model_volume(h100_k8s)
    gone = ReadyDeployment("gone", "gone", f"http://rt-gone.{MODEL_NAMESPACE}.svc:8000")
    config = gateway_config("lab", [_serve(target, "alpha"), gone])
    _publish(target, config)
    # The deadline leaves the rollout room on a loaded machine; the failed route is what
    # the checks still see when it passes.
    with pytest.raises(EndpointNotReady) as caught:
        target.verify_gateway("bud-gateway", "bud-gateway", config.routes, timeout_s=8)
    assert "could not complete with 'gone'" in str(caught.value)
    assert "APIConnectionError" in str(caught.value)


def _key_secret(target: KubernetesTarget, key: str, name: str = "gw-key") -> None:
    kube.apply_objects(
        target._api,
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bud-gateway"}},
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": "bud-gateway"},
                "stringData": {"master-key": key},
            },
        ],
        release=name,
    )


def test_with_a_master_key_the_check_calls_every_route_with_it(h100_k8s: Emulator) -> None:
    key = "sk-" + secrets.token_hex(12)
    target = target_with_model_volume(h100_k8s)
    _key_secret(target, key)
    config = gateway_config("lab", [_serve(target, "alpha")], master_key_secret="gw-key")
    assert config.master_key_secret == "gw-key"
    _publish(target, config)

    check = target.verify_gateway(
        "bud-gateway", "bud-gateway", config.routes, timeout_s=20, master_key_secret="gw-key"
    )

    # Refused without the key, then listed and completed with it.
    assert check.key_enforced and check.listed_models == ["alpha"]
    assert check.completion_tokens == {"alpha": 1}
    assert key not in repr(check)
    # The Secret reached the proxy through the pod's env (secretKeyRef), as data, base64.
    secret = kube.get_object(target._api, kube.ObjectRef("Secret", "gw-key", "bud-gateway"))
    assert secret is not None and "stringData" not in secret
    assert base64.b64decode(secret["data"]["master-key"]).decode() == key


def test_the_api_server_consumes_authorization_and_forwards_the_litellm_header(
    h100_k8s: Emulator,
) -> None:
    key = "sk-" + secrets.token_hex(12)
    target = target_with_model_volume(h100_k8s)
    _key_secret(target, key)
    config = gateway_config("lab", [_serve(target, "alpha")], master_key_secret="gw-key")
    _publish(target, config)
    target.verify_gateway(
        "bud-gateway", "bud-gateway", config.routes, timeout_s=20, master_key_secret="gw-key"
    )
    path = "/api/v1/namespaces/bud-gateway/services/bud-gateway:http/proxy/v1/models"

    def ask(headers: dict[str, str]) -> tuple[int, Any]:
        return raw_request(h100_k8s.url, "GET", path, headers=headers)

    # Authorization is the API server's own: a bearer it does not know is its 401 ...
    status, body = ask({"Authorization": f"Bearer {key}"})
    assert status == 401 and body["kind"] == "Status" and body["reason"] == "Unauthorized"
    # ... and the cluster's token authenticates the caller and is gone before the proxy
    # sees the request, so LiteLLM finds no key at all.
    status, body = ask({"Authorization": f"Bearer {h100_k8s.token}"})
    assert status == 401
    assert body["error"]["message"] == "Authentication Error, No api key passed in."
    # LiteLLM's own header goes through, with or without the Bearer prefix ...
    for value in (f"Bearer {key}", key):
        status, body = ask({"x-litellm-api-key": value})
        assert status == 200 and [m["id"] for m in body["data"]] == ["alpha"], value
    # ... also beside the caller's own credentials, as the adapter sends them.
    status, _ = ask({"x-litellm-api-key": key, "Authorization": f"Bearer {h100_k8s.token}"})
    assert status == 200
    # A wrong key falls through to the virtual-key lookup, which has no database.
    status, body = ask({"x-litellm-api-key": "Bearer sk-wrong"})
    assert status == 400
    assert body["error"] == {
        "message": "No connected db.",
        "type": "no_db_connection",
        "param": None,
        "code": "400",
    }
    # The health probes never need a key.
    assert ask({})[0] == 401
    assert _ask(target, "GET", "health/liveliness").status == 200
    # The adapter sends extra headers, and refuses Authorization, which could never arrive.
    keyed = kube.service_proxy(
        target._api,
        "bud-gateway",
        "bud-gateway",
        "http",
        "v1/completions",
        method="POST",
        body={"model": "alpha", "prompt": "Hi", "max_tokens": 2},
        headers={"x-litellm-api-key": f"Bearer {key}"},
    )
    assert keyed.status == 200 and keyed.json()["usage"]["completion_tokens"] == 2
    with pytest.raises(ValueError, match="never forwards Authorization"):
        kube.service_proxy(
            target._api,
            "bud-gateway",
            "bud-gateway",
            "http",
            "v1/models",
            headers={"authorization": f"Bearer {key}"},
        )


def test_a_key_changed_after_the_proxy_started_is_refused_without_showing_it(
    h100_k8s: Emulator,
) -> None:
    old, new = "sk-" + secrets.token_hex(12), "sk-" + secrets.token_hex(12)
    target = target_with_model_volume(h100_k8s)
    _key_secret(target, old)
    config = gateway_config("lab", [_serve(target, "alpha")], master_key_secret="gw-key")
    _publish(target, config)
    target.verify_gateway(
        "bud-gateway", "bud-gateway", config.routes, timeout_s=20, master_key_secret="gw-key"
    )
    # The kubelet read the Secret when the container started; a new value reaches it only
    # through a restart.
    _key_secret(target, new)
    with pytest.raises(KubernetesTargetError, match="refused the master key") as caught:
        target.verify_gateway(
            "bud-gateway", "bud-gateway", config.routes, timeout_s=5, master_key_secret="gw-key"
        )
    assert "rollout restart deployment/bud-gateway" in str(caught.value)
    assert old not in str(caught.value) and new not in str(caught.value)


def test_a_missing_master_key_secret_keeps_the_proxy_from_starting(h100_k8s: Emulator) -> None:
    target = target_with_model_volume(h100_k8s)
    config = gateway_config("lab", [_serve(target, "alpha")], master_key_secret="absent")
    _publish(target, config)
    with pytest.raises(KubernetesRuntimeFailed) as caught:
        target.verify_gateway(
            "bud-gateway", "bud-gateway", config.routes, timeout_s=10, master_key_secret="absent"
        )
    assert caught.value.reason is not None
    assert caught.value.reason.startswith("CreateContainerConfigError: pod bud-gateway-")
    assert caught.value.reason.endswith('secret "absent" not found')
    pods = [
        p
        for p in h100_k8s.objects("pods", "", "bud-gateway")
        if p["metadata"]["name"].startswith("bud-gateway-")
    ]
    assert pods and all(p["status"]["phase"] == "Pending" for p in pods)
    events = [
        e
        for e in h100_k8s.objects("events", "", "bud-gateway")
        if e["reason"] == "Failed" and e["type"] == "Warning"
    ]
    assert any(e["message"] == 'Error: secret "absent" not found' for e in events)


def test_without_a_secret_name_a_gateway_that_asks_for_a_key_fails_clearly(
    h100_k8s: Emulator,
) -> None:
    target = target_with_model_volume(h100_k8s)
    _key_secret(target, "sk-" + secrets.token_hex(12))
    config = gateway_config("lab", [_serve(target, "alpha")], master_key_secret="gw-key")
    _publish(target, config)
    with pytest.raises(KubernetesTargetError, match="no master key Secret was given"):
        target.verify_gateway("bud-gateway", "bud-gateway", config.routes, timeout_s=20)


# --- the simulated proxy's key check, against LiteLLM's user_api_key_auth (no database) ---


def _unreachable(url: str, _method: str, _body: bytes) -> HttpAnswer:
    raise ConnectionError(f"no backend in this test: {url}")


def _proxy(
    env: dict[str, str], master_key: str = "os.environ/LITELLM_MASTER_KEY"
) -> SimulatedLiteLLM:
    config = f"model_list: []\ngeneral_settings:\n  master_key: {master_key}\n"
    container = {"image": "ghcr.io/berriai/litellm:main-v1.67.0-stable", "args": ["--config", "/c"]}
    return SimulatedLiteLLM.of(container, {"/c": config}, _unreachable, env)


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({}, 401, "Authentication Error, No api key passed in."),
        ({"Authorization": "Bearer sk-k"}, 200, None),
        ({"authorization": "bearer sk-k"}, 200, None),
        (
            {"Authorization": "sk-k"},
            401,
            "Authentication Error, Malformed API Key passed in. Ensure Key has `Bearer ` prefix.",
        ),
        ({"x-litellm-api-key": "sk-k"}, 200, None),
        ({"X-LiteLLM-API-Key": "Bearer sk-k", "Authorization": "Bearer sk-x"}, 200, None),
        ({"x-litellm-api-key": "sk-x", "Authorization": "Bearer sk-k"}, 400, "No connected db."),
        ({"Authorization": "Bearer sk-x"}, 400, "No connected db."),
        ({"api-key": "sk-k"}, 200, None),
    ],
)
def test_the_proxy_takes_the_key_from_either_header_as_litellm_does(
    headers: dict[str, str], status: int, message: str | None
) -> None:
    answer = _proxy({"LITELLM_MASTER_KEY": "sk-k"}).answer("GET", "/v1/models", b"", True, headers)
    assert answer.status == status
    if message is not None:
        assert json.loads(answer.body)["error"]["message"] == message


def test_an_unset_master_key_variable_leaves_the_proxy_open() -> None:
    # LiteLLM's get_secret("os.environ/X") is None when X is unset: no key is enforced.
    assert _proxy({}).answer("GET", "/v1/models", b"", True).status == 200
    assert _proxy({}, master_key="sk-literal").answer("GET", "/v1/models", b"", True).status == 401
