"""Running a kubeconfig's exec plugin for the benchmark client
(``budcluster.adapters.exec_credential``) with a real plugin script on ``PATH``: what it is
given (argv, ExecCredential request, environment, stdin), what is read back, and that a
plugin the allow-list does not name never runs, whoever built the spec."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from budcluster.adapters.exec_credential import (
    ExecCredentialPlugin,
    ExecPluginFailed,
    ExecPluginTimeout,
)
from budcluster.bench.access import CredentialUnavailable
from budcluster.errors import PermanentError, TemporaryError
from budcluster.kubeconfig import KubeconfigInvalid, api_server_credentials
from budcluster.settings import get_settings
from tests.support.exec_plugin import EXEC_API, eks_user, install_plugin

CA = "-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n"


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("BUDCLUSTER_KUBECONFIG_EXEC_ALLOW", raising=False)
    monkeypatch.setenv("BUDCLUSTER_TEST_CANARY", "worker-only-secret")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def kubeconfig(user: dict[str, Any], **cluster: Any) -> dict[str, Any]:
    return {
        "clusters": [{"name": "lab", "cluster": {"server": "https://10.0.0.1:6443", **cluster}}],
        "users": [{"name": "eks", "user": user}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "eks"}}],
        "current-context": "lab",
    }


def _credential(status: dict[str, Any]) -> str:
    return json.dumps({"apiVersion": EXEC_API, "kind": "ExecCredential", "status": status})


def plugin_of(user: dict[str, Any], **cluster: Any) -> ExecCredentialPlugin:
    spec = api_server_credentials(kubeconfig(user, **cluster), "lab").exec_plugin
    assert spec is not None
    return ExecCredentialPlugin(spec)


def test_the_plugin_runs_as_client_go_runs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_plugin(tmp_path, monkeypatch, lifetime_s=900)
    user = eks_user(provideClusterInfo=True)
    issued = plugin_of(
        user, **{"certificate-authority-data": base64.b64encode(CA.encode()).decode()}
    ).issue()
    (call,) = fake.calls()
    assert call["argv"] == ["eks", "get-token", "--cluster-name", "lab", "--region", "eu-west-1"]
    # The kubeconfig's env on top of the worker's allow-listed variables; nothing else of
    # the worker's environment (the canary), and no terminal on stdin.
    assert call["env"]["AWS_REGION"] == "eu-west-1"
    assert call["env"]["AWS_ACCESS_KEY_ID"] == "AKIAEXAMPLE"
    assert call["env"]["BUDCLUSTER_TEST_CANARY"] is None
    assert call["stdin"] == ""
    info = json.loads(call["env"]["KUBERNETES_EXEC_INFO"])
    assert info["apiVersion"] == EXEC_API and info["kind"] == "ExecCredential"
    assert info["spec"]["interactive"] is False
    assert info["spec"]["cluster"]["server"] == "https://10.0.0.1:6443"
    assert base64.b64decode(info["spec"]["cluster"]["certificate-authority-data"]).decode() == CA
    # What it printed comes back: the token, and the expiry in whole seconds.
    ((token, expiry),) = fake.issued().items()
    assert issued.token == token
    assert issued.expires_at == expiry
    assert 890 <= issued.expires_at - time.time() <= 900
    assert token not in repr(issued)


def test_without_provide_cluster_info_the_request_has_no_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_plugin(tmp_path, monkeypatch)
    plugin_of(eks_user()).issue()
    (call,) = fake.calls()
    assert "cluster" not in json.loads(call["env"]["KUBERNETES_EXEC_INFO"])["spec"]


def test_a_plugin_outside_the_allow_list_is_refused_by_field_and_never_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_plugin(tmp_path, monkeypatch, name="sh-token")
    user = eks_user(command="sh-token", args=["--print"])
    with pytest.raises(KubeconfigInvalid, match=r"^users\[eks\]\.user\.exec\.args: 'sh-token'"):
        api_server_credentials(kubeconfig(user), "lab")
    # A spec built while it was allowed is checked again before every run.
    monkeypatch.setenv("BUDCLUSTER_KUBECONFIG_EXEC_ALLOW", "sh-token --print")
    get_settings.cache_clear()
    plugin = plugin_of(user)
    monkeypatch.setenv("BUDCLUSTER_KUBECONFIG_EXEC_ALLOW", "aws eks get-token")
    get_settings.cache_clear()
    with pytest.raises(ExecPluginFailed, match=r"^users\[eks\]\.user\.exec\.args: 'sh-token'"):
        plugin.issue()
    # And a hand-made spec that names a flag the allow-list does not permit.
    monkeypatch.setenv("BUDCLUSTER_KUBECONFIG_EXEC_ALLOW", "aws eks get-token")
    get_settings.cache_clear()
    aws = install_plugin(tmp_path / "aws", monkeypatch)
    allowed = plugin_of(eks_user())
    forged = dataclasses.replace(allowed.spec, args=(*allowed.spec.args, "--profile", "admin"))
    with pytest.raises(ExecPluginFailed, match=r"exec\.args: flag '--profile' is not allowed"):
        ExecCredentialPlugin(forged).issue()
    assert fake.calls() == [] and aws.calls() == []


def test_interactive_mode_always_is_refused_before_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_plugin(tmp_path, monkeypatch)
    with pytest.raises(ExecPluginFailed, match=r"exec\.interactiveMode: 'Always' needs a term"):
        plugin_of(eks_user(interactiveMode="Always")).issue()
    assert fake.calls() == []


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ({"fail_after": 0}, r"exited with status 1: An error occurred \(ExpiredToken\)"),
        ({"output": "token=SECRET-abc not json"}, "did not print an ExecCredential as JSON"),
        (
            {"api_version": "client.authentication.k8s.io/v1"},
            r"answered with apiVersion 'client.authentication.k8s.io/v1'.*exec\.apiVersion",
        ),
        (
            {"output": _credential({})},
            "issued neither status.token nor clientCertificateData",
        ),
        (
            {"output": _credential({"token": "SECRET-abc", "expirationTimestamp": "soon"})},
            "status.expirationTimestamp is not an RFC 3339 time",
        ),
    ],
)
def test_a_plugin_that_issues_nothing_usable_fails_by_name_without_echoing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setup: dict[str, Any], message: str
) -> None:
    install_plugin(tmp_path, monkeypatch, **setup)
    with pytest.raises(ExecPluginFailed, match=message) as raised:
        plugin_of(eks_user()).issue()
    text = str(raised.value)
    assert text.startswith("the exec plugin 'aws' (users[eks].user.exec)"), text
    assert "SECRET" not in text
    assert isinstance(raised.value, CredentialUnavailable)
    assert isinstance(raised.value, PermanentError)


def test_a_plugin_that_hangs_is_stopped_at_its_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugin(tmp_path, monkeypatch, sleep_s=30)
    plugin = dataclasses.replace(plugin_of(eks_user()), timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(ExecPluginTimeout, match=r"did not answer within 0 s|within 1 s") as raised:
        plugin.issue()
    assert time.monotonic() - started < 10
    assert isinstance(raised.value, TemporaryError)


def test_a_plugin_missing_from_path_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ExecPluginFailed, match=r"exec\.command: 'aws' is not on the worker's PATH"):
        plugin_of(eks_user()).issue()


def test_a_client_certificate_from_the_plugin_is_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert = "-----BEGIN CERTIFICATE-----\nMIIBc\n-----END CERTIFICATE-----\n"
    key = "-----BEGIN PRIVATE KEY-----\nMIIBk\n-----END PRIVATE KEY-----\n"
    install_plugin(tmp_path, monkeypatch, certificate=(cert, key), lifetime_s=600)
    issued = plugin_of(eks_user()).issue()
    assert (issued.token, issued.client_cert_pem, issued.client_key_pem) == (None, cert, key)
    assert issued.expires_at is not None and issued.expires_at > time.time() + 590
