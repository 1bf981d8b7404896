"""A kubeconfig is data, never code: nothing in one may run a program on the worker or read
one of its files, unless an operator allowed that exec plugin by name.

The client-level cases use the official ``kubernetes`` client against the API emulator, so
they prove what really happens, not what the validator claims.
"""

from __future__ import annotations

import copy
import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import CoreV1Api

from budcluster.adapters import kubernetes as kube
from budcluster.kubeconfig import KubeconfigInvalid, parse_kubeconfig
from budcluster.provisioning.forms import Cloud
from budcluster.provisioning.kubeconfig import registration_kubeconfig
from budcluster.settings import get_settings
from tests.k8s_emulator.emulator import Emulator
from tests.k8s_emulator.fixtures import emulator_factory  # noqa: F401  (pytest fixture)

EXEC_API = "client.authentication.k8s.io/v1beta1"


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("BUDCLUSTER_KUBECONFIG_EXEC_ALLOW", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def emu(emulator_factory: Any) -> Emulator:  # noqa: F811
    return emulator_factory(flavour="kubernetes", nodes=[])


def kubeconfig(
    user: dict[str, Any] | None = None,
    cluster: dict[str, Any] | None = None,
    server: str = "https://10.0.0.1:6443",
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "lab", "cluster": cluster or {"server": server}}],
        "users": [{"name": "admin", "user": user or {"token": "t"}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "admin"}}],
        "current-context": "lab",
    }


def refusal(config: dict[str, Any]) -> str:
    with pytest.raises(KubeconfigInvalid) as raised:
        parse_kubeconfig(yaml.safe_dump(config))
    message = str(raised.value)
    assert "\n" not in message
    return message


def fake_plugin(directory: Path, name: str, token: str, marker: Path) -> Path:
    """An executable that leaves ``marker`` behind and prints an ExecCredential."""
    credential = {"apiVersion": EXEC_API, "kind": "ExecCredential", "status": {"token": token}}
    script = directory / name
    script.write_text(
        f"#!{sys.executable}\n"
        "import pathlib, sys\n"
        f"pathlib.Path({str(marker)!r}).write_text(' '.join(sys.argv))\n"
        f"print({json.dumps(json.dumps(credential))})\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def eks_exec(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "apiVersion": EXEC_API,
        "command": "aws",
        "args": ["eks", "get-token", "--cluster-name", "prod", "--region", "eu-west-1"],
        "env": [{"name": "AWS_REGION", "value": "eu-west-1"}],
        "interactiveMode": "Never",
    }
    config.update(overrides)
    return config


# --- the fields that reach the worker are refused, naming the field and the fix ---------------


@pytest.mark.parametrize(
    ("user", "field", "fix"),
    [
        ({"tokenFile": "/var/run/secrets/token"}, "users[admin].user.tokenFile", "token"),
        ({"client-key": "/root/.kube/key.pem"}, "users[admin].user.client-key", "client-key-data"),
        (
            {"client-certificate": "/root/.kube/cert.pem"},
            "users[admin].user.client-certificate",
            "client-certificate-data",
        ),
        (
            {"auth-provider": {"name": "oidc", "config": {"id-token": "x"}}},
            "users[admin].user.auth-provider",
            "token",
        ),
    ],
)
def test_fields_that_read_worker_files_or_run_code_are_refused(
    user: dict[str, Any], field: str, fix: str
) -> None:
    message = refusal(kubeconfig(user=user))
    assert message.startswith(f"{field}:"), message
    assert fix in message
    assert "--flatten" in message or "auth-provider" in field


def test_a_certificate_authority_path_is_refused() -> None:
    message = refusal(
        kubeconfig(cluster={"server": "https://k:6443", "certificate-authority": "/etc/ca.crt"})
    )
    assert message.startswith("clusters[lab].cluster.certificate-authority:")
    assert "certificate-authority-data" in message


def test_unused_users_are_checked_too() -> None:
    config = kubeconfig()
    config["users"].append({"name": "other", "user": {"tokenFile": "/etc/shadow"}})
    assert refusal(config).startswith("users[other].user.tokenFile:")


def test_an_unknown_user_field_is_refused_rather_than_passed_on() -> None:
    message = refusal(kubeconfig(user={"token": "t", "tokenfile-v2": "/etc/x"}))
    assert message.startswith("users[admin].user.tokenfile-v2:")


@pytest.mark.parametrize(
    ("exec_config", "field"),
    [
        (eks_exec(command="/tmp/aws"), "command"),
        (eks_exec(command="./aws"), "command"),
        (eks_exec(command="sh", args=["-c", "id > /tmp/pwned"]), "args"),
        (eks_exec(args=["s3", "cp", "s3://bucket/x", "/tmp/x"]), "args"),
        (eks_exec(args=["eks", "get-token", "--cli-input-json", "x"]), "args"),
        (eks_exec(args=["eks", "get-token", "--cluster-name", "file:///etc/shadow"]), "args"),
        (eks_exec(args=["eks", "get-token", "--profile=admin"]), "args"),
        (eks_exec(env=[{"name": "LD_PRELOAD", "value": "/tmp/evil.so"}]), "env"),
        (eks_exec(env=[{"name": "AWS_CONFIG_FILE", "value": "/tmp/cfg"}]), "env"),
        (eks_exec(env=[{"name": "PATH", "value": "/tmp"}]), "env"),
        (eks_exec(env=[{"name": "AWS_PROFILE", "value": "terraform-admin"}]), "env"),
        (eks_exec(apiVersion="client.authentication.k8s.io/v9"), "apiVersion"),
        (eks_exec(shell=True), "shell"),
    ],
)
def test_an_exec_plugin_outside_the_allow_list_is_refused(
    exec_config: dict[str, Any], field: str
) -> None:
    message = refusal(kubeconfig(user={"exec": exec_config}))
    assert message.startswith(f"users[admin].user.exec.{field}"), message


def test_a_refused_plugin_names_the_setting_and_what_it_allows() -> None:
    message = refusal(kubeconfig(user={"exec": eks_exec(command="sh", args=["-c", "id"])}))
    assert "BUDCLUSTER_KUBECONFIG_EXEC_ALLOW" in message
    assert "'aws eks get-token', 'kubelogin get-token'" in message


def test_exec_plugins_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUDCLUSTER_KUBECONFIG_EXEC_ALLOW", "")
    get_settings.cache_clear()
    message = refusal(kubeconfig(user={"exec": eks_exec()}))
    assert message.startswith("users[admin].user.exec:")
    assert "BUDCLUSTER_KUBECONFIG_EXEC_ALLOW" in message


def test_the_provisioned_eks_and_aks_kubeconfigs_pass_by_default() -> None:
    eks = yaml.safe_dump(kubeconfig(user={"exec": eks_exec(env=None)}))
    text, context = registration_kubeconfig(
        Cloud.EKS,
        {"kubeconfig": eks},
        {"AWS_ACCESS_KEY_ID": "AKIA1", "AWS_SECRET_ACCESS_KEY": "s", "AWS_REGION": "eu-west-1"},
    )
    assert parse_kubeconfig(text, context=context)[1] == "lab"
    aks_exec = {
        "apiVersion": EXEC_API,
        "command": "kubelogin",
        "args": [
            "get-token",
            "--login",
            "spn",
            "--server-id",
            "6dae42f8-4368-4678-94ff-3960e28e3630",
            "--environment",
            "AzurePublicCloud",
            "--tenant-id",
            "tid",
        ],
        "interactiveMode": "Never",
        "installHint": "kubelogin is required",
    }
    aks = yaml.safe_dump(kubeconfig(user={"exec": aks_exec}))
    text, context = registration_kubeconfig(
        Cloud.AKS,
        {"kubeconfig": aks},
        {"ARM_CLIENT_ID": "c", "ARM_CLIENT_SECRET": "s", "ARM_TENANT_ID": "t"},
    )
    assert parse_kubeconfig(text, context=context)[1] == "lab"


def test_an_operator_may_allow_another_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    plugin = {"apiVersion": EXEC_API, "command": "gke-gcloud-auth-plugin"}
    assert refusal(kubeconfig(user={"exec": plugin})).startswith("users[admin].user.exec.args")
    monkeypatch.setenv("BUDCLUSTER_KUBECONFIG_EXEC_ALLOW", "gke-gcloud-auth-plugin")
    get_settings.cache_clear()
    parse_kubeconfig(yaml.safe_dump(kubeconfig(user={"exec": plugin})))
    # The allowed prefix is the whole command line for a tool the project has no flag list for.
    extra = dict(plugin, args=["--use_application_default_credentials"])
    assert refusal(kubeconfig(user={"exec": extra})).startswith("users[admin].user.exec.args")


def test_a_longer_allowed_command_line_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    plugin = eks_exec(args=["eks", "get-token", "--profile", "eks-reader", "--cluster-name", "p"])
    assert "'--profile'" in refusal(kubeconfig(user={"exec": plugin}))
    monkeypatch.setenv(
        "BUDCLUSTER_KUBECONFIG_EXEC_ALLOW",
        "aws eks get-token,aws eks get-token --profile eks-reader",
    )
    get_settings.cache_clear()
    parse_kubeconfig(yaml.safe_dump(kubeconfig(user={"exec": plugin})))


@pytest.mark.parametrize("proxy", ["file:///etc/passwd", "ftp://proxy:21"])
def test_a_proxy_url_must_be_a_proxy(proxy: str) -> None:
    message = refusal(kubeconfig(cluster={"server": "https://k:6443", "proxy-url": proxy}))
    assert message.startswith("clusters[lab].cluster.proxy-url:")


# --- the real client against the emulator -----------------------------------------------------


def test_the_client_never_runs_a_disallowed_exec_plugin(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "plugin-ran"
    plugin = fake_plugin(tmp_path, "evil-plugin", emu.token or "", marker)
    config = kubeconfig(
        user={"exec": {"apiVersion": EXEC_API, "command": str(plugin)}}, server=emu.url
    )
    with pytest.raises(kube.KubernetesConfigError, match=r"users\[admin\]\.user\.exec"):
        CoreV1Api(kube.api_client_from_kubeconfig(config, "lab")).list_namespace()
    assert not marker.exists(), "the exec plugin ran on the worker"


def test_the_client_never_reads_a_token_file(emu: Emulator, tmp_path: Path) -> None:
    token_file = tmp_path / "worker-token"
    token_file.write_text(emu.token or "")
    config = kubeconfig(user={"tokenFile": str(token_file)}, server=emu.url)
    with pytest.raises(kube.KubernetesConfigError, match=r"users\[admin\]\.user\.tokenFile"):
        CoreV1Api(kube.api_client_from_kubeconfig(config, "lab")).list_namespace()


def test_an_allowed_exec_plugin_still_works(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "plugin-ran"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_plugin(bin_dir, "aws", emu.token or "", marker)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    config = kubeconfig(user={"exec": eks_exec()}, server=emu.url)
    names = [
        n.metadata.name
        for n in CoreV1Api(kube.api_client_from_kubeconfig(copy.deepcopy(config), "lab"))
        .list_namespace()
        .items
    ]
    assert "default" in names
    assert marker.read_text().endswith("eks get-token --cluster-name prod --region eu-west-1")


def test_data_fields_still_work(emu: Emulator) -> None:
    config = kubeconfig(user={"token": emu.token}, server=emu.url)
    parse_kubeconfig(yaml.safe_dump(config))
    api = CoreV1Api(kube.api_client_from_kubeconfig(config, "lab"))
    assert any(n.metadata.name == "default" for n in api.list_namespace().items)


def test_a_stored_block_is_checked_again_when_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A block saved under a laxer policy (or by an older version) is refused on open."""
    from blocks.kubeconfig import KubeconfigCredentials
    from budcluster.crypto.keyring import init_keys

    init_keys(tmp_path / "keys")
    monkeypatch.setenv("BUDCLUSTER_KEYS_DIR", str(tmp_path / "keys"))
    get_settings.cache_clear()
    text = yaml.safe_dump(kubeconfig(user={"exec": eks_exec()}))
    stored = KubeconfigCredentials.from_kubeconfig("lab", text)
    monkeypatch.setenv("BUDCLUSTER_KUBECONFIG_EXEC_ALLOW", "")
    get_settings.cache_clear()
    with pytest.raises(KubeconfigInvalid, match=r"^users\[admin\]\.user\.exec:"):
        stored.get_api_client()
    with (
        pytest.raises(KubeconfigInvalid, match=r"^users\[admin\]\.user\.exec:"),
        stored.kubeconfig_file(),
    ):
        pass


def test_a_token_file_cannot_be_stored() -> None:
    from blocks.kubeconfig import KubeconfigCredentials

    text = yaml.safe_dump(kubeconfig(user={"tokenFile": "/etc/shadow"}))
    with pytest.raises(KubeconfigInvalid, match=r"^users\[admin\]\.user\.tokenFile:"):
        KubeconfigCredentials.from_kubeconfig("new", text)
