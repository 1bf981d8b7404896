"""The emulator's HorizontalPodAutoscaler and CustomResourceDefinitions: the controller's
arithmetic on hand-computed cases, the API server's defaults and validation, the scaling
loop on fed metrics, and a CRD whose resource appears in discovery once established."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.k8s_emulator.autoscaler import (
    MetricUnavailable,
    _default_rules,
    _State,
    normalize_with_behavior,
    plain_metric_replicas,
)
from tests.k8s_emulator.emulator import Emulator
from tests.k8s_emulator.fixtures import keda_scaledobject_crd
from tests.k8s_emulator.waiting import eventually, raw_request

BEHAVIOR = {"scaleUp": _default_rules(None, up=True), "scaleDown": _default_rules(None, up=False)}


# --- replica_calculator: desired = ceil(ratio x ready pods), tolerance 0.1 -----------------


def test_plain_metric_scales_by_the_ratio_to_the_target() -> None:
    # Two pods at 10 against a target of 4: ratio 2.5, ceil(2.5 x 2) = 5.
    assert plain_metric_replicas({"a": 10_000, "b": 10_000}, 2, 4_000, 2, set(), set()) == (
        5,
        10_000,
    )
    # Two pods at 1 against 4: ratio 0.25, ceil(0.25 x 2) = 1.
    assert plain_metric_replicas({"a": 1_000, "b": 1_000}, 2, 4_000, 2, set(), set())[0] == 1


def test_within_the_tolerance_nothing_changes() -> None:
    # 4.3 / 4 = 1.075: within 0.1 of 1, so the current 2 stay (4.5 / 4 = 1.125 does not).
    assert plain_metric_replicas({"a": 4_300, "b": 4_300}, 2, 4_000, 2, set(), set())[0] == 2
    assert plain_metric_replicas({"a": 4_500, "b": 4_500}, 2, 4_000, 2, set(), set())[0] == 3


def test_missing_pods_damp_the_change() -> None:
    # Scale up: the missing pod counts as 0, average (8 + 0) / 2 = 4 is the target: stay at 2.
    assert plain_metric_replicas({"a": 8_000}, 2, 4_000, 1, set(), {"b"})[0] == 2
    # Scale down: the missing pod counts as the target, (0+0+0+4) / 4 = 1: ceil(0.25 x 4) = 1.
    assert plain_metric_replicas({"a": 0, "b": 0, "c": 0}, 4, 4_000, 3, set(), {"d"})[0] == 1


def test_pending_pods_count_as_zero_when_scaling_up() -> None:
    # One pod at 12 (ratio 3) and one pending: (12 + 0) / 2 = 6, ratio 1.5, ceil(1.5 x 2) = 3.
    assert plain_metric_replicas({"a": 12_000}, 2, 4_000, 1, {"b"}, set())[0] == 3


def test_no_metrics_at_all_is_an_error() -> None:
    with pytest.raises(MetricUnavailable, match="did not receive metrics"):
        plain_metric_replicas({}, 2, 4_000, 0, {"a"}, {"b"})


def test_scale_down_waits_out_the_stabilization_window() -> None:
    state = _State(recommendations=[(100.0, 5)])
    behavior = {
        **BEHAVIOR,
        "scaleDown": {**BEHAVIOR["scaleDown"], "stabilizationWindowSeconds": 60},
    }
    # 10 s after a recommendation of 5, the highest recommendation in the window holds.
    assert normalize_with_behavior(state, behavior, 5, 2, 1, 8, 110.0)[0] == 5
    # 61 s after the last 5 (and a 2 since), the window holds only 2s.
    assert normalize_with_behavior(state, behavior, 5, 2, 1, 8, 171.0)[0] == 2


def test_scale_up_is_limited_by_the_default_policies_then_max() -> None:
    # From 1: Pods policy 1 + 4 = 5, Percent policy 1 x 2 = 2; Max picks 5.
    replicas, reason, _ = normalize_with_behavior(_State(), BEHAVIOR, 1, 10, 1, 20, 0.0)
    assert (replicas, reason) == (5, "ScaleUpLimit")
    replicas, reason, _ = normalize_with_behavior(_State(), BEHAVIOR, 1, 10, 1, 3, 0.0)
    assert (replicas, reason) == (3, "TooManyReplicas")


# --- the API server: defaults and validation -------------------------------------------------


def _hpa(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "maxReplicas": 3,
            **spec,
        },
    }


def _create(emu: Emulator, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    return raw_request(
        emu.url, "POST", path, body, headers={"Authorization": f"Bearer {emu.token}"}
    )


HPAS = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers"


def test_hpa_defaults_like_the_api_server(k8s_emulator: Emulator) -> None:
    code, created = _create(
        k8s_emulator, HPAS, _hpa("web", behavior={"scaleDown": {"stabilizationWindowSeconds": 5}})
    )
    assert code == 201, created
    spec = created["spec"]
    assert spec["minReplicas"] == 1
    assert spec["metrics"][0]["resource"]["target"] == {
        "type": "Utilization",
        "averageUtilization": 80,
    }
    assert spec["behavior"]["scaleUp"] == {
        "stabilizationWindowSeconds": 0,
        "selectPolicy": "Max",
        "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 15},
            {"type": "Percent", "value": 100, "periodSeconds": 15},
        ],
    }
    assert spec["behavior"]["scaleDown"] == {
        "stabilizationWindowSeconds": 5,
        "selectPolicy": "Max",
        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
    }


def test_hpa_validation_errors_are_the_real_ones(k8s_emulator: Emulator) -> None:
    code, status = _create(k8s_emulator, HPAS, _hpa("web", minReplicas=4))
    assert code == 422
    assert status["message"] == (
        'HorizontalPodAutoscaler.autoscaling "web" is invalid: spec.maxReplicas: Invalid '
        "value: 3: must be greater than or equal to `minReplicas`"
    )
    code, status = _create(k8s_emulator, HPAS, _hpa("web", minReplicas=0))
    assert code == 422
    assert (
        "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1"
        in status["message"]
    )


def test_the_metric_feed_refuses_a_bad_body(k8s_emulator: Emulator) -> None:
    code, status = raw_request(k8s_emulator.url, "POST", "/_emulator/metrics", {"metric": "m"})
    assert code == 400
    assert "give namespace, metric, value" in status["message"]


# --- the controller on fed metrics -------------------------------------------------------------


def _replicas(emu: Emulator, name: str) -> int:
    return int(
        next(d for d in emu.objects("deployments", "apps") if d["metadata"]["name"] == name)[
            "spec"
        ]["replicas"]
    )


def test_controller_scales_a_deployment_on_a_fed_pods_metric(k8s_emulator: Emulator) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]},
            },
        },
    }
    assert (
        _create(k8s_emulator, "/apis/apps/v1/namespaces/default/deployments", deployment)[0] == 201
    )
    metric = {
        "type": "Pods",
        "pods": {
            "metric": {"name": "queue"},
            "target": {"type": "AverageValue", "averageValue": "2"},
        },
    }
    hpa = _hpa("web", metrics=[metric], behavior={"scaleDown": {"stabilizationWindowSeconds": 0}})
    assert _create(k8s_emulator, HPAS, hpa)[0] == 201
    k8s_emulator.set_pod_metric("default", "queue", 7, "app=web")
    # One pod at 7 against 2: ceil(3.5) = 4 > max 3.
    eventually(lambda: _replicas(k8s_emulator, "web") == 3, what="scale up to max 3")
    status = eventually(
        lambda: next(
            (
                h["status"]
                for h in k8s_emulator.objects("horizontalpodautoscalers", "autoscaling")
                if h.get("status", {}).get("desiredReplicas") == 3
            ),
            None,
        ),
        what="HPA status",
    )
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["ScalingActive"]["reason"] == "ValidMetricFound"
    assert conditions["AbleToScale"]["status"] == "True"
    events = [
        e["message"]
        for e in k8s_emulator.objects("events", namespace="default")
        if e["reason"] == "SuccessfulRescale"
    ]
    assert "New size: 3; reason: pods metric queue above target" in events
    k8s_emulator.set_pod_metric("default", "queue", 0, "app=web")
    eventually(lambda: _replicas(k8s_emulator, "web") == 1, what="scale down to min 1")


# --- CustomResourceDefinitions -----------------------------------------------------------------


def test_a_crd_serves_its_resource_once_established(
    api: client.ApiClient, k8s_emulator: Emulator
) -> None:
    ext = client.ApiextensionsV1Api(api)
    with pytest.raises(ApiException) as missing:
        client.CustomObjectsApi(api).list_namespaced_custom_object(
            "keda.sh", "v1alpha1", "default", "scaledobjects"
        )
    assert missing.value.status == 404
    ext.create_custom_resource_definition(keda_scaledobject_crd())
    crd = eventually(
        lambda: next(
            (
                c
                for c in k8s_emulator.objects("customresourcedefinitions", "apiextensions.k8s.io")
                if any(
                    x["type"] == "Established" and x["status"] == "True"
                    for x in c.get("status", {}).get("conditions", [])
                )
            ),
            None,
        ),
        what="the CRD established",
    )
    assert crd["status"]["storedVersions"] == ["v1alpha1"]
    groups = {g.name: g for g in client.ApisApi(api).get_api_versions().groups}
    assert groups["keda.sh"].preferred_version.group_version == "keda.sh/v1alpha1"
    resources = client.CustomObjectsApi(api).get_api_resources("keda.sh", "v1alpha1").resources
    assert [r.name for r in resources] == ["scaledobjects", "scaledobjects/status"]
    custom = client.CustomObjectsApi(api)
    created = custom.create_namespaced_custom_object(
        "keda.sh",
        "v1alpha1",
        "default",
        "scaledobjects",
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"name": "web"}},
        },
    )
    assert created["metadata"]["generation"] == 1
    ext.delete_custom_resource_definition("scaledobjects.keda.sh")
    eventually(
        lambda: "keda.sh" not in {g.name for g in client.ApisApi(api).get_api_versions().groups},
        what="keda.sh no longer served",
    )
    # Its custom resources went with it: the resource is unknown again.
    with pytest.raises(ApiException) as gone:
        custom.get_namespaced_custom_object(
            "keda.sh", "v1alpha1", "default", "scaledobjects", "web"
        )
    assert gone.value.status == 404


def test_a_crd_whose_name_does_not_match_is_invalid(api: client.ApiClient) -> None:
    crd = keda_scaledobject_crd()
    crd["metadata"]["name"] = "scaledobject.keda.sh"
    with pytest.raises(ApiException) as caught:
        client.ApiextensionsV1Api(api).create_custom_resource_definition(crd)
    assert caught.value.status == 422
    message = json.loads(caught.value.body)["message"]
    assert message == (
        'CustomResourceDefinition.apiextensions.k8s.io "scaledobject.keda.sh" is invalid: '
        'metadata.name: Invalid value: "scaledobject.keda.sh": must be '
        'spec.names.plural+"."+spec.group'
    )
