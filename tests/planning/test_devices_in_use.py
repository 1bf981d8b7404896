"""Devices that pods already hold (``NodeInventory.devices_in_use``, from Kubernetes) are not
free. Each docstring carries the arithmetic; constants as in test_known_cases.py:
Llama 3.1 70B is 131.42 GiB of bf16 weights, KV 327680 B per token, one H100 gives
81559 MiB x 0.90 = 71.68 GiB usable, one Gaudi2 98304 MiB x 0.90 = 86.40 GiB.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from budcluster.hardware.inventory import NodeInventory
from budcluster.hardware.merge import merge_fragments
from budcluster.hardware.node_labels import parse_node_labels, read_label_sets
from budcluster.planning import NoFeasiblePlan, PlanRequest, plan
from tests.planning.test_known_cases import facts, gaudi2_node, gpu_node

H100 = "NVIDIA H100 80GB HBM3"


def _held(node: NodeInventory, *entries: dict[str, Any]) -> NodeInventory:
    return NodeInventory.model_validate({**node.model_dump(), "devices_in_use": list(entries)})


def _gpus(held: int, holder: str | None = None) -> NodeInventory:
    node = gpu_node(8, H100, 81559)
    return _held(node, {"resource": "nvidia.com/gpu", "count": held, "holder": holder})


def test_two_free_of_eight_hold_one_tp2_replica() -> None:
    """6 of 8 H100s requested by other pods leave 2. One sequence: TP 2 needs
    65.71 + 2 + 1.25 = 68.96 <= 71.68 GiB per device, so it fits, and auto replicas are
    2 free // TP 2 = 1. The lowest indices are counted as the taken ones."""
    result = plan(
        facts("Llama-3.1-70B-Instruct"), [_gpus(6)], PlanRequest(max_model_len=8192, concurrency=1)
    )
    assert result.tensor_parallel_size == 2 and result.replicas == 1
    assert [p.device_indices for p in result.placements] == [[6, 7]]
    assert result.resources["limits"]["nvidia.com/gpu"] == "2"
    assert result.decisions[0] == (
        f"device kind cuda: 2x {H100} free on gpu-node (6 more nvidia.com/gpu in use by other pods)"
    )


def test_a_tp4_model_does_not_fit_two_free_gpus_and_says_they_are_in_use() -> None:
    """16 sequences need 40.00 GiB of KV: TP 2 = 65.71 + 2 + 20.00 = 87.71 > 71.68 (16.0 GiB
    short), TP 4 = 44.85 fits, but only 2 of the 8 GPUs are free."""
    with pytest.raises(NoFeasiblePlan) as caught:
        plan(
            facts("Llama-3.1-70B-Instruct"),
            [_gpus(6)],
            PlanRequest(max_model_len=8192, concurrency=16, device="cuda"),
        )
    error = caught.value
    in_use = "devices exist but are in use: gpu-node has 8 nvidia.com/gpu, 6 in use by other pods"
    assert in_use in str(error)
    assert error.closest[0].devices.startswith(f"2x {H100}")
    assert error.closest[0].tensor_parallel_size == 2
    assert "16.0 GiB per device short" in error.closest[0].lacks
    assert error.fixes[0].startswith("free nvidia.com/gpu on gpu-node: tear down a deployment")
    # Without the pods, the same request is TP 4 with 2 replicas (test_known_cases).
    free = plan(facts("Llama-3.1-70B-Instruct"), [_gpus(0)], PlanRequest(concurrency=16))
    assert free.tensor_parallel_size == 4 and free.replicas == 2


def test_asking_for_more_replicas_than_free_devices_names_the_held_ones() -> None:
    """2 free GPUs hold one TP 2 replica; two need 4."""
    with pytest.raises(
        NoFeasiblePlan, match=re.escape("gpu-node has 2 free (6 more nvidia.com/gpu in use")
    ):
        plan(
            facts("Llama-3.1-70B-Instruct"),
            [_gpus(6)],
            PlanRequest(max_model_len=8192, concurrency=1, replicas=2),
        )


def test_every_gpu_held_is_no_plan_naming_the_node_and_count() -> None:
    with pytest.raises(NoFeasiblePlan) as caught:
        plan(facts("Llama-3.1-8B-Instruct"), [_gpus(8)], PlanRequest(device="cuda"))
    assert (
        "fits no cuda device (no such devices are free in the inventories); devices exist "
        "but are in use: gpu-node has 8 nvidia.com/gpu, 8 in use by other pods"
    ) in str(caught.value)
    assert not caught.value.closest


def test_a_redeploy_counts_its_own_pods_devices_as_free() -> None:
    """The 6 GPUs are held by the runtime serving 'chat'. Replanning 'chat' (its pods stop
    first: Recreate) sees all 8: TP 4 x 2 replicas. Another name sees 2 free."""
    node = _gpus(6, holder="chat")
    request = PlanRequest(max_model_len=8192, concurrency=16, served_model_name="chat")
    result = plan(facts("Llama-3.1-70B-Instruct"), [node], request)
    assert result.tensor_parallel_size == 4 and result.replicas == 2
    with pytest.raises(NoFeasiblePlan, match="6 in use by other pods"):
        plan(
            facts("Llama-3.1-70B-Instruct"),
            [node],
            request.model_copy(update={"served_model_name": "other", "device": "cuda"}),
        )


def test_busy_flags_and_pod_requests_are_not_counted_twice() -> None:
    """nvidia-smi flags GPUs 0 and 1 busy. Pods requesting 2 are most likely those two: in
    use = max(2 flagged, 2 requested) = 2, so 6 stay free (1.25 GiB KV: TP 2 x 3 replicas).
    Pods requesting 3: in use = 3, the one beyond the flagged is the lowest unflagged (GPU 2),
    so GPUs 3-7 are free: 5 // 2 = 2 replicas."""
    node = gpu_node(8, H100, 81559)
    flagged = node.model_dump()
    for gpu in flagged["nvidia"]["gpus"][:2]:
        gpu["in_use"] = True
    request = PlanRequest(max_model_len=8192, concurrency=1)
    two = plan(
        facts("Llama-3.1-70B-Instruct"),
        [_held(NodeInventory.model_validate(flagged), {"resource": "nvidia.com/gpu", "count": 2})],
        request,
    )
    assert [p.device_indices for p in two.placements] == [[2, 3], [4, 5], [6, 7]]
    three = plan(
        facts("Llama-3.1-70B-Instruct"),
        [_held(NodeInventory.model_validate(flagged), {"resource": "nvidia.com/gpu", "count": 3})],
        request,
    )
    assert [p.device_indices for p in three.placements] == [[3, 4], [5, 6]]


def test_a_held_mig_profile_leaves_only_the_smaller_slices(hw: Path) -> None:
    """Mixed strategy: one 3g.40gb, one 2g.20gb, two 1g.10gb. Llama-8B needs 17.96 GiB and
    only the 3g.40gb slice (35.44 GiB usable) holds it; a pod requesting
    nvidia.com/mig-3g.40gb: 1 takes it, so nothing fits and the error says why."""
    name = "nfd-gfd_h100-80gb-hbm3_amd-epyc-milan_mig-mixed-node-labels.json"
    labels = next(iter(read_label_sets((hw / "k8s-node-labels" / name).read_text()).values()))
    node = NodeInventory.model_validate(merge_fragments(parse_node_labels(labels)))
    held = _held(node, {"resource": "nvidia.com/mig-3g.40gb", "count": 1})
    with pytest.raises(NoFeasiblePlan) as caught:
        plan(facts("Llama-3.1-8B-Instruct"), [held], PlanRequest(max_model_len=8192, device="cuda"))
    assert "has 1 nvidia.com/mig-3g.40gb, 1 in use by other pods" in str(caught.value)
    # The other profiles are untouched: Qwen 0.5B still takes a 1g.10gb slice.
    assert plan(facts("Qwen2.5-0.5B-Instruct"), [held]).placements[0].mig_profile == "1g.10gb"


def test_held_gaudi_cards_leave_the_others() -> None:
    """4 of 8 Gaudi2 cards requested by pods; 16 sequences need TP 4 (TP 2 = 87.71 > 86.40),
    which the 4 free cards (4-7) hold once."""
    node = _held(gaudi2_node(), {"resource": "habana.ai/gaudi", "count": 4})
    result = plan(
        facts("Llama-3.1-70B-Instruct"), [node], PlanRequest(max_model_len=8192, concurrency=16)
    )
    assert result.device_kind == "hpu" and result.tensor_parallel_size == 4
    assert result.replicas == 1
    assert result.host_env["HABANA_VISIBLE_DEVICES"] == "4,5,6,7"


def test_devices_in_use_survive_a_json_round_trip() -> None:
    node = _gpus(6, holder="chat")
    again = NodeInventory.model_validate_json(node.model_dump_json())
    assert again.devices_held("nvidia.com/gpu") == 6
    assert again.devices_held("nvidia.com/gpu", replacing="chat") == 0
    assert again.devices_held("habana.ai/gaudi") == 0


def test_asked_for_replicas_go_to_the_node_with_room_for_them() -> None:
    """Llama 3.1 8B (14.96 GiB of bf16 weights) fits one H100 at TP 1. Node a has 1 free
    GPU (7 held), node b has 8: two replicas need 2 free // TP 1, so only b can hold
    them, although a sorts first and is as good a fit for one replica."""
    full = _gpus(7).model_copy(update={"node_name": "a-node"})
    empty = gpu_node(8, H100, 81559).model_copy(update={"node_name": "b-node"})
    model = facts("Llama-3.1-8B-Instruct")
    request = PlanRequest(max_model_len=8192, concurrency=1, replicas=2)
    result = plan(model, [full, empty], request)
    assert result.tensor_parallel_size == 1 and result.replicas == 2
    assert {p.node_name for p in result.placements} == {"b-node"}
    one = plan(model, [full, empty], PlanRequest(max_model_len=8192, concurrency=1, replicas=1))
    assert [p.node_name for p in one.placements] == ["a-node"]  # best fit is unchanged
