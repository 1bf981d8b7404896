"""Autoscaling on Kubernetes: the runtime chart's HPA or KEDA ScaledObject, and the target
on the emulator, whose HPA controller scales the runtime on metrics the test feeds."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import kubernetes_validate
import pytest

from budcluster.adapters import kubernetes as kube
from budcluster.adapters.helm import HelmRenderError, lint_chart
from budcluster.autoscaling import AutoscalingSpec, ScalingMetric
from budcluster.targets.base import RolloutSpec, RuntimeState
from budcluster.targets.kubernetes import KubernetesTarget, runtime_values
from tests.k8s_emulator.emulator import Emulator
from tests.k8s_emulator.fixtures import emulator_factory, keda_scaledobject_crd  # noqa: F401
from tests.k8s_emulator.nodes import h100_node
from tests.k8s_emulator.waiting import eventually
from tests.kubernetes.helpers import (
    CHARTS,
    ENDPOINT_TIMEOUTS,
    MODEL_NAMESPACE,
    by_kind,
    model_rollout,
    render,
    target_with_model_volume,
)

K8S_VERSION = "1.31.0"
RUNNING = "vllm:num_requests_running"
# Scale down after 1 s of low recommendations (the default 300 s would outlast the test).
SCALING = AutoscalingSpec(
    min_replicas=1,
    max_replicas=3,
    metric=ScalingMetric.REQUESTS_RUNNING,
    target_per_replica=4.0,
    scale_up_stabilization_s=0,
    scale_down_stabilization_s=1,
)


def _scaled(spec: RolloutSpec, autoscaling: AutoscalingSpec | None = SCALING) -> RolloutSpec:
    return dataclasses.replace(spec, autoscaling=autoscaling)


def _values(spec: RolloutSpec, *, keda: bool = False) -> dict[str, Any]:
    return runtime_values(
        spec,
        pvc_name="llama-model",
        subdir="llama",
        openshift=False,
        namespace="bud-test",
        release="rel",
        keda=keda,
    )


# --- the chart ----------------------------------------------------------------------------


def test_chart_renders_a_valid_hpa_on_the_engine_metric(tp2_rollout: RolloutSpec) -> None:
    values = _values(_scaled(tp2_rollout))
    assert lint_chart(CHARTS / "bud_runtime_container", values) == []
    objects = render("bud_runtime_container", values)
    (hpa,) = by_kind(objects, "HorizontalPodAutoscaler")
    kubernetes_validate.validate(hpa, K8S_VERSION, strict=True)
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "rel",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 3)
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": RUNNING},
                "target": {"type": "AverageValue", "averageValue": "4"},
            },
        }
    ]
    assert hpa["spec"]["behavior"] == {
        "scaleUp": {"stabilizationWindowSeconds": 0},
        "scaleDown": {"stabilizationWindowSeconds": 1},
    }
    assert by_kind(objects, "ScaledObject") == []
    (deployment,) = by_kind(objects, "Deployment")
    kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    # The autoscaler owns the count: a re-applied Deployment must not carry one.
    assert "replicas" not in deployment["spec"]
    assert deployment["spec"]["template"]["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8000",
        "prometheus.io/path": "/metrics",
    }
    assert by_kind(objects, "PodDisruptionBudget") == []  # min 1: a PDB would block drains


def test_chart_renders_a_scaled_object_when_keda_is_served(tp2_rollout: RolloutSpec) -> None:
    spec = _scaled(
        tp2_rollout, dataclasses.replace(SCALING, min_replicas=2, target_per_replica=2.5)
    )
    objects = render("bud_runtime_container", _values(spec, keda=True))
    assert by_kind(objects, "HorizontalPodAutoscaler") == []
    (scaled,) = by_kind(objects, "ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == "rel"
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (2, 3)
    assert scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] == {
        "scaleUp": {"stabilizationWindowSeconds": 0},
        "scaleDown": {"stabilizationWindowSeconds": 1},
    }
    assert scaled["spec"]["triggers"] == [
        {
            "type": "prometheus",
            "metricType": "AverageValue",
            "metadata": {
                "serverAddress": "http://prometheus-operated.monitoring.svc:9090",
                "query": (f'sum({RUNNING}{{namespace="bud-test",pod=~"rel-[a-z0-9]+-[a-z0-9]+"}})'),
                "threshold": "2.5",
            },
        }
    ]
    # Two replicas at least: now a PDB keeps one up through a drain.
    assert len(by_kind(objects, "PodDisruptionBudget")) == 1


def test_without_autoscaling_the_chart_is_as_before(tp2_rollout: RolloutSpec) -> None:
    objects = render("bud_runtime_container", _values(tp2_rollout))
    assert {o["kind"] for o in objects} == {"Deployment", "Service", "ServiceAccount"}
    (deployment,) = by_kind(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert "annotations" not in deployment["spec"]["template"]["metadata"]


def test_llama_cpp_gets_its_metrics_flag_and_its_own_series(tp2_rollout: RolloutSpec) -> None:
    plan = tp2_rollout.plan.model_copy(
        update={"engine": "llama.cpp", "args": ["-m", "/models/q/model.gguf", "--port", "8000"]}
    )
    spec = _scaled(dataclasses.replace(tp2_rollout, plan=plan))
    values = _values(spec)
    assert values["args"] == ["-m", "/models/q/model.gguf", "--port", "8000", "--metrics"]
    assert values["autoscaling"]["metric"] == "llamacpp:requests_processing"
    assert _values(dataclasses.replace(tp2_rollout, plan=plan))["args"][-1] == "8000"


def test_the_chart_schema_refuses_a_minimum_of_zero(tp2_rollout: RolloutSpec) -> None:
    values = _values(_scaled(tp2_rollout))
    values["autoscaling"]["minReplicas"] = 0
    with pytest.raises(HelmRenderError, match="minReplicas"):
        render("bud_runtime_container", values)


# --- on the emulator ------------------------------------------------------------------------


@pytest.fixture
def one_h100(emulator_factory: Callable[..., Emulator]) -> Emulator:  # noqa: F811
    """One node with 8 H100s: room for 4 replicas of the TP-2 plan."""
    return emulator_factory(flavour="kubernetes", nodes=[h100_node()])


def _release_kinds(target: KubernetesTarget, release: str) -> set[str]:
    return {r.kind for r in kube.list_release(target._api, release, MODEL_NAMESPACE)}


def _replicas(emu: Emulator, release: str) -> int:
    (deployment,) = [
        d
        for d in emu.objects("deployments", "apps", MODEL_NAMESPACE)
        if d["metadata"]["name"] == release
    ]
    return int(deployment["spec"]["replicas"])


def _running_pods(emu: Emulator, release: str) -> list[dict[str, Any]]:
    return [
        p
        for p in emu.objects("pods", namespace=MODEL_NAMESPACE)
        if p["metadata"]["labels"].get("app.kubernetes.io/instance") == release
        and p["status"].get("phase") == "Running"
        and not p["metadata"].get("deletionTimestamp")
    ]


def test_hpa_scales_the_runtime_to_max_on_load_and_back_to_min(one_h100: Emulator) -> None:
    spec = _scaled(model_rollout("scaled"))
    target = target_with_model_volume(one_h100, ENDPOINT_TIMEOUTS)
    status = target.roll_out(spec)
    release = status.detail["release"]
    assert target.wait_until_settled("scaled").state is RuntimeState.RUNNING
    assert {"HorizontalPodAutoscaler", "Deployment"} <= _release_kinds(target, release)
    assert "ScaledObject" not in _release_kinds(target, release)
    assert _replicas(one_h100, release) == 1

    # Every replica reports 20 running requests against a target of 4: to the max, 3.
    selector = f"app.kubernetes.io/instance={release}"
    one_h100.set_pod_metric(MODEL_NAMESPACE, RUNNING, 20, selector)
    eventually(lambda: len(_running_pods(one_h100, release)) == 3, 15, "3 running replicas")
    assert _replicas(one_h100, release) == 3
    for pod in _running_pods(one_h100, release):
        assert pod["spec"]["nodeName"] == h100_node().name
        assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"
    (hpa,) = one_h100.objects("horizontalpodautoscalers", "autoscaling", MODEL_NAMESPACE)
    limited = {c["type"]: c for c in hpa["status"]["conditions"]}["ScalingLimited"]
    assert (limited["status"], limited["reason"]) == ("True", "TooManyReplicas")

    # A redeploy of the same spec leaves the autoscaler's count alone.
    target.roll_out(spec)
    assert _replicas(one_h100, release) == 3

    # Idle: after the 1 s scale-down window, back to the minimum.
    one_h100.set_pod_metric(MODEL_NAMESPACE, RUNNING, 0, selector)
    eventually(lambda: _replicas(one_h100, release) == 1, 15, "scale down to 1")
    eventually(lambda: len(_running_pods(one_h100, release)) == 1, 15, "1 running replica")

    # Autoscaling turned off: the HPA goes and the plan's fixed count is back.
    target.roll_out(_scaled(spec, None))
    assert "HorizontalPodAutoscaler" not in _release_kinds(target, release)
    assert _replicas(one_h100, release) == 1


def test_with_keda_installed_a_scaled_object_is_applied_and_no_hpa(one_h100: Emulator) -> None:
    target = target_with_model_volume(one_h100, ENDPOINT_TIMEOUTS)
    kube.request_json(
        target._api,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        what="install KEDA's ScaledObject CRD",
        body=keda_scaledobject_crd(),
    )
    eventually(
        lambda: kube.serves_resource(target._api, "keda.sh/v1alpha1", "scaledobjects"),
        what="ScaledObject served",
    )
    status = target.roll_out(_scaled(model_rollout("keda")))
    release = status.detail["release"]
    assert _release_kinds(target, release) >= {"ScaledObject", "Deployment"}
    assert "HorizontalPodAutoscaler" not in _release_kinds(target, release)
    assert one_h100.objects("horizontalpodautoscalers", "autoscaling") == []
    (scaled,) = one_h100.objects("scaledobjects", "keda.sh", MODEL_NAMESPACE)
    query = scaled["spec"]["triggers"][0]["metadata"]["query"]
    assert query == (
        f'sum({RUNNING}{{namespace="{MODEL_NAMESPACE}",pod=~"{release}-[a-z0-9]+-[a-z0-9]+"}})'
    )
    target.delete("keda")
    assert kube.list_release(target._api, release, MODEL_NAMESPACE) == []
