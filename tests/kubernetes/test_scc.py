"""OpenShift SCC grants: the objects (pure), the target's grant on the emulator's OpenShift and
Kubernetes flavours, and playbooks/apply_security_context.yml run by the real ansible-playbook
against the emulator, building the same objects."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from budcluster.adapters import kubernetes as kube
from budcluster.job_requests import RegisterClusterRequest
from budcluster.job_requests.clusters import SCC_NAME as FORM_SCC_NAME
from budcluster.targets.kubernetes import COLLECTOR_RELEASE, KubernetesTarget
from budcluster.targets.kubernetes.errors import KubernetesTargetConfigError
from budcluster.targets.kubernetes.scc import SCC_NAME, scc_grant_objects
from budcluster.targets.kubernetes.scc_grants import revoke_scc
from tests.k8s_emulator.emulator import Emulator
from tests.k8s_emulator.nodes import amx_cpu_node

PROJECT = Path(__file__).resolve().parents[2]
SYSTEM_NS = "bud-system"


def _api(emulator: Emulator) -> Any:
    return kube.api_client_from_kubeconfig(emulator.kubeconfig_dict(), timeout_s=10)


def _get(api: Any, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
    return kube.get_object(api, kube.ObjectRef(kind, name, namespace), timeout_s=10)


def test_the_form_and_the_target_accept_the_same_scc_names() -> None:
    assert FORM_SCC_NAME.pattern == SCC_NAME.pattern


def test_grant_objects_bind_the_service_account_to_a_role_that_may_use_the_scc() -> None:
    role, binding = scc_grant_objects("nonroot-v2", "bud-system", "node-info-collector")
    assert role["metadata"] == {"name": "system:openshift:scc:nonroot-v2"}
    assert role["rules"] == [
        {
            "apiGroups": ["security.openshift.io"],
            "resources": ["securitycontextconstraints"],
            "resourceNames": ["nonroot-v2"],
            "verbs": ["use"],
        }
    ]
    assert binding["metadata"] == {
        "name": "bud-scc-nonroot-v2-node-info-collector",
        "namespace": "bud-system",
    }
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "system:openshift:scc:nonroot-v2",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "node-info-collector", "namespace": "bud-system"}
    ]


@pytest.mark.parametrize(
    ("scc", "namespace", "account", "field"),
    [
        ("NonRoot", "ns", "sa", "openshift_scc"),
        ("x; rm -rf /", "ns", "sa", "openshift_scc"),
        ("nonroot-v2", "Bad_NS", "sa", "namespace"),
        ("nonroot-v2", "ns", "sa/../x", "service_account"),
    ],
)
def test_hostile_names_are_refused_naming_the_field(
    scc: str, namespace: str, account: str, field: str
) -> None:
    with pytest.raises(KubernetesTargetConfigError, match=f"^{field}: "):
        scc_grant_objects(scc, namespace, account)


def test_the_register_form_checks_the_scc_and_takes_empty_as_none() -> None:
    base = {"name": "ocp", "kind": "kubernetes", "credentials_block": "ocp"}
    assert RegisterClusterRequest(**base).openshift_scc == "nonroot-v2"
    assert RegisterClusterRequest(**base, openshift_scc="").openshift_scc is None
    with pytest.raises(ValueError, match="openshift_scc: 'Any UID' is not an SCC name"):
        RegisterClusterRequest(**base, openshift_scc="Any UID")


def test_on_openshift_the_collector_may_use_the_scc_and_a_second_grant_changes_nothing(
    emulator_factory: Callable[..., Emulator],
) -> None:
    openshift = emulator_factory(flavour="openshift", nodes=[amx_cpu_node()])
    api = _api(openshift)
    try:
        target = KubernetesTarget(api)
        shipped = _get(api, "ClusterRole", "system:openshift:scc:nonroot-v2")
        assert shipped is not None  # OpenShift ships it; the grant must leave it alone
        written = target.grant_collector_scc("nonroot-v2")
        assert written == [f"RoleBinding/{SYSTEM_NS}/bud-scc-nonroot-v2-{COLLECTOR_RELEASE}"]
        binding = _get(api, "RoleBinding", f"bud-scc-nonroot-v2-{COLLECTOR_RELEASE}", SYSTEM_NS)
        assert binding is not None
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": COLLECTOR_RELEASE, "namespace": SYSTEM_NS}
        ]
        assert binding["roleRef"]["name"] == "system:openshift:scc:nonroot-v2"
        assert binding["metadata"]["labels"][kube.RELEASE_LABEL] == "scc-nonroot-v2"
        assert _get(api, "ClusterRole", "system:openshift:scc:nonroot-v2") == shipped

        # Someone widened the binding by hand: the next grant puts the subjects back.
        kube.apply_objects(
            api,
            [{**binding, "subjects": [*binding["subjects"], {"kind": "Group", "name": "x"}]}],
            "scc-nonroot-v2",
            timeout_s=10,
        )
        again = target.grant_collector_scc("nonroot-v2")
        assert again == written
        rebound = _get(api, "RoleBinding", f"bud-scc-nonroot-v2-{COLLECTOR_RELEASE}", SYSTEM_NS)
        assert rebound is not None and rebound["subjects"] == binding["subjects"]

        # An SCC the cluster does not ship a role for gets one, under the grant's label.
        assert target.grant_collector_scc("bud-gpu-tools")[0] == (
            "ClusterRole/system:openshift:scc:bud-gpu-tools"
        )
        role = _get(api, "ClusterRole", "system:openshift:scc:bud-gpu-tools")
        assert role is not None and role["rules"][0]["resourceNames"] == ["bud-gpu-tools"]
        assert role["metadata"]["labels"][kube.RELEASE_LABEL] == "scc-bud-gpu-tools"

        revoke_scc(api, "bud-gpu-tools", SYSTEM_NS, COLLECTOR_RELEASE, timeout_s=10)
        assert (
            _get(api, "RoleBinding", f"bud-scc-bud-gpu-tools-{COLLECTOR_RELEASE}", SYSTEM_NS)
            is None
        )
    finally:
        api.close()


def test_on_plain_kubernetes_nothing_is_granted(
    emulator_factory: Callable[..., Emulator],
) -> None:
    plain = emulator_factory(flavour="kubernetes", nodes=[amx_cpu_node()])
    api = _api(plain)
    try:
        assert KubernetesTarget(api).grant_collector_scc("nonroot-v2") == []
        bindings, _ = kube.list_objects(api, "RoleBinding", None, timeout_s=10)
        assert not [b for b in bindings if b["metadata"]["name"].startswith("bud-scc-")]
        assert _get(api, "Namespace", SYSTEM_NS) is None
    finally:
        api.close()


def test_the_playbook_grants_the_same_objects_and_revokes_them(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    """The real ansible-playbook (connection local) against the emulator's OpenShift."""
    openshift = emulator_factory(flavour="openshift", nodes=[amx_cpu_node()])
    kubeconfig = openshift.write_kubeconfig(tmp_path / "kubeconfig")
    playbook = Path(sys.executable).parent / "ansible-playbook"
    env = {
        "PATH": f"{playbook.parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        # The playbook's python imports budcluster: this checkout's, not the venv's.
        "PYTHONPATH": str(PROJECT),
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
    }
    api = _api(openshift)
    try:
        kube.apply_objects(
            api,
            [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bud-llama"}}],
            "bud-llama",
            timeout_s=10,
        )

        def play(*extra: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [str(playbook), "playbooks/apply_security_context.yml",
                 "-e", "namespace=bud-llama", "-e", "service_account=rt-llama",
                 "-e", "scc=anyuid", "-e", f"kubeconfig={kubeconfig}", *extra],
                cwd=PROJECT, env=env, capture_output=True, text=True, timeout=180,
            )  # fmt: skip

        for _ in range(2):  # a second run changes nothing and does not fail
            done = play()
            assert done.returncode == 0, done.stdout + done.stderr
        binding = _get(api, "RoleBinding", "bud-scc-anyuid-rt-llama", "bud-llama")
        assert binding is not None
        expected = scc_grant_objects("anyuid", "bud-llama", "rt-llama")[1]
        assert binding["subjects"] == expected["subjects"]
        assert binding["roleRef"] == expected["roleRef"]

        revoked = play("-e", "state=absent")
        assert revoked.returncode == 0, revoked.stdout + revoked.stderr
        assert _get(api, "RoleBinding", "bud-scc-anyuid-rt-llama", "bud-llama") is None
        assert _get(api, "ClusterRole", "system:openshift:scc:anyuid") is not None
    finally:
        api.close()
