"""Values reach the runtime chart from plans and requests: a string must stay one string.

Rendered through the project's Helm adapter (the Go SDK), so this is what Helm really does:
YAML-looking strings come out exactly as given and add no keys, and strings that could only
be an injection (line breaks in a path, a pull policy that is not one) are refused by the
chart's schema, naming the value.
"""

from __future__ import annotations

from typing import Any

import pytest

from budcluster.adapters.helm import HelmRenderError
from tests.kubernetes.helpers import by_kind, render

CONTAINER_KEYS = {
    "name",
    "image",
    "imagePullPolicy",
    "env",
    "ports",
    "resources",
    "startupProbe",
    "readinessProbe",
    "livenessProbe",
    "volumeMounts",
}


def engine(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    (deployment,) = by_kind(render("bud_runtime_container", values), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return pod, container


def test_yaml_looking_paths_come_out_exactly_and_add_nothing() -> None:
    mount = "/models/a: b #not a comment"
    sub = "llama: {privileged: true}"
    probe = "/health?x=1,privileged:true},{a:b"
    pod, container = engine(
        {
            "model": {"pvcName": "llama-model", "mountPath": mount, "subPath": sub},
            "probes": {"path": probe},
        }
    )
    assert set(container) == CONTAINER_KEYS
    model_mount = container["volumeMounts"][0]
    assert model_mount == {"name": "model", "mountPath": mount, "readOnly": True, "subPath": sub}
    for probe_kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe_kind]["httpGet"] == {"path": probe, "port": "http"}
    assert pod["volumes"][0]["persistentVolumeClaim"] == {
        "claimName": "llama-model",
        "readOnly": True,
    }


def test_env_and_secret_env_names_and_values_stay_strings() -> None:
    _, container = engine(
        {
            "env": {"A_B": "x: y\n  privileged: true", "N": "123"},
            "secretEnv": {"KEY": {"secretName": "s.one", "key": "k-1"}},
        }
    )
    env = {e["name"]: e for e in container["env"]}
    assert env["A_B"] == {"name": "A_B", "value": "x: y\n  privileged: true"}
    assert env["N"] == {"name": "N", "value": "123"}
    assert env["KEY"]["valueFrom"] == {"secretKeyRef": {"name": "s.one", "key": "k-1"}}


@pytest.mark.parametrize(
    ("values", "key"),
    [
        (
            {"model": {"pvcName": "p", "mountPath": "/x\n              privileged: true"}},
            "/model/mountPath",
        ),
        (
            {"model": {"pvcName": "p", "mountPath": "/m", "subPath": "s\n  evil: 1"}},
            "/model/subPath",
        ),
        (
            {"model": {"pvcName": "p", "mountPath": "/m", "subPath": "../../etc"}},
            "/model/subPath",
        ),
        ({"model": {"pvcName": "p", "mountPath": "/m", "subPath": "/etc"}}, "/model/subPath"),
        ({"model": {"pvcName": "a: b", "mountPath": "/m"}}, "/model/pvcName"),
        (
            {"imagePullPolicy": "Always\n          securityContext: {privileged: true}"},
            "/imagePullPolicy",
        ),
        ({"probes": {"path": "/h\n            exec: {command: [sh]}"}}, "/probes/path"),
        ({"probes": {"periodSeconds": "10\n            evil: 1"}}, "/probes/periodSeconds"),
        ({"env": {"A\n              privileged: true": "v"}}, "invalid propertyName"),
        (
            {"secretEnv": {"K": {"secretName": "s\n  x: y", "key": "k"}}},
            "/secretEnv/K/secretName",
        ),
        ({"service": {"type": "ClusterIP\n  externalIPs: [1.2.3.4]"}}, "/service/type"),
        ({"pdb": {"minAvailable": "1\n  maxUnavailable: 0"}}, "/pdb/minAvailable"),
    ],
)
def test_values_that_can_only_be_an_injection_are_refused_by_name(
    values: dict[str, Any], key: str
) -> None:
    with pytest.raises(HelmRenderError) as refused:
        render("bud_runtime_container", values)
    assert key in str(refused.value)
