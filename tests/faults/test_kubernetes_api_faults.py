"""The Kubernetes target survives API faults (issue #15, fault 7), on the API emulator.

The real target code deploy-model calls (``roll_out``, ``wait_until_settled``,
``undo_rollout``) talks HTTP to the emulator while its API fault switch ends watches with
410 Expired, answers bursts of 429 (Retry-After: 1) and 503, answers a create 504 after
running it, and loses a node mid-rollout. Each test prints the figure it measured.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from budcluster.adapters import kubernetes as kube
from budcluster.errors import TemporaryError
from budcluster.targets.base import RolloutSpec, RuntimeState
from budcluster.targets.kubernetes import KubernetesTimeouts, release_for
from budcluster.targets.kubernetes.status import raise_unless_serving
from tests.k8s_emulator.cluster import Timings
from tests.k8s_emulator.emulator import Emulator
from tests.k8s_emulator.fixtures import emulator_factory  # noqa: F401  (pytest fixture)
from tests.k8s_emulator.nodes import amx_cpu_node, gaudi2_node, h100_node
from tests.k8s_emulator.waiting import eventually
from tests.kubernetes.helpers import (
    MODEL_NAMESPACE,
    MODEL_PATH,
    make_tp2_plan,
    model_rollout,
    target_with_model_volume,
)

pytestmark = pytest.mark.e2e
Factory = Callable[..., Emulator]
WAIT = KubernetesTimeouts(api_s=10, ready_s=60, resync_s=2)
# Pods take 2 s to become ready, so a fault can land while the rollout's wait is open.
SLOW_READY = Timings(ready_s=2.0)
INSTANCE = "app.kubernetes.io/instance"
DEPLOYMENTS = r"/apis/apps/v1/namespaces/[^/]+/deployments"
PODS = r"/api/v1/namespaces/[^/]+/pods"


def _in_background(action: Callable[[], Any]) -> Iterator[threading.Thread]:
    thread = threading.Thread(target=action, daemon=True)
    thread.start()
    yield thread
    thread.join(30)


def _release_pods(emu: Emulator, release: str) -> list[dict[str, Any]]:
    return [
        p
        for p in emu.objects("pods", namespace=MODEL_NAMESPACE)
        if p["metadata"]["labels"].get(INSTANCE) == release
    ]


# --- a) a watch ended with 410 Gone mid-wait ----------------------------------------------------


def test_a_watch_ended_with_410_mid_rollout_relists_and_the_rollout_succeeds(
    emulator_factory: Factory,  # noqa: F811
) -> None:
    emu = emulator_factory(nodes=[h100_node()], timings=SLOW_READY)
    target = target_with_model_volume(emu, WAIT)
    target.roll_out(model_rollout("w410"))
    expired: dict[str, Any] = {}

    def expire_once_watching() -> None:
        eventually(lambda: emu.open_watches() > 0, timeout=20, what="the rollout's watch")
        expired["ended"] = emu.expire_watches()
        expired["at"] = time.monotonic()

    for _ in _in_background(expire_once_watching):
        status = target.wait_until_settled("w410")
    done_at = time.monotonic()
    assert expired["ended"] >= 1  # the wait's watch got the ERROR 410 event
    assert status.state is RuntimeState.RUNNING, status
    # It relisted and watched on: the pods became ready after the 410, and the wait saw it.
    print(
        f"\n410 recovery: {expired['ended']} watch(es) expired; RUNNING "
        f"{done_at - expired['at']:.2f} s after the 410"
    )


def test_wait_for_relists_once_per_410_event(emulator_factory: Factory) -> None:  # noqa: F811
    """The adapter's wait, on its own: an ERROR 410 in the middle of a watch relists
    (``on_relist``), and the relist's resourceVersion watches on to the awaited change."""
    emu = emulator_factory(nodes=[amx_cpu_node()])
    api = kube.api_client_from_kubeconfig(emu.kubeconfig_dict())
    kube.apply_objects(
        api, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "w"}}], "w"
    )
    relists: list[int] = []

    def expire_then_create() -> None:
        eventually(lambda: emu.open_watches() > 0, timeout=10, what="the watch")
        emu.expire_watches()
        eventually(lambda: relists, timeout=10, what="the relist")
        eventually(lambda: emu.open_watches() > 0, timeout=10, what="the new watch")
        kube.apply_objects(
            api,
            [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "c", "namespace": "w"},
                }
            ],
            "w",
        )

    for _ in _in_background(expire_then_create):
        found = kube.wait_for(
            api,
            "ConfigMap",
            "w",
            lambda maps: True if any(m["metadata"]["name"] == "c" for m in maps) else None,
            timeout_s=20,
            on_relist=relists.append,
        )
    assert found is True and relists == [1]


# --- b) bursts of 429 and 503 -------------------------------------------------------------------


def test_bursts_of_429_and_503_are_retried_and_nothing_is_created_twice(
    emulator_factory: Factory,  # noqa: F811
) -> None:
    emu = emulator_factory(nodes=[h100_node()])
    target = target_with_model_volume(emu, WAIT)
    creates = emu.inject_api_fault("POST", DEPLOYMENTS, status=429, count=3, retry_after_s=1)
    lists = emu.inject_api_fault("GET", PODS, status=503, count=3, retry_after_s=None, watch=False)
    started = time.monotonic()
    target.roll_out(model_rollout("burst"))
    status = target.wait_until_settled("burst")
    took = time.monotonic() - started
    assert status.state is RuntimeState.RUNNING, status
    answered = emu.api_fault_log()
    assert [r.status for r in answered if r.fault_id == creates.id] == [429, 429, 429]
    assert [r.status for r in answered if r.fault_id == lists.id] == [503, 503, 503]
    # Retry-After: 1 was honoured between the three turned-away creates.
    create_times = [r.at for r in answered if r.fault_id == creates.id]
    assert all(b - a >= 0.95 for a, b in itertools.pairwise(create_times))
    release = release_for("burst")
    assert [d["metadata"]["name"] for d in emu.objects("deployments", "apps")] == [release]
    assert len(_release_pods(emu, release)) == 1
    print(f"\n429/503 burst: {len(answered)} answers retried; RUNNING after {took:.2f} s")


def test_a_create_whose_answer_was_lost_is_not_duplicated(
    emulator_factory: Factory,  # noqa: F811
) -> None:
    """The server ran the create but answered 504: the retried POST meets 409
    AlreadyExists and patches the object instead; one Deployment, one ReplicaSet, one pod."""
    emu = emulator_factory(nodes=[h100_node()])
    target = target_with_model_volume(emu, WAIT)
    lost = emu.inject_api_fault("POST", DEPLOYMENTS, status=504, retry_after_s=None, run_first=True)
    target.roll_out(model_rollout("lost"))
    assert target.wait_until_settled("lost").state is RuntimeState.RUNNING
    assert [r.fault_id for r in emu.api_fault_log()] == [lost.id]
    release = release_for("lost")
    assert [d["metadata"]["name"] for d in emu.objects("deployments", "apps")] == [release]
    assert len(emu.objects("replicasets", "apps", MODEL_NAMESPACE)) == 1
    assert len(_release_pods(emu, release)) == 1


def test_a_burst_longer_than_the_deadline_is_a_temporary_error_naming_the_call(
    emulator_factory: Factory,  # noqa: F811
) -> None:
    emu = emulator_factory(nodes=[amx_cpu_node()])
    api = kube.api_client_from_kubeconfig(emu.kubeconfig_dict())
    emu.inject_api_fault("GET", DEPLOYMENTS, status=429, count=1000, retry_after_s=1)
    path = f"/apis/apps/v1/namespaces/{MODEL_NAMESPACE}/deployments"
    started = time.monotonic()
    with pytest.raises(kube.KubernetesServerError) as caught:
        kube.request_json(api, "GET", path, what="list Deployment", retry_s=3.5)
    took = time.monotonic() - started
    assert isinstance(caught.value, TemporaryError)
    message = str(caught.value)
    assert message.startswith(f"list Deployment (GET {path}): the API server answered 429 ")
    assert "TooManyRequests (Retry-After 1 s)" in message and "retry later" in message
    tries = len(emu.api_fault_log())
    assert 3 <= tries <= 4  # 1 s apart within 3.5 s; the next wait would pass the deadline
    assert took < 3.5
    print(f"\n429 beyond the deadline: gave up after {tries} tries in {took:.2f} s")


# --- c) a node lost during a rollout ------------------------------------------------------------


def _two_node_plan_rollout(name: str, nodes: list[str]) -> RolloutSpec:
    """Two TP-2 replicas placed on two nodes (one each, as a plan spanning nodes places
    them): such a plan pins no hostname, so the scheduler may use any node that fits."""
    single = make_tp2_plan(nodes[0])
    first = single.placements[0]
    placements = [first, first.model_copy(update={"node_name": nodes[1]})]
    spread = single.model_copy(update={"placements": placements, "replicas": 2})
    return RolloutSpec(name, spread, MODEL_PATH)


@pytest.mark.parametrize("how", ["NotReady", "Deleted"])
def test_a_node_lost_mid_rollout_reschedules_onto_another_fitting_node(
    emulator_factory: Factory,  # noqa: F811
    how: str,
) -> None:
    names = ["gpu-a", "gpu-b", "gpu-c"]
    nodes = [h100_node(n, gpus=2, internal_ip=f"10.0.1.{i}") for i, n in enumerate(names, 1)]
    emu = emulator_factory(nodes=nodes, timings=SLOW_READY)
    target = target_with_model_volume(emu, WAIT)
    release = release_for("spread")
    target.roll_out(_two_node_plan_rollout("spread", names[:2]))
    lost: dict[str, Any] = {}

    def lose_a_busy_node() -> None:
        def bound() -> list[str]:
            return sorted(
                str(p["spec"]["nodeName"])
                for p in _release_pods(emu, release)
                if p["spec"].get("nodeName")
            )

        on = eventually(lambda: len(bound()) == 2 and bound(), timeout=20, what="2 bound pods")
        lost["node"] = on[0]
        emu.lose_node(on[0], how)
        lost["at"] = time.monotonic()

    for _ in _in_background(lose_a_busy_node):
        status = target.wait_until_settled("spread")
    assert status.state is RuntimeState.RUNNING, status
    pods = _release_pods(emu, release)
    assert len(pods) == 2
    assert lost["node"] not in {p["spec"]["nodeName"] for p in pods}
    print(
        f"\nnode {lost['node']} {how}: rescheduled, RUNNING "
        f"{time.monotonic() - lost['at']:.2f} s after the loss"
    )


@pytest.mark.parametrize("how", ["NotReady", "Deleted"])
def test_a_lost_pinned_node_fails_the_rollout_naming_it_and_leaves_nothing(
    emulator_factory: Factory,  # noqa: F811
    how: str,
) -> None:
    emu = emulator_factory(nodes=[h100_node(), gaudi2_node(), amx_cpu_node()], timings=SLOW_READY)
    target = target_with_model_volume(emu, WAIT)
    release = release_for("pinned")
    target.roll_out(model_rollout("pinned"))
    node = h100_node().name

    def lose_it() -> None:
        eventually(
            lambda: any(p["spec"].get("nodeName") for p in _release_pods(emu, release)),
            timeout=20,
            what="the bound pod",
        )
        emu.lose_node(node, how)

    started = time.monotonic()
    for _ in _in_background(lose_it):
        status = target.wait_until_settled("pinned")
    took = time.monotonic() - started
    assert status.state is RuntimeState.FAILED, status
    reason = status.reason or ""
    expected = (
        f"node {node} was removed from the cluster"
        if how == "Deleted"
        else f"node {node} is NotReady (NodeStatusUnknown: Kubelet stopped posting node status.)"
    )
    assert reason.startswith(expected + " (the rollout is pinned to it) during the rollout"), reason
    assert "FailedScheduling: 0/" in reason  # the scheduler's own words follow
    with pytest.raises(Exception, match=f"pinned failed: node {node} "):
        raise_unless_serving("pinned", status)
    # What deploy-model's rollback does with a first revision: nothing of it stays.
    assert target.undo_rollout("pinned", None).state is RuntimeState.ABSENT
    assert kube.list_release(target._api, release, MODEL_NAMESPACE) == []
    assert not [d for d in emu.objects("deployments", "apps") if release in d["metadata"]["name"]]
    print(f"\nnode {node} {how}: failed naming it after {took:.2f} s")
