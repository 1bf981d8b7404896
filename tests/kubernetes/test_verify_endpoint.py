"""``KubernetesTarget.verify_endpoint`` against the emulator: through the API server's service
proxy with the target's own client, as on a real cluster with no route to the pods.

The emulator's engine is simulated (no model runs): these tests prove the Service, the proxy
path, the ports and the served name that the plan configured, and the failure paths.
"""

from __future__ import annotations

import pytest

from budcluster.adapters import kubernetes as kube
from budcluster.endpoints import EndpointNotReady, EndpointWrongModel
from budcluster.targets.base import ClusterTarget, RolloutSpec, RuntimeState
from budcluster.targets.kubernetes import (
    KubernetesRuntimeFailed,
    KubernetesTargetError,
    release_for,
)
from budcluster.targets.kubernetes.probe import ServiceProbe as _ServiceProbe
from tests.k8s_emulator.emulator import Emulator
from tests.kubernetes.helpers import (
    MODEL_NAMESPACE,
    model_rollout,
    target_with_model_volume,
)


def test_the_target_has_the_protocol_method(h100_k8s: Emulator) -> None:
    assert isinstance(target_with_model_volume(h100_k8s), ClusterTarget)


def test_a_ready_rollout_serves_its_name_through_the_service(h100_k8s: Emulator) -> None:
    target = target_with_model_volume(h100_k8s)
    spec = model_rollout("served")
    served = spec.plan.served_model_name
    target.roll_out(spec)
    # Straight after the rollout no pod is Ready: the Service has no endpoints yet.
    early = kube.service_proxy(
        target._api, MODEL_NAMESPACE, release_for("served"), "http", "health"
    )
    assert early.status == 503 and "no endpoints available" in early.excerpt()

    check = target.verify_endpoint("served", served, timeout_s=20)

    assert check.served_models == [served]
    assert check.completion_tokens == 8  # the max_tokens asked for
    assert len(check.completion_text.split()) == 8
    assert check.base_url == (
        f"{h100_k8s.url}/api/v1/namespaces/{MODEL_NAMESPACE}/services/{release_for('served')}:http/proxy"
    )
    assert 0 < check.seconds_waited < 20


def test_another_served_name_is_the_wrong_model(h100_k8s: Emulator) -> None:
    target = target_with_model_volume(h100_k8s)
    spec = model_rollout("named")
    target.roll_out(spec)
    with pytest.raises(EndpointWrongModel) as caught:
        target.verify_endpoint("named", "not-" + spec.plan.served_model_name, timeout_s=20)
    assert f"serves [{spec.plan.served_model_name!r}]" in str(caught.value)


def test_a_crashing_rollout_fails_with_its_reason_and_log(h100_k8s: Emulator) -> None:
    h100_k8s.inject_fault(
        "CrashLoopBackOff",
        selector=f"app.kubernetes.io/instance={release_for('crash')}",
        log="RuntimeError: CUDA out of memory",
    )
    target = target_with_model_volume(h100_k8s)
    spec = model_rollout("crash")
    target.roll_out(spec)
    with pytest.raises(KubernetesRuntimeFailed) as caught:
        target.verify_endpoint("crash", spec.plan.served_model_name, timeout_s=20)
    assert caught.value.reason is not None and caught.value.reason.startswith("CrashLoopBackOff")
    assert any("CUDA out of memory" in line for line in caught.value.log_tail)
    assert "CUDA out of memory" in str(caught.value)


def test_a_port_the_engine_does_not_listen_on_never_serves(h100_k8s: Emulator) -> None:
    # The pod declares --port 8000 as its container port but the engine listens on 8001:
    # the pods are Ready (the emulator does not run probes) but the dial is refused.
    target = target_with_model_volume(h100_k8s)
    spec = model_rollout("skew")
    args = list(spec.plan.args)
    plan = spec.plan.model_copy(update={"args": [*args, "--port", "8001"]})
    target.roll_out(RolloutSpec("skew", plan, spec.model_path))
    # The chart takes the container port from the first --port; the engine reads the last.
    # The deadline leaves the rollout room on a loaded machine; the refusal is the last error.
    with pytest.raises(EndpointNotReady, match="connection refused"):
        target.verify_endpoint("skew", plan.served_model_name, timeout_s=8)


def test_absent_deployment_is_an_error(h100_k8s: Emulator) -> None:
    with pytest.raises(KubernetesTargetError, match="not deployed"):
        target_with_model_volume(h100_k8s).verify_endpoint("nothing", "x", timeout_s=5)


def test_wait_timeout_is_endpoint_not_ready(h100_k8s: Emulator) -> None:
    target = target_with_model_volume(h100_k8s)
    spec = model_rollout("slow")
    target.roll_out(spec)
    with pytest.raises(EndpointNotReady, match="did not become ready"):
        target.verify_endpoint("slow", spec.plan.served_model_name, timeout_s=0.01)
    assert target.status("slow").state in (RuntimeState.STARTING, RuntimeState.RUNNING)


def test_a_refusal_by_the_api_server_names_the_rbac_it_needs(h100_k8s: Emulator) -> None:
    config = h100_k8s.kubeconfig_dict()
    config["users"][0]["user"] = {"token": "not-the-token"}
    probe = _ServiceProbe(kube.api_client_from_kubeconfig(config), "ns", "svc", "http")
    with pytest.raises(KubernetesTargetError, match="needs get and create on services/proxy"):
        probe.check("x", timeout_s=5)


def test_an_unreachable_api_server_is_not_ready_yet() -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "c", "user": {}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "c"}}],
        "current-context": "c",
    }
    probe = _ServiceProbe(kube.api_client_from_kubeconfig(config), "ns", "svc", "http")
    with pytest.raises(EndpointNotReady, match="did not answer"):
        probe.check("x", timeout_s=2)
