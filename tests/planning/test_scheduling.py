"""The planner plans only on nodes the deployment's pods may go to: NoSchedule/NoExecute
taints all tolerated, node selector matched, not cordoned (kube-scheduler's filters), and
says which nodes it left out and which form field lets the pods there.

Llama 3.1 8B at 8192 tokens x 1 sequence fits one H100 (test_known_cases.py's numbers:
14.96 GiB of weights + 1 GiB of KV, far below 71.68 GiB usable), so every refusal here is
the node filter's, never the memory arithmetic's.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from budcluster.hardware.inventory import NodeInventory
from budcluster.planning import NoFeasiblePlan, PlanRequest, plan
from budcluster.planning.scheduling import Toleration
from tests.planning.test_known_cases import facts, gpu_node

H100 = "NVIDIA H100 80GB HBM3"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}


def _node(
    name: str = "gpu-a",
    taints: list[dict[str, str]] | None = None,
    unschedulable: bool = False,
    labels: dict[str, str] | None = None,
) -> NodeInventory:
    return NodeInventory.model_validate(
        {
            **gpu_node(2, H100, 81559).model_dump(),
            "node_name": name,
            "scheduling": {
                "taints": taints or [],
                "unschedulable": unschedulable,
                "labels": labels or {"kubernetes.io/hostname": name},
            },
        }
    )


def _plan(nodes: list[NodeInventory], **request: Any):  # type: ignore[no-untyped-def]
    return plan(
        facts("Llama-3.1-8B-Instruct"),
        [NodeInventory.model_validate(n.model_dump()) for n in nodes],
        PlanRequest(device="cuda", max_model_len=8192, concurrency=1, replicas=1, **request),
    )


def test_an_untolerated_noschedule_taint_leaves_the_only_gpu_node_out_naming_the_field() -> None:
    with pytest.raises(NoFeasiblePlan) as refused:
        _plan([_node(taints=[GPU_TAINT])])
    assert refused.value.reason == (
        "no node takes the deployment's pods: gpu-a: untolerated taint(s) "
        "nvidia.com/gpu=present:NoSchedule"
    )
    assert refused.value.fixes == [
        "set tolerations (deploy-model's tolerations, the catalogue's hardware.tolerations) "
        "to tolerate the taints, e.g. [{key: nvidia.com/gpu, operator: Equal, value: present, "
        "effect: NoSchedule}]"
    ]


@pytest.mark.parametrize(
    "toleration",
    [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"},
        {"key": "nvidia.com/gpu", "operator": "Exists"},
        {"key": "nvidia.com/gpu", "value": "present"},  # Equal is the default operator
        {"operator": "Exists"},  # an empty key with Exists tolerates every taint
        {"operator": "Exists", "effect": "NoSchedule"},
    ],
)
def test_a_matching_toleration_lets_the_plan_onto_the_tainted_node(
    toleration: dict[str, Any],
) -> None:
    result = _plan([_node(taints=[GPU_TAINT])], tolerations=[toleration])
    assert {p.node_name for p in result.placements} == {"gpu-a"}


@pytest.mark.parametrize(
    ("toleration", "why"),
    [
        ({"key": "nvidia.com/gpu", "value": "absent"}, "Equal compares the value"),
        ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}, "other effect"),
        ({"key": "nvidia.com/gpu"}, "Equal with no value matches only an empty value"),
        ({"key": "amd.com/gpu", "operator": "Exists"}, "other key"),
    ],
)
def test_a_toleration_that_does_not_match_leaves_the_node_out(
    toleration: dict[str, Any], why: str
) -> None:
    with pytest.raises(NoFeasiblePlan, match="untolerated taint"):
        _plan([_node(taints=[GPU_TAINT])], tolerations=[toleration])


def test_noexecute_excludes_and_needs_its_own_effect_but_prefernoschedule_does_not() -> None:
    evicting = {"key": "maintenance", "effect": "NoExecute"}
    with pytest.raises(NoFeasiblePlan, match=r"untolerated taint\(s\) maintenance:NoExecute"):
        _plan(
            [_node(taints=[evicting])],
            tolerations=[{"key": "maintenance", "operator": "Exists", "effect": "NoSchedule"}],
        )
    assert _plan(
        [_node(taints=[evicting])],
        tolerations=[
            {
                "key": "maintenance",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 60,
            }
        ],
    ).placements
    # PreferNoSchedule only lowers the node's score in kube-scheduler; nothing is excluded.
    soft = {"key": "spot", "value": "true", "effect": "PreferNoSchedule"}
    assert {p.node_name for p in _plan([_node(taints=[soft])]).placements} == {"gpu-a"}


def test_every_hard_taint_must_be_tolerated() -> None:
    taints = [GPU_TAINT, {"key": "team", "value": "research", "effect": "NoSchedule"}]
    with pytest.raises(NoFeasiblePlan) as refused:
        _plan([_node(taints=taints)], tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists"}])
    assert refused.value.reason.endswith("gpu-a: untolerated taint(s) team=research:NoSchedule")


def test_a_cordoned_node_is_left_out_and_named() -> None:
    with pytest.raises(NoFeasiblePlan) as refused:
        _plan([_node(unschedulable=True)])
    assert refused.value.reason == (
        "no node takes the deployment's pods: gpu-a: cordoned (spec.unschedulable)"
    )
    assert refused.value.fixes == [
        "uncordon gpu-a (kubectl uncordon) and run detect-nodes, if it should take new pods"
    ]
    # The NodeUnschedulable filter lets a pod that tolerates the cordon's taint through.
    tolerated = {"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}
    assert _plan([_node(unschedulable=True)], tolerations=[tolerated]).placements


def test_the_plan_goes_to_the_node_the_pods_may_use_and_says_which_it_left_out() -> None:
    nodes = [_node("gpu-a", taints=[GPU_TAINT]), _node("gpu-b", unschedulable=True), _node("gpu-c")]
    result = _plan(nodes)
    assert {p.node_name for p in result.placements} == {"gpu-c"}
    assert result.decisions[-1] == (
        "left out, the pods cannot go there: gpu-a: untolerated taint(s) "
        "nvidia.com/gpu=present:NoSchedule; gpu-b: cordoned (spec.unschedulable)"
    )


def test_the_node_selector_picks_the_pool() -> None:
    nodes = [
        _node("gpu-a", labels={"pool": "training"}),
        _node("gpu-b", labels={"pool": "serving", "zone": "z1"}),
    ]
    result = _plan(nodes, node_selector={"pool": "serving"})
    assert {p.node_name for p in result.placements} == {"gpu-b"}
    with pytest.raises(NoFeasiblePlan) as refused:
        _plan(nodes, node_selector={"pool": "serving", "zone": "z2"})
    assert refused.value.reason == (
        "no node takes the deployment's pods: "
        "gpu-a: node_selector pool does not match (the node has pool=training); "
        "node_selector zone does not match (the node has no such label); "
        "gpu-b: node_selector zone does not match (the node has zone=z1)"
    )
    assert refused.value.fixes[0].startswith("set node_selector (deploy-model's node_selector")


def test_a_selector_cannot_be_checked_on_a_node_without_recorded_labels() -> None:
    """Inventories from before scheduling was recorded (or hosts) have no labels."""
    bare = gpu_node(2, H100, 81559)
    assert _plan([bare]).placements  # no selector: nothing to check
    with pytest.raises(NoFeasiblePlan, match="labels were not recorded"):
        _plan([bare], node_selector={"pool": "serving"})


def test_when_the_usable_nodes_are_too_small_the_left_out_ones_are_named_too() -> None:
    """Llama 3.1 70B needs TP 2 of H100s (test_known_cases.py): the untainted node has one
    GPU, the tainted one two."""
    small = NodeInventory.model_validate(
        {**gpu_node(1, H100, 81559).model_dump(), "node_name": "gpu-small", "scheduling": {}}
    )
    with pytest.raises(NoFeasiblePlan) as refused:
        plan(
            facts("Llama-3.1-70B-Instruct"),
            [
                NodeInventory.model_validate(small.model_dump()),
                NodeInventory.model_validate(_node(taints=[GPU_TAINT]).model_dump()),
            ],
            PlanRequest(device="cuda", max_model_len=8192, concurrency=1),
        )
    assert refused.value.reason.endswith(
        "; nodes the pods cannot go to, left out: gpu-a: untolerated taint(s) "
        "nvidia.com/gpu=present:NoSchedule"
    )
    assert refused.value.fixes[0].startswith("set tolerations")


@pytest.mark.parametrize(
    ("toleration", "says"),
    [
        ({"operator": "Equal", "value": "x"}, "operator must be Exists when key is empty"),
        (
            {"key": "a", "effect": "NoSchedule", "tolerationSeconds": 5},
            "only allowed with effect NoExecute",
        ),
        ({"key": "a", "operator": "Exists", "value": "v"}, "must be empty with operator Exists"),
        ({"key": "a", "operator": "In"}, "'Equal' or 'Exists'"),
        ({"key": "a", "effect": "Always"}, "'NoSchedule', 'PreferNoSchedule' or 'NoExecute'"),
        ({"key": "UPPER.example.com/x"}, "prefix that is not a lowercase DNS subdomain"),
        ({"key": "a/b/c"}, "more than one '/'"),
        ({"key": "-a"}, "name part"),
        ({"key": "a", "value": "x" * 64}, "must be empty or 1-63"),
        ({"key": "a", "effect": "NoExecute", "tolerationSeconds": -1}, "from 0 to"),
        ({"key": "a", "effect": "NoExecute", "tolerationSeconds": 1.5}, "whole number"),
        ({"key": "a", "unknown": 1}, "Extra inputs are not permitted"),
    ],
)
def test_bad_tolerations_are_refused_like_the_api_server_does(
    toleration: dict[str, Any], says: str
) -> None:
    with pytest.raises(ValidationError, match=says):
        Toleration.model_validate(toleration)


def test_a_toleration_renders_as_a_pod_spec_holds_it() -> None:
    toleration = Toleration.model_validate(
        {"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}
    )
    assert toleration.manifest() == {
        "key": "k",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 30,
    }
    assert Toleration.model_validate({"operator": "Exists"}).manifest() == {"operator": "Exists"}
