"""The emulator's pure pieces without a server: patches, selectors, scheduler message."""

from __future__ import annotations

from typing import Any

import pytest

from tests.k8s_emulator.admission import validate
from tests.k8s_emulator.clone import clone
from tests.k8s_emulator.errors import ApiError
from tests.k8s_emulator.patching import json_merge_patch, json_patch, strategic_merge_patch
from tests.k8s_emulator.resources import ResourceRegistry
from tests.k8s_emulator.scheduler import (
    bound_pods_by_node,
    choose_node,
    failed_scheduling_message,
    filter_reasons,
    named_nodes,
    tolerates,
)
from tests.k8s_emulator.selectors import labels_match, parse_field_selector, parse_label_selector
from tests.k8s_emulator.store import Store


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


def _node(name: str, gpus: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {}},
        "spec": {},
        "status": {"allocatable": {"cpu": "8", "pods": "110", "nvidia.com/gpu": str(gpus)}},
    }


def _pinned_pod(uid: str, node: str | None, gpus: int) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [{"name": "c", "resources": {"requests": {"nvidia.com/gpu": str(gpus)}}}]
    }
    if node is not None:
        spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchFields": [
                                {"key": "metadata.name", "operator": "In", "values": [node]}
                            ]
                        }
                    ]
                }
            }
        }
    return {"metadata": {"uid": uid, "name": uid}, "spec": spec, "status": {"phase": "Pending"}}


def test_a_pod_pinned_by_matchfields_is_decided_among_its_named_nodes() -> None:
    """The NodeAffinity PreFilter shortcut (DaemonSet pods) picks what the full pass picks,
    and when the named node cannot take the pod the message still counts every node."""
    nodes = [_node(f"n{i}", gpus=2) for i in range(5)]
    holder = {**_pinned_pod("held", None, 2), "status": {"phase": "Running"}}
    holder["spec"]["nodeName"] = "n3"
    pods = [holder]
    assert choose_node(_pinned_pod("a", "n1", 1), nodes, pods) == ("n1", "")
    node, message = choose_node(_pinned_pod("b", "n3", 1), nodes, pods)
    assert node is None
    assert message.startswith(
        "0/5 nodes are available: 1 Insufficient nvidia.com/gpu, "
        "4 node(s) didn't match Pod's node affinity/selector."
    )
    # A name no node has: nothing fits, every node is counted.
    assert choose_node(_pinned_pod("c", "gone", 1), nodes, pods)[1].startswith(
        "0/5 nodes are available: 5 node(s) didn't match"
    )
    # Same answers with the indexes a scheduling pass keeps.
    by_node, by_name = bound_pods_by_node(pods), {n["metadata"]["name"]: n for n in nodes}
    assert choose_node(_pinned_pod("a", "n1", 1), nodes, pods, by_node, by_name) == ("n1", "")
    assert choose_node(_pinned_pod("b", "n3", 1), nodes, pods, by_node, by_name) == (
        None,
        message,
    )
    assert named_nodes(_pinned_pod("d", None, 1)) is None


def test_bound_pods_by_node_leaves_out_ended_and_unbound_pods() -> None:
    def pod(uid: str, node: str | None, phase: str) -> dict[str, Any]:
        return {"metadata": {"uid": uid}, "spec": {"nodeName": node}, "status": {"phase": phase}}

    pods = [
        pod("run", "a", "Running"),
        pod("pending", "a", "Pending"),
        pod("done", "a", "Succeeded"),
        pod("failed", "b", "Failed"),
        pod("unbound", None, "Pending"),
    ]
    found = bound_pods_by_node(pods)
    assert {k: [p["metadata"]["uid"] for p in v] for k, v in found.items()} == {
        "a": ["run", "pending"]
    }


def test_clone_is_a_deep_independent_copy() -> None:
    original: dict[str, Any] = {"a": [{"b": 1, "c": None}], "d": "x", "e": 1.5, "f": True}
    copied = clone(original)
    assert copied == original
    copied["a"][0]["b"] = 2
    assert original["a"][0]["b"] == 1
    assert clone((1, [2])) == (1, [2])  # other types fall back to copy.deepcopy


def test_store_lists_one_kind_and_forgets_removed_objects() -> None:
    registry = ResourceRegistry.for_flavour("kubernetes")
    store = Store(registry)
    pods, configmaps = registry.get("pods"), registry.get("configmaps")
    store.create(registry.get("namespaces"), None, {"metadata": {"name": "x"}})
    for name in ("b", "a"):
        store.create(
            pods,
            "x",
            {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
        )
    store.create(configmaps, "x", {"metadata": {"name": "a"}})
    assert [p["metadata"]["name"] for p in store.list(pods)] == ["a", "b"]
    assert [c["metadata"]["name"] for c in store.list(configmaps, "x")] == ["a"]
    store.remove(pods, store.find(pods, "x", "a") or {})
    assert [p["metadata"]["name"] for p in store.list(pods)] == ["b"]
