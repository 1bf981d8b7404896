"""The `<release>-source` Secret carries the registry's S3 keys to the transfer Job only: it
is gone once the Job has finished, whether it succeeded or failed, and a rollback removes
one that an interrupted staging left behind. Against the API emulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from budcluster.adapters import kubernetes as kube
from budcluster.targets.base import ModelSourceSpec
from budcluster.targets.kubernetes import (
    KubernetesTargetError,
    KubernetesTimeouts,
    model_release_for,
    namespace_for,
)
from tests.k8s_emulator.emulator import Emulator
from tests.k8s_emulator.fixtures import emulator_factory  # noqa: F401  (pytest fixture)
from tests.k8s_emulator.nodes import h100_node
from tests.kubernetes.helpers import model_rollout, target_for, target_with_model_volume

FAST = KubernetesTimeouts(api_s=10, detect_s=20, transfer_s=20, ready_s=20, resync_s=1)
KEYS = {"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret"}


@pytest.fixture
def k8s(emulator_factory: Callable[..., Emulator]) -> Emulator:  # noqa: F811
    return emulator_factory(flavour="kubernetes", nodes=[h100_node()])


def source_secrets(emu: Emulator) -> list[str]:
    return [
        s["metadata"]["name"]
        for s in emu.objects("secrets")
        if s["metadata"]["name"].endswith("-source")
    ]


def test_no_source_secret_is_left_after_a_transfer(k8s: Emulator) -> None:
    target = target_for(k8s, FAST)
    staged = target.stage_model(
        ModelSourceSpec("s3://models/llama", KEYS), "llama-70b", [h100_node().name]
    )
    assert staged.files == 4
    assert source_secrets(k8s) == []
    # The transfer really had its keys: the Job's pod read them from that Secret.
    (job,) = k8s.objects("jobs", "batch", namespace=namespace_for("bud", "llama-70b"))
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]["name"]
        for e in env
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert refs.get("AWS_SECRET_ACCESS_KEY") == f"{model_release_for('llama-70b')}-source"


def test_no_source_secret_is_left_after_a_failed_transfer(k8s: Emulator) -> None:
    k8s.inject_fault("JobFailed", selector="app.kubernetes.io/name=model-transfer")
    with pytest.raises(KubernetesTargetError, match="source unreachable"):
        target_for(k8s, FAST).stage_model(ModelSourceSpec("s3://models/x", KEYS), "broken", [])
    assert source_secrets(k8s) == []


def test_a_rollback_removes_a_source_secret_left_behind(k8s: Emulator) -> None:
    target = target_with_model_volume(k8s, FAST)
    spec = model_rollout("llama-70b")
    target.roll_out(spec)
    namespace = spec.model_path.removeprefix("pvc://").split("/")[0]
    # What a worker killed during a transfer leaves: the model release's Secret.
    left: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "model-llama-source", "namespace": namespace},
        "stringData": KEYS,
    }
    kube.apply_objects(target._api, [left], release="model-llama")
    assert source_secrets(k8s) == ["model-llama-source"]
    target.undo_rollout("llama-70b", None)
    assert source_secrets(k8s) == []


def test_a_model_name_that_is_not_plain_is_refused_before_anything_is_created(
    k8s: Emulator,
) -> None:
    with pytest.raises(KubernetesTargetError, match="model_name"):
        target_for(k8s, FAST).stage_model(
            ModelSourceSpec("s3://models/x", KEYS), "x\n  privileged: true", []
        )
    assert source_secrets(k8s) == []
    assert not [n for n in k8s.objects("namespaces") if n["metadata"]["name"].startswith("bud-x")]
