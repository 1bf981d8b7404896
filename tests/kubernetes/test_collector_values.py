"""The node_info_collector's placement overrides (BUDCLUSTER_KUBERNETES_COLLECTOR_VALUES):
checked key by key, read from the operator's YAML file, and applied by detect_nodes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from budcluster.adapters import kubernetes as kube
from budcluster.errors import ConfigurationError
from budcluster.targets.kubernetes import KubernetesTarget, KubernetesTimeouts
from budcluster.targets.kubernetes.errors import KubernetesTargetConfigError
from budcluster.targets.kubernetes.values import collector_values
from tasks.targets import collector_overrides
from tests.k8s_emulator.emulator import Emulator
from tests.k8s_emulator.fixtures import emulator_factory  # noqa: F401  (pytest fixture)
from tests.k8s_emulator.nodes import Taint, amx_cpu_node, h100_node

FAST = KubernetesTimeouts(api_s=10, detect_s=20, transfer_s=20, ready_s=20, resync_s=1)
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def test_placement_keys_pass_through_and_the_image_stays_the_tools_image() -> None:
    overrides = {
        "nvidia": {"runtimeClassName": "", "nodeSelector": {"pool": "gpu"}},
        "gaudi": {"enabled": False},
        "tolerations": [GPU_TOLERATION],
        "refreshSeconds": 60,
    }
    assert collector_values("registry/bud:1", overrides) == {"image": "registry/bud:1", **overrides}
    assert collector_values("registry/bud:1") == {"image": "registry/bud:1"}


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"image": "evil/image:1"}, "image is not one of"),
        ({"nvidia": {"nodeLabel": "x"}}, "nvidia.nodeLabel is not one of"),
        ({"nvidia": ["x"]}, "nvidia must be a mapping"),
        ({"plain": {"tolerations": {"key": "a"}}}, "plain.tolerations must be a list, not dict"),
        ({"refreshSeconds": True}, "refreshSeconds must be a int, not bool"),
        ({"gaudi": {"runtimeClassName": 3}}, "gaudi.runtimeClassName must be a str, not int"),
    ],
)
def test_anything_else_is_refused_naming_the_key(overrides: dict[str, Any], says: str) -> None:
    with pytest.raises(
        KubernetesTargetConfigError, match="BUDCLUSTER_KUBERNETES_COLLECTOR_VALUES"
    ) as refused:
        collector_values("registry/bud:1", overrides)
    assert says in str(refused.value)


def test_the_values_file_is_read_and_its_errors_name_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text("nvidia:\n  runtimeClassName: ''\n")
    assert collector_overrides(path) == {"nvidia": {"runtimeClassName": ""}}
    assert collector_overrides(None) is None
    path.write_text("")
    assert collector_overrides(path) is None
    path.write_text("- a\n")
    with pytest.raises(ConfigurationError, match="must hold a mapping of values, not a list"):
        collector_overrides(path)
    path.write_text("nvidia: [\n")
    with pytest.raises(ConfigurationError, match="is not valid YAML"):
        collector_overrides(path)
    with pytest.raises(ConfigurationError, match="cannot read"):
        collector_overrides(tmp_path / "missing.yaml")


def test_detect_nodes_applies_the_overrides(emulator_factory: Callable[..., Emulator]) -> None:  # noqa: F811
    """On a cluster whose GPU node is tainted: the NVIDIA variant without a RuntimeClass
    (the NVIDIA runtime is the node's default) and tolerating only the GPU taint; both
    nodes still report."""
    gpu = h100_node()
    gpu.taints = [Taint("nvidia.com/gpu", "NoSchedule", "present")]
    emulator = emulator_factory(flavour="kubernetes", nodes=[gpu, amx_cpu_node()])
    target = KubernetesTarget(
        kube.api_client_from_kubeconfig(emulator.kubeconfig_dict()),
        timeouts=FAST,
        collector_values={"nvidia": {"runtimeClassName": "", "tolerations": [GPU_TOLERATION]}},
    )
    inventories = {inv.node_name: inv for inv in target.detect_nodes()}
    assert set(inventories) == {"gpu-h100-0", "cpu-amx-0"}
    assert inventories["gpu-h100-0"].nvidia is not None
    daemonsets = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]
        for d in emulator.objects("daemonsets", "apps")
    }
    nvidia = next(spec for name, spec in daemonsets.items() if name.endswith("-nvidia"))
    plain = next(spec for name, spec in daemonsets.items() if name.endswith("-plain"))
    assert "runtimeClassName" not in nvidia
    assert nvidia["tolerations"] == [GPU_TOLERATION]
    assert plain["tolerations"] == [{"operator": "Exists"}]


def test_bad_overrides_fail_when_the_target_is_built() -> None:
    with pytest.raises(KubernetesTargetConfigError, match=r"nvidia\.image is not one of"):
        KubernetesTarget(
            kube.api_client_from_kubeconfig(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                    "users": [{"name": "u", "user": {"token": "t"}}],
                    "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                    "current-context": "x",
                }
            ),
            collector_values={"nvidia": {"image": "evil/image:1"}},
        )
