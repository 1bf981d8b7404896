"""Detection counts the accelerators other pods hold, so the planner places replicas only on
free devices and the scheduler can bind them.

On the emulator, whose scheduler fits extended resources against allocatable minus the
requests of non-terminal pods (as kube-scheduler does): a pod holds 6 of the H100 node's 8
GPUs, a finished Job's pod and an unschedulable pod hold none, and a pod holds 3 Gaudi
cards. The pure parts (what a pod requests, who holds it) are checked on hand-made pods.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

import pytest

from budcluster.adapters import kubernetes as kube
from budcluster.hardware.inventory import DevicesInUse, NodeInventory
from budcluster.modelfacts import load_model_facts
from budcluster.planning import NoFeasiblePlan, PlanRequest, plan
from budcluster.targets.base import RolloutSpec, RuntimeState
from budcluster.targets.kubernetes import (
    SERVED_MODEL_ANNOTATION,
    KubernetesTarget,
    KubernetesTimeouts,
    devices_in_use,
    pod_accelerator_requests,
    pods_by_node,
)
from budcluster.targets.kubernetes.node_detection import NodeDetection
from tests.k8s_emulator.emulator import Emulator
from tests.k8s_emulator.fixtures import emulator_factory  # noqa: F401  (pytest fixture)
from tests.k8s_emulator.nodes import gaudi2_node, h100_node
from tests.kubernetes.helpers import MODEL_PATH, MODELS, apply_model_volume, target_for

FAST = KubernetesTimeouts(api_s=10, detect_s=20, ready_s=20, resync_s=1)
OTHERS = "other-team"
Factory = Callable[..., Emulator]


def _pod(name: str, resources: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": OTHERS},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {"name": "main", "image": "busybox", "resources": {"limits": resources}}
            ],
            **spec,
        },
    }


def _wait_pod(
    target: KubernetesTarget, selector: str, done: Callable[[dict[str, Any]], bool]
) -> None:
    kube.wait_for(
        target._api,
        "Pod",
        OTHERS,
        lambda pods: True if pods and done(pods[0]) else None,
        field_selector=selector if selector.startswith("metadata.") else None,
        label_selector=None if selector.startswith("metadata.") else selector,
        timeout_s=10,
        resync_s=0.5,  # the FailedScheduling event is not a change of the pod
    )


def _other_teams_pods(target: KubernetesTarget) -> None:
    """A finished Job's pod that requested 2 GPUs, a running pod holding 6, one asking for 4
    that no node can take (2 are left), and one holding 3 Gaudi cards."""
    warmup = _pod("warmup", {"nvidia.com/gpu": "2"})
    kube.apply_objects(
        target._api,
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OTHERS}},
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": "warmup", "namespace": OTHERS},
                "spec": {"backoffLimit": 0, "template": {"spec": warmup["spec"]}},
            },
        ],
        release="others",
    )
    _wait_pod(
        target,
        "batch.kubernetes.io/job-name=warmup",
        lambda p: p["status"].get("phase") == "Succeeded",
    )
    kube.apply_objects(target._api, [_pod("trainer", {"nvidia.com/gpu": "6"})], release="others")
    _wait_pod(target, "metadata.name=trainer", lambda p: p["status"].get("phase") == "Running")
    kube.apply_objects(
        target._api,
        [_pod("too-big", {"nvidia.com/gpu": "4"}), _pod("gaudi-job", {"habana.ai/gaudi": "3"})],
        release="others",
    )
    _wait_pod(target, "metadata.name=gaudi-job", lambda p: p["status"].get("phase") == "Running")
    _wait_pod(
        target,
        "metadata.name=too-big",
        lambda _p: "FailedScheduling" in _reasons(target, "too-big"),
    )


def _reasons(target: KubernetesTarget, pod: str) -> str:
    return " ".join(e.get("reason", "") for e in kube.events_for(target._api, OTHERS, name=pod))


def _h100(target: KubernetesTarget) -> NodeInventory:
    return next(i for i in target.detect_nodes() if i.node_name == h100_node().name)


def test_detection_counts_held_devices_and_the_plan_fits_what_is_left(
    emulator_factory: Factory,  # noqa: F811
) -> None:
    emu = emulator_factory(flavour="kubernetes", nodes=[h100_node(), gaudi2_node()])
    target = target_for(emu, FAST)
    _other_teams_pods(target)

    inventories = {i.node_name: i for i in target.detect_nodes()}
    h100, gaudi = inventories[h100_node().name], inventories[gaudi2_node().name]
    # Only the running pod counts: not the Succeeded one, not the one with no node.
    assert h100.devices_in_use == [DevicesInUse(resource="nvidia.com/gpu", count=6)]
    assert "kubernetes: requested by pods on this node: nvidia.com/gpu=6" in h100.notes
    assert gaudi.devices_in_use == [DevicesInUse(resource="habana.ai/gaudi", count=3)]

    # Llama 3.1 70B, one 8k sequence, needs TP 2: the 2 free GPUs hold one replica (auto
    # would have asked for 4 on a node seen as free). 16 sequences need TP 4: no plan.
    facts = load_model_facts(MODELS / "Llama-3.1-70B-Instruct")
    request = PlanRequest(
        max_model_len=8192, concurrency=1, device="cuda", served_model_name="chat"
    )
    chat = plan(facts, [h100], request)
    assert chat.tensor_parallel_size == 2 and chat.replicas == 1
    with pytest.raises(
        NoFeasiblePlan, match=re.escape("gpu-h100-0 has 8 nvidia.com/gpu, 6 in use by other")
    ):
        plan(facts, [h100], request.model_copy(update={"concurrency": 16}))

    # The scheduler agrees: the replica binds to the node and runs.
    apply_model_volume(target._api)
    target.roll_out(RolloutSpec("chat", chat, MODEL_PATH))
    assert target.wait_until_settled("chat").state is RuntimeState.RUNNING

    # Now all 8 are requested, 2 of them by the runtime serving "chat". Redeploying "chat"
    # counts its own 2 as free (its pods stop first); anything else finds none.
    h100 = _h100(target)
    assert h100.devices_in_use == [
        DevicesInUse(resource="nvidia.com/gpu", count=6),
        DevicesInUse(resource="nvidia.com/gpu", count=2, holder="chat"),
    ]
    assert (
        "kubernetes: requested by pods on this node: nvidia.com/gpu=8 (2 by runtime 'chat')"
        in h100.notes
    )
    assert plan(facts, [h100], request).replicas == 1
    with pytest.raises(
        NoFeasiblePlan, match=re.escape("gpu-h100-0 has 8 nvidia.com/gpu, 8 in use by other")
    ):
        plan(facts, [h100], request.model_copy(update={"served_model_name": "other"}))


def test_a_pod_requests_its_containers_sum_or_its_largest_init_container() -> None:
    pod = {
        "spec": {
            "initContainers": [
                {"name": "warm", "resources": {"limits": {"nvidia.com/gpu": "4"}}},
                {
                    "name": "sidecar",
                    "restartPolicy": "Always",
                    "resources": {"requests": {"nvidia.com/gpu": "1"}},
                },
            ],
            "containers": [
                {"name": "a", "resources": {"limits": {"nvidia.com/gpu": "1", "cpu": "4"}}},
                {"name": "b", "resources": {"limits": {"nvidia.com/mig-1g.10gb": "2"}}},
            ],
        }
    }
    # GPUs: max(1 + 1 sidecar, 4 init) = 4; MIG slices 2; cpu is not an accelerator.
    assert pod_accelerator_requests(pod) == {"nvidia.com/gpu": 4, "nvidia.com/mig-1g.10gb": 2}


def test_runtime_pods_are_held_by_their_served_model_name() -> None:
    def pod(namespace: str, release: str | None, gpus: str) -> dict[str, Any]:
        labels = {kube.RELEASE_LABEL: release} if release else {}
        return {
            "metadata": {"namespace": namespace, "labels": labels},
            "spec": {"containers": [{"resources": {"limits": {"nvidia.com/gpu": gpus}}}]},
        }

    runtimes = {("bud-a", "rt-chat"): "chat"}
    found = devices_in_use(
        [pod("bud-a", "rt-chat", "2"), pod("bud-a", "rt-chat", "2"), pod("x", None, "1")],
        runtimes,
    )
    assert found == [
        DevicesInUse(resource="nvidia.com/gpu", count=1),
        DevicesInUse(resource="nvidia.com/gpu", count=4, holder="chat"),
    ]
    # A release label in another namespace is not that runtime.
    assert devices_in_use([pod("bud-b", "rt-chat", "2")], runtimes) == [
        DevicesInUse(resource="nvidia.com/gpu", count=2)
    ]


def _holding_pod(
    name: str, node: str | None, phase: str, resources: dict[str, str], release: str | None = None
) -> dict[str, Any]:
    labels = {kube.RELEASE_LABEL: release} if release else {}
    spec: dict[str, Any] = {"containers": [{"name": "c", "resources": {"limits": resources}}]}
    if node:
        spec["nodeName"] = node
    return {
        "metadata": {"name": name, "namespace": "bud-a", "labels": labels},
        "spec": spec,
        "status": {"phase": phase},
    }


HOLDING_PODS = [
    _holding_pod("runtime", "a", "Running", {"nvidia.com/gpu": "2"}, release="rt-chat"),
    _holding_pod("starting", "a", "Pending", {"nvidia.com/gpu": "1"}),
    _holding_pod("finished", "a", "Succeeded", {"nvidia.com/gpu": "4"}),
    _holding_pod("crashed", "b", "Failed", {"habana.ai/gaudi": "3"}),
    _holding_pod("training", "b", "Running", {"habana.ai/gaudi": "3"}),
    _holding_pod("lost", "gone", "Running", {"nvidia.com/gpu": "8"}),
    _holding_pod("unplaced", None, "Pending", {"nvidia.com/gpu": "8"}),
]


def _detection() -> NodeDetection:
    return NodeDetection(
        cast(Any, None),
        system_namespace="bud-system",
        image="ghcr.io/bud/tools:1",
        timeouts=FAST,
        render=lambda *_: [],
        ensure_namespace=lambda _: None,
    )


def _served_by_phase(field_selector: str | None) -> list[dict[str, Any]]:
    """What the API server answers a cluster-wide pod list with this field selector (only
    ``status.phase!=`` terms, the ones detection sends)."""
    excluded = {t.split("!=", 1)[1] for t in (field_selector or "").split(",") if "!=" in t}
    assert all(t.startswith("status.phase!=") for t in (field_selector or "").split(",") if t)
    return [p for p in HOLDING_PODS if p["status"]["phase"] not in excluded]


def test_devices_in_use_come_from_one_pod_list_and_match_the_per_node_lists(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One cluster-wide list of pods that have not ended gives each node what the former
    per-node lists (``spec.nodeName=<node>,status.phase!=Succeeded,status.phase!=Failed``)
    gave: ended pods, unbound pods and pods on nodes not asked about count nowhere."""
    calls: list[tuple[str, str | None]] = []
    runtime = {
        "metadata": {
            "namespace": "bud-a",
            "name": "rt-chat",
            "annotations": {SERVED_MODEL_ANNOTATION: "chat"},
        }
    }

    def list_objects(
        _api: object, kind: str, _namespace: str | None, **selectors: Any
    ) -> tuple[list[dict[str, Any]], str]:
        calls.append((kind, selectors.get("field_selector")))
        if kind == "Deployment":
            return [runtime], "1"
        return _served_by_phase(selectors.get("field_selector")), "1"

    monkeypatch.setattr(kube, "list_objects", list_objects)
    found, note = _detection()._devices_in_use(["a", "b", "c"])

    assert note is None
    assert [kind for kind, _ in calls] == ["Deployment", "Pod"]
    assert "spec.nodeName" not in (calls[1][1] or "")
    runtimes = {("bud-a", "rt-chat"): "chat"}
    for node in ("a", "b", "c"):
        per_node = [
            p
            for p in HOLDING_PODS
            if p["spec"].get("nodeName") == node
            and p["status"]["phase"] not in ("Succeeded", "Failed")
        ]
        assert found[node] == devices_in_use(per_node, runtimes)
    assert found == {
        "a": [
            DevicesInUse(resource="nvidia.com/gpu", count=1),
            DevicesInUse(resource="nvidia.com/gpu", count=2, holder="chat"),
        ],
        "b": [DevicesInUse(resource="habana.ai/gaudi", count=3)],
        "c": [],
    }
    # Grouping alone drops ended pods too, whatever the server's filter let through.
    grouped = pods_by_node(HOLDING_PODS)
    assert {n: [p["metadata"]["name"] for p in ps] for n, ps in grouped.items()} == {
        "a": ["runtime", "starting"],
        "b": ["training"],
        "gone": ["lost"],
    }


def test_a_refused_pod_list_leaves_a_note_instead_of_failing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def list_objects(_api: object, kind: str, *_: Any, **__: Any) -> tuple[list[Any], str]:
        if kind == "Pod":
            raise kube.KubernetesApiError('pods is forbidden: User "x" cannot list', 403)
        return [], "1"

    monkeypatch.setattr(kube, "list_objects", list_objects)
    found, note = _detection()._devices_in_use(["a"])
    assert found == {}
    assert note is not None and "devices other pods hold are not counted" in note
