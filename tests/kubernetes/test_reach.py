"""How the worker reaches a Kubernetes endpoint from outside the cluster (pure): the
in-cluster URL a rollout records, the API server's service proxy URL built from it, and
the kubeconfig's server, CA and credentials turned into the benchmark client's headers and
TLS settings, with what the project refuses (exec plugins not allowed, proxy-url) refused by name."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from budcluster.adapters.kubernetes import service_proxy_path as adapter_proxy_path
from budcluster.kubeconfig import KubeconfigInvalid, api_server_credentials
from budcluster.settings import get_settings
from budcluster.targets.kubernetes.reach import (
    InClusterService,
    in_cluster_service,
    service_proxy_access,
    service_proxy_path,
)

CERT = "-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIBkey\n-----END PRIVATE KEY-----\n"
CA = "-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("BUDCLUSTER_KUBECONFIG_EXEC_ALLOW", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def kubeconfig(
    user: dict[str, Any] | None, cluster: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "lab", "cluster": {"server": "https://10.0.0.1:6443/", **(cluster or {})}}
        ],
        "users": [{"name": "admin", "user": user}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "admin"}}],
        "current-context": "lab",
    }


# --- the in-cluster URL ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "http://rt-llama-8b.bud-llama.svc:8000",
            InClusterService("bud-llama", "rt-llama-8b", 8000),
        ),
        ("http://rt-x.ns.svc.cluster.local:8080/v1", InClusterService("ns", "rt-x", 8080)),
        ("https://gw.ns.svc", InClusterService("ns", "gw", 443, "https")),
        ("http://gw.ns.svc", InClusterService("ns", "gw", 80)),
    ],
)
def test_an_in_cluster_url_names_its_service(url: str, expected: InClusterService) -> None:
    assert in_cluster_service(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000",  # a host deployment: dialled directly
        "http://rt-x.ns.example.com:8000",
        "http://rt-x.svc:8000",  # no namespace
        "http://RT_X.ns.svc:8000",  # not a DNS label
        "ftp://rt-x.ns.svc:21",
        "http://rt-x.ns.svc:notaport",
        "",
    ],
)
def test_other_urls_are_dialled_directly(url: str) -> None:
    assert in_cluster_service(url) is None


def test_the_pure_proxy_path_is_the_one_the_adapter_requests() -> None:
    assert service_proxy_path("ns", "rt-x:8000") + "/" == adapter_proxy_path("ns", "rt-x", 8000)
    assert InClusterService("ns", "gw", 443, "https").proxy_id() == "https:gw:443"


# --- the kubeconfig's server, CA and credentials -----------------------------------------------


def test_a_token_and_a_ca_become_a_bearer_header_and_the_trusted_ca() -> None:
    config = kubeconfig({"token": "s3cret"}, {"certificate-authority-data": b64(CA)})
    credentials = api_server_credentials(config, "lab")
    assert credentials.server == "https://10.0.0.1:6443"
    assert credentials.ca_pem == CA
    assert credentials.auth_headers() == (("Authorization", "Bearer s3cret"),)
    access = service_proxy_access(credentials, InClusterService("bud-llama", "rt-llama", 8000))
    assert access.base_url == (
        "https://10.0.0.1:6443/api/v1/namespaces/bud-llama/services/rt-llama:8000/proxy"
    )
    assert access.endpoint_url("/v1/completions") == access.base_url + "/v1/completions"
    assert access.via == f"via API server service proxy {access.base_url}"
    assert access.headers == (("Authorization", "Bearer s3cret"),)
    assert access.ca_pem == CA and access.verify_tls
    # Nothing secret in what may be printed or logged.
    assert "s3cret" not in repr(credentials) and "s3cret" not in repr(access)
    assert "MIIB" not in repr(credentials) + repr(access)


def test_a_client_certificate_and_key_are_decoded_for_the_tls_session() -> None:
    config = kubeconfig(
        {"client-certificate-data": b64(CERT), "client-key-data": b64(KEY)},
        {"certificate-authority-data": b64(CA), "tls-server-name": "api.lab"},
    )
    credentials = api_server_credentials(config, "lab")
    access = service_proxy_access(credentials, InClusterService("ns", "rt-x", 8000))
    assert (access.client_cert_pem, access.client_key_pem) == (CERT, KEY)
    assert access.headers == ()  # the certificate authenticates, no header does
    assert access.tls_server_name == "api.lab"
    assert "MIIBkey" not in repr(access)


def test_basic_auth_impersonation_and_skip_verify() -> None:
    config = kubeconfig(
        {
            "username": "admin",
            "password": "pw",
            "as": "alice",
            "as-groups": ["dev", "ops"],
            "as-user-extra": {"reason/x": ["bench"]},
        },
        {"insecure-skip-tls-verify": True},
    )
    credentials = api_server_credentials(config, "lab")
    assert credentials.auth_headers() == (
        ("Authorization", "Basic " + b64("admin:pw")),
        ("Impersonate-User", "alice"),
        ("Impersonate-Group", "dev"),
        ("Impersonate-Group", "ops"),
        ("Impersonate-Extra-reason%2Fx", "bench"),
    )
    access = service_proxy_access(credentials, InClusterService("ns", "rt-x", 8000))
    assert not access.verify_tls


def test_an_allowed_exec_plugin_comes_back_as_data_for_the_caller_to_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BUDCLUSTER_KUBECONFIG_EXEC_ALLOW", "aws eks get-token")
    get_settings.cache_clear()
    plugin = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": "aws",
        "args": ["eks", "get-token", "--cluster-name", "lab"],
        "env": [{"name": "AWS_REGION", "value": "eu-west-1"}],
        "provideClusterInfo": True,
    }
    credentials = api_server_credentials(
        kubeconfig({"exec": plugin}, {"certificate-authority-data": b64(CA)}), "lab"
    )
    spec = credentials.exec_plugin
    assert spec is not None
    assert (spec.command, spec.args) == ("aws", ("eks", "get-token", "--cluster-name", "lab"))
    assert spec.api_version == "client.authentication.k8s.io/v1beta1"
    assert spec.env == (("AWS_REGION", "eu-west-1"),)
    assert spec.where == "users[admin].user.exec"
    # client-go's spec.cluster: the kubeconfig's cluster fields under their own names.
    assert spec.cluster_info == {
        "server": "https://10.0.0.1:6443/",
        "certificate-authority-data": b64(CA),
    }
    assert "eu-west-1" not in repr(credentials) + repr(spec)
    # Without the plugin's credential there is no Authorization header yet.
    access = service_proxy_access(credentials, InClusterService("ns", "rt-x", 8000))
    assert access.headers == ()
    assert access.renewing_bearer() is None


def test_an_exec_plugin_not_allowed_at_all_is_refused_by_the_checks() -> None:
    plugin = {"apiVersion": "client.authentication.k8s.io/v1", "command": "sh"}
    with pytest.raises(KubeconfigInvalid, match="not an allowed exec plugin"):
        api_server_credentials(kubeconfig({"exec": plugin}), "lab")


@pytest.mark.parametrize(
    ("user", "cluster", "message"),
    [
        ({"token": "t"}, {"proxy-url": "http://proxy:3128"}, r"\.proxy-url: the benchmark"),
        ({"client-certificate-data": b64(CERT)}, None, "go together"),
        ({"client-key-data": "not base64!"}, None, r"client-key-data is not base64"),
        ({"client-key-data": b64("plain text")}, None, "does not decode to a PEM block"),
        ({"tokenFile": "/var/run/secrets/token"}, None, "may not point at a file"),
    ],
)
def test_what_cannot_be_used_is_refused_by_field(
    user: dict[str, Any], cluster: dict[str, Any] | None, message: str
) -> None:
    with pytest.raises(KubeconfigInvalid, match=message) as refused:
        api_server_credentials(kubeconfig(user, cluster), "lab")
    assert "plain text" not in str(refused.value)


def test_a_context_without_a_user_sends_no_credentials() -> None:
    config = kubeconfig(None)
    del config["contexts"][0]["context"]["user"]
    credentials = api_server_credentials(config, "lab")
    assert credentials.auth_headers() == ()
