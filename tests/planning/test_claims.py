"""Placement claims, the pure half: what a plan claims, and planning with claims counted.

Constants as in test_known_cases.py: one H100 gives 81559 MiB x 0.90 = 71.68 GiB usable;
Llama 3.1 70B at one sequence fits TP 2 (68.96 GiB per device) and not TP 1.
"""

from __future__ import annotations

import pytest

from budcluster.hardware.inventory import DevicesInUse, NodeInventory
from budcluster.planning import NoFeasiblePlan, PlanRequest, plan
from budcluster.planning.claims import claimed_devices, with_claimed_devices
from tests.planning.test_extra_args import _cpu_node
from tests.planning.test_known_cases import facts, gpu_node

H100 = "NVIDIA H100 80GB HBM3"
ONE_SEQUENCE = PlanRequest(max_model_len=8192, concurrency=1, device="cuda")


def _node(name: str, held: int = 0, holder: str | None = None) -> NodeInventory:
    node = gpu_node(8, H100, 81559).model_copy(update={"node_name": name})
    if held:
        in_use = [DevicesInUse(resource="nvidia.com/gpu", count=held, holder=holder)]
        node = node.model_copy(update={"devices_in_use": in_use})
    return node


def test_a_plan_claims_its_devices_per_node_and_resource() -> None:
    """TP 2 with 2 replicas on an 8-GPU node takes 4 nvidia.com/gpu there."""
    request = PlanRequest(max_model_len=8192, concurrency=1, device="cuda", replicas=2)
    result = plan(facts("Llama-3.1-70B-Instruct"), [_node("a")], request)
    assert result.tensor_parallel_size == 2 and result.replicas == 2
    assert claimed_devices(result, [_node("a")]) == {"a": {"nvidia.com/gpu": 4}}


def test_a_cpu_plan_claims_nothing() -> None:
    cpu_only = _cpu_node()
    result = plan(facts("Qwen2.5-0.5B-Instruct"), [cpu_only], PlanRequest(device="cpu"))
    assert claimed_devices(result, [cpu_only]) == {}


def test_claims_add_to_the_detected_devices_of_their_node_only() -> None:
    nodes = [_node("a", held=4), _node("b")]
    counted = with_claimed_devices(
        nodes,
        {"x": {"a": {"nvidia.com/gpu": 2}}, "y": {"a": {"nvidia.com/gpu": 1}, "gone": {"r": 3}}},
    )
    assert counted[0].devices_held("nvidia.com/gpu") == 4
    assert counted[0].devices_claimed("nvidia.com/gpu") == 2 + 1
    assert counted[1] is nodes[1]
    # The inputs are not changed: the detected inventory is what gets recorded.
    assert nodes[0].devices_claimed("nvidia.com/gpu") == 0


def test_the_race_a_claim_on_the_last_free_gpus_sends_the_second_plan_elsewhere() -> None:
    """Node a has 6 of 8 GPUs bound, node b 4 (the planner packs onto the fuller node). Without claims both plans take
    a's last 2 GPUs (the bug); with the first plan's claim counted the second goes to b."""
    llama = facts("Llama-3.1-70B-Instruct")
    nodes = [_node("a", held=6), _node("b", held=4)]
    first = plan(llama, nodes, ONE_SEQUENCE)
    first_node = first.placements[0].node_name
    blind = plan(llama, nodes, ONE_SEQUENCE)
    assert blind.placements[0].node_name == first_node  # what two planners did before
    claims = {"first": claimed_devices(first, nodes)}
    second = plan(llama, with_claimed_devices(nodes, claims), ONE_SEQUENCE)
    assert second.placements[0].node_name != first_node


def test_a_claim_is_not_freed_by_a_redeploy_of_the_same_model_name() -> None:
    """``replacing`` (the request's served model name) frees the devices of the pods
    serving that name; a claim of another deployment serving the same name stays counted.
    6 GPUs held by the redeployed runtime's own pods are free again, 6 claimed leave 2."""
    llama = facts("Llama-3.1-70B-Instruct")
    node = _node("a", held=6, holder="llama")
    request = PlanRequest(
        max_model_len=8192, concurrency=1, device="cuda", served_model_name="llama"
    )
    assert plan(llama, [node], request).replicas == 4  # 8 free // TP 2
    claimed = with_claimed_devices([node], {"other": {"a": {"nvidia.com/gpu": 6}}})
    assert plan(llama, claimed, request).replicas == 1


def test_claims_add_to_devices_the_tools_flag_busy_on_hosts() -> None:
    """Hosts: no pods, 2 of 8 GPUs flagged in use by a running engine. A claim of 4 is
    added to them (6 taken, 2 free), not maxed with them (which would leave 4 free)."""
    node = gpu_node(8, H100, 81559)
    gpus = [gpu.model_copy(update={"in_use": gpu.index < 2}) for gpu in node.nvidia.gpus]  # type: ignore[union-attr]
    node = node.model_copy(update={"nvidia": node.nvidia.model_copy(update={"gpus": gpus})})  # type: ignore[union-attr]
    claimed = with_claimed_devices([node], {"other": {"gpu-node": {"nvidia.com/gpu": 4}}})
    result = plan(facts("Llama-3.1-70B-Instruct"), claimed, ONE_SEQUENCE)
    assert result.replicas == 1
    assert [p.device_indices for p in result.placements] == [[6, 7]]
    with pytest.raises(NoFeasiblePlan):
        plan(
            facts("Llama-3.1-70B-Instruct"),
            with_claimed_devices([node], {"other": {"gpu-node": {"nvidia.com/gpu": 5}}}),
            ONE_SEQUENCE,
        )
