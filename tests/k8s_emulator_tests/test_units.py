"""The emulator's pure pieces without a server: patches, selectors, scheduler message."""

from __future__ import annotations

from typing import Any

import pytest

from tests.k8s_emulator.admission import validate
from tests.k8s_emulator.errors import ApiError
from tests.k8s_emulator.patching import json_merge_patch, json_patch, strategic_merge_patch
from tests.k8s_emulator.resources import ResourceRegistry
from tests.k8s_emulator.scheduler import failed_scheduling_message, filter_reasons, tolerates
from tests.k8s_emulator.selectors import labels_match, parse_field_selector, parse_label_selector


def test_strategic_merge_uses_merge_keys_and_directives() -> None:
    live = {
        "containers": [
            {
                "name": "a",
                "image": "x:1",
                "ports": [{"containerPort": 80}],
                "env": [{"name": "K", "value": "1"}],
            },
            {"name": "b", "image": "y:1"},
        ],
        "tolerations": [{"key": "t1"}],
        "args": ["--one"],
    }
    patch = {
        "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
        "containers": [
            {"name": "a", "ports": [{"containerPort": 81}], "env": [{"name": "K", "value": "2"}]},
            {"name": "b", "$patch": "delete"},
        ],
        "tolerations": [{"key": "t2"}],
        "args": ["--two"],
    }
    merged = strategic_merge_patch(live, patch)
    assert merged["containers"] == [
        {
            "name": "a",
            "image": "x:1",
            "ports": [{"containerPort": 80}, {"containerPort": 81}],
            "env": [{"name": "K", "value": "2"}],
        }
    ]
    assert merged["tolerations"] == [{"key": "t2"}]  # atomic in the real API types
    assert merged["args"] == ["--two"]
    assert strategic_merge_patch({"a": {"b": 1}}, {"a": {"$patch": "replace", "c": 2}}) == {
        "a": {"c": 2}
    }


def test_json_merge_and_json_patch() -> None:
    assert json_merge_patch({"a": 1, "b": {"c": 2}}, {"a": None, "b": {"d": 3}}) == {
        "b": {"c": 2, "d": 3}
    }
    doc = {"spec": {"list": [1, 2]}}
    out = json_patch(
        doc,
        [
            {"op": "add", "path": "/spec/list/-", "value": 3},
            {"op": "remove", "path": "/spec/list/0"},
            {"op": "test", "path": "/spec/list", "value": [2, 3]},
        ],
    )
    assert out == {"spec": {"list": [2, 3]}} and doc == {"spec": {"list": [1, 2]}}
    with pytest.raises(ApiError) as failed:
        json_patch(doc, [{"op": "test", "path": "/spec/list", "value": []}])
    assert failed.value.code == 422


def test_label_and_field_selectors() -> None:
    reqs = parse_label_selector("app in (a,b),tier!=db,!legacy,env")
    assert labels_match(reqs, {"app": "a", "env": "x"})
    assert not labels_match(reqs, {"app": "a", "env": "x", "legacy": "1"})
    assert not labels_match(reqs, {"app": "c", "env": "x"})
    match = parse_field_selector("pods", "spec.nodeName=n1,status.phase!=Failed")
    assert match({"metadata": {}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}})
    assert not match({"metadata": {}, "spec": {"nodeName": "n1"}, "status": {"phase": "Failed"}})
    with pytest.raises(ApiError):
        parse_field_selector("configmaps", "data.x=1")


def test_scheduler_message_and_tolerations() -> None:
    message = failed_scheduling_message(
        {
            "a": ["Insufficient nvidia.com/gpu"],
            "b": ["node(s) didn't match Pod's node affinity/selector"],
            "c": ["node(s) didn't match Pod's node affinity/selector"],
        }
    )
    assert message == (
        "0/3 nodes are available: 1 Insufficient nvidia.com/gpu, 2 node(s) didn't match Pod's "
        "node affinity/selector. preemption: 0/3 nodes are available: 1 No preemption victims "
        "found for incoming pod, 2 Preemption is not helpful for scheduling."
    )
    taint = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    assert tolerates([{"key": "nvidia.com/gpu", "operator": "Exists"}], taint)
    assert tolerates([{"operator": "Exists"}], taint)
    assert not tolerates([{"key": "nvidia.com/gpu", "value": "other"}], taint)
    assert not tolerates(
        [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}], taint
    )


def test_tolerations_match_like_toleratestaint() -> None:
    """Toleration.ToleratesTaint (k8s.io/api core/v1): the empty operator is Equal, an
    empty value equals an absent one, an unknown operator tolerates nothing."""
    bare = {"key": "dedicated", "effect": "NoSchedule"}
    assert tolerates([{"key": "dedicated", "effect": "NoSchedule"}], bare)
    assert tolerates([{"key": "dedicated", "operator": "Equal", "value": ""}], bare)
    assert not tolerates([{"key": "dedicated", "value": "gpu"}], bare)
    assert not tolerates([{"key": "dedicated", "operator": "In"}], bare)
    assert tolerates([{"operator": "Exists", "effect": "NoSchedule"}], bare)
    assert not tolerates([{"operator": "Exists", "effect": "NoExecute"}], bare)


def test_filter_skips_prefer_no_schedule_and_honours_a_tolerated_cordon() -> None:
    pod: dict[str, Any] = {"metadata": {"uid": "p"}, "spec": {"containers": [{"name": "c"}]}}
    node: dict[str, Any] = {
        "metadata": {"name": "n", "labels": {}},
        "spec": {"taints": [{"key": "spot", "effect": "PreferNoSchedule"}]},
        "status": {"allocatable": {"cpu": "4", "pods": "110"}},
    }
    assert filter_reasons(pod, node, []) == []
    node["spec"]["unschedulable"] = True
    assert filter_reasons(pod, node, []) == ["node(s) were unschedulable"]
    pod["spec"]["tolerations"] = [
        {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert filter_reasons(pod, node, []) == []
    node["spec"]["taints"].append({"key": "gpu", "value": "yes", "effect": "NoExecute"})
    assert filter_reasons(pod, node, []) == ["node(s) had untolerated taint {gpu: yes}"]


@pytest.mark.parametrize(
    ("toleration", "field", "says"),
    [
        ({"operator": "Equal", "value": "x"}, "operator", "operator must be Exists when `key`"),
        ({"key": "a", "effect": "NoSchedule", "tolerationSeconds": 5}, "effect", "NoExecute"),
        ({"key": "a", "operator": "Exists", "value": "v"}, "operator", "value must be empty"),
        ({"key": "a", "operator": "In"}, "operator", 'supported values: "Equal", "Exists"'),
        ({"key": "a", "effect": "Never"}, "effect", 'Unsupported value: "Never"'),
        ({"key": "bad key"}, "key", "name part must consist"),
    ],
)
def test_api_server_refuses_bad_tolerations(
    toleration: dict[str, Any], field: str, says: str
) -> None:
    """ValidateTolerations (pkg/apis/core/validation): a 422 naming the toleration's field."""
    rt = ResourceRegistry.for_flavour("kubernetes").get("pods")
    pod = {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i:1"}], "tolerations": [toleration]},
    }
    with pytest.raises(ApiError) as refused:
        validate(rt, pod)
    assert refused.value.code == 422
    assert refused.value.details is not None
    causes = refused.value.details["causes"]
    assert [c["field"] for c in causes] == [f"spec.tolerations[0].{field}"]
    assert says in causes[0]["message"]


def test_api_server_admits_valid_tolerations() -> None:
    rt = ResourceRegistry.for_flavour("kubernetes").get("pods")
    tolerations = [
        {"operator": "Exists"},
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute", "tolerationSeconds": 300},
    ]
    pod = {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i:1"}], "tolerations": tolerations},
    }
    validate(rt, pod)
