"""The collector DaemonSets the target applies run as the image's user: pinned to UID 10001
on Kubernetes, left to the SCC on OpenShift (restricted-v2 rejects a pinned UID)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from budcluster.targets.kubernetes import KubernetesTimeouts
from tests.k8s_emulator.emulator import Emulator
from tests.k8s_emulator.fixtures import emulator_factory  # noqa: F401  (pytest fixture)
from tests.k8s_emulator.nodes import amx_cpu_node
from tests.kubernetes.helpers import target_for

FAST = KubernetesTimeouts(api_s=10, detect_s=20, transfer_s=20, ready_s=20, resync_s=1)
Factory = Callable[..., Emulator]


@pytest.mark.parametrize(
    ("flavour", "expected"),
    [
        (
            "kubernetes",
            {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "fsGroup": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
        ),
        ("openshift", {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}),
    ],
)
def test_collector_pods_run_as_the_image_user(
    emulator_factory: Factory,  # noqa: F811
    flavour: str,
    expected: dict[str, object],
) -> None:
    emu = emulator_factory(flavour=flavour, nodes=[amx_cpu_node()])
    target = target_for(emu, FAST)
    assert [i.node_name for i in target.detect_nodes()] == [amx_cpu_node().name]
    daemonsets = emu.objects("daemonsets", group="apps", namespace=target.system_namespace)
    assert daemonsets
    for daemonset in daemonsets:
        assert daemonset["spec"]["template"]["spec"]["securityContext"] == expected
