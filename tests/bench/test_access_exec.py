"""The benchmark through an API server's service proxy with a kubeconfig whose user is an
exec plugin, as provision-cluster registers EKS clusters (``aws eks get-token``).

A real plugin script (``tests/support/exec_plugin.py``) sits on ``PATH`` as ``aws`` and
issues short-lived tokens; the stand-in API server (HTTPS, a throwaway CA) accepts a
bearer only if the plugin issued it and only before its expiry, as an API server does with
an EKS token. The run succeeds only if the client renews the token in the middle of it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from budcluster.bench.access import EndpointAccess, IssuedCredential
from budcluster.bench.config import BenchmarkConfig
from budcluster.bench.runner import run_benchmark
from budcluster.bench.specs import ProfileSpec, TokenLengthSpec
from budcluster.errors import ConfigurationError
from budcluster.kubeconfig import KubeconfigInvalid
from budcluster.secretfiles import temporary_secret_file
from budcluster.settings import get_settings
from budcluster.targets.kubernetes.reach import in_cluster_service
from tasks.targets import service_proxy_access_from_kubeconfig
from tests.support.exec_plugin import FakePlugin, eks_user, install_plugin
from tests.support.tls import ThrowawayCA, make_test_ca

SERVER_NAME = "api.eks.example"
IN_CLUSTER = "http://rt-llama.bud-llama.svc:8000"
PROXY = "/api/v1/namespaces/bud-llama/services/rt-llama:8000/proxy"
TOKENS = 4


@dataclass
class TokenCheckingApiServer:
    url: str
    state: dict[str, Path] = field(default_factory=dict)
    """``tokens``: the plugin's list of issued tokens, set per test."""
    seen: list[tuple[str | None, float, int]] = field(default_factory=list)
    """(bearer, when, status) of every request."""


def _issued(path: Path | None) -> dict[str, float]:
    if path is None or not path.exists():
        return {}
    return {t: float(e) for t, e in (line.split() for line in path.read_text().splitlines())}


async def _handle(request: web.Request, server: TokenCheckingApiServer) -> web.StreamResponse:
    header = request.headers.get("Authorization", "")
    bearer = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
    now = time.time()
    expiry = _issued(server.state.get("tokens")).get(bearer or "")
    if expiry is None or now >= expiry or request.path != PROXY + "/v1/completions":
        server.seen.append((bearer, now, 401))
        return web.json_response(
            {"kind": "Status", "code": 401, "reason": "Unauthorized"}, status=401
        )
    server.seen.append((bearer, now, 200))
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for index in range(TOKENS):
        await asyncio.sleep(0.002)
        chunk = {"choices": [{"index": 0, "text": f" t{index}", "finish_reason": None}]}
        await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


@pytest.fixture(scope="module")
def ca() -> ThrowawayCA:
    return make_test_ca([SERVER_NAME])


@pytest.fixture(scope="module")
def api_server(ca: ThrowawayCA) -> Iterator[TokenCheckingApiServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with (
        temporary_secret_file(ca.server.cert_pem, name="server.crt") as cert,
        temporary_secret_file(ca.server.key_pem, name="server.key") as key,
    ):
        context.load_cert_chain(cert, key)
    server = TokenCheckingApiServer("")
    app = web.Application()

    async def handle(request: web.Request) -> web.StreamResponse:
        return await _handle(request, server)

    app.router.add_route("POST", "/{tail:.*}", handle)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        server.url = f"https://127.0.0.1:{port}"
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("BUDCLUSTER_KUBECONFIG_EXEC_ALLOW", raising=False)  # the default list
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _kubeconfig(server: TokenCheckingApiServer, ca: ThrowawayCA, user: dict[str, Any]) -> Any:
    return {
        "clusters": [
            {
                "name": "eks",
                "cluster": {
                    "server": server.url,
                    "certificate-authority-data": base64.b64encode(
                        ca.ca.cert_pem.encode()
                    ).decode(),
                    "tls-server-name": SERVER_NAME,
                },
            }
        ],
        "users": [{"name": "eks", "user": user}],
        "contexts": [{"name": "eks", "context": {"cluster": "eks", "user": "eks"}}],
        "current-context": "eks",
    }


def _access(
    server: TokenCheckingApiServer, ca: ThrowawayCA, fake: FakePlugin, **plugin: Any
) -> EndpointAccess:
    server.state["tokens"] = fake.state / "tokens.txt"
    service = in_cluster_service(IN_CLUSTER)
    assert service is not None
    config = _kubeconfig(server, ca, eks_user(**plugin))
    return service_proxy_access_from_kubeconfig(config, "eks", service)


def _config(access: EndpointAccess, **overrides: Any) -> BenchmarkConfig:
    values: dict[str, Any] = {
        "url": IN_CLUSTER,
        "model": "llama",
        "profile": ProfileSpec("concurrency", 2),
        "input_tokens": TokenLengthSpec("fixed", 8),
        "output_tokens": TokenLengthSpec("fixed", TOKENS),
        "request_timeout_s": 10.0,
        "access": access,
    }
    values.update(overrides)
    return BenchmarkConfig(**values)


def _served(server: TokenCheckingApiServer, since: int) -> list[tuple[str | None, float, int]]:
    return server.seen[since:]


def test_the_token_is_renewed_during_the_run_and_every_request_is_let_through(
    api_server: TokenCheckingApiServer,
    ca: ThrowawayCA,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = install_plugin(tmp_path, monkeypatch, lifetime_s=4)
    access = _access(api_server, ca, fake)
    assert len(fake.calls()) == 1  # run once when the access is built, before any load
    before = len(api_server.seen)
    result = run_benchmark(_config(access, duration_s=6.0))
    seen = _served(api_server, before)
    failed = [(r.error_kind, r.error) for r in result.records if r.error_kind]
    assert result.overall.requests_failed == 0, failed[:3]
    assert result.overall.requests_completed >= 20
    assert {status for _, _, status in seen} == {200}
    # The plugin ran again during the run (tokens last 3-4 s; renewed at half their life),
    # and the requests used the new tokens, each before its expiry.
    issued = fake.issued()
    used = {bearer for bearer, _, _ in seen}
    assert len(fake.calls()) >= 3, fake.calls()
    assert len(used) >= 3 and used <= set(issued)
    assert all(when < issued[bearer or ""] for bearer, when, _ in seen)
    # Every run got the kubeconfig's arguments and env, and no terminal.
    for call in fake.calls():
        assert call["argv"] == [
            "eks",
            "get-token",
            "--cluster-name",
            "lab",
            "--region",
            "eu-west-1",
        ]
        assert call["env"]["AWS_REGION"] == "eu-west-1" and call["stdin"] == ""
    # No token reaches what the run records.
    assert not any(token in json.dumps(result.run.settings, default=str) for token in issued)

    # The control: the first token, sent as it was without renewal, is refused now that
    # it has expired, so the run above passed only because it renewed.
    first = next(iter(issued))
    stale = replace(
        access, credential_plugin=None, issued=None, headers=(("Authorization", f"Bearer {first}"),)
    )
    control = run_benchmark(_config(stale, max_requests=2))
    assert control.overall.requests_completed == 0
    assert {r.error_kind for r in control.records} == {"http_4xx"}
    assert all("401" in (r.error or "") for r in control.records)
    assert [s[0] for s in api_server.seen[-2:]] == [first, first]


def test_each_worker_process_renews_the_token_itself(
    api_server: TokenCheckingApiServer,
    ca: ThrowawayCA,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Longer-lived tokens than above: spawning the processes takes seconds on a busy machine,
    # and 6 s tokens over a 5 s run let 604 requests through expired under a full parallel
    # run. 20 s tokens renew at half-life (10 s), inside a 12 s run, with 10 s to spare.
    fake = install_plugin(tmp_path, monkeypatch, lifetime_s=20)
    access = _access(api_server, ca, fake)
    before = len(api_server.seen)
    result = run_benchmark(_config(access, duration_s=12.0, processes=2))
    failed = [(r.error_kind, r.error) for r in result.records if r.error_kind]
    assert result.overall.requests_failed == 0, failed[:3]
    assert {status for _, _, status in _served(api_server, before)} == {200}
    # The parent ran it once; each of the two worker processes ran it on its own after.
    calls = fake.calls()
    renewers = {call["ppid"] for call in calls[1:]}
    assert calls[0]["ppid"] not in renewers
    assert len(renewers) == 2, calls


def test_a_token_that_outlasts_the_run_is_not_fetched_again(
    api_server: TokenCheckingApiServer,
    ca: ThrowawayCA,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = install_plugin(tmp_path, monkeypatch, lifetime_s=900)
    result = run_benchmark(_config(_access(api_server, ca, fake), max_requests=8))
    assert result.overall.requests_completed == 8
    assert len(fake.calls()) == 1


def test_when_renewal_fails_the_requests_after_expiry_fail_with_the_plugins_error(
    api_server: TokenCheckingApiServer,
    ca: ThrowawayCA,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 5 s tokens over an 8 s run: 3 s tokens over 4 s failed once in a parallel run, the
    # run's first seconds (process start) eating the token's life on a loaded machine.
    fake = install_plugin(tmp_path, monkeypatch, lifetime_s=5, fail_after=1)
    access = _access(api_server, ca, fake)
    before = len(api_server.seen)
    result = run_benchmark(_config(access, duration_s=8.0))
    assert result.overall.requests_completed > 0
    failed = [r for r in result.records if r.error_kind]
    assert failed, "the token expired and could not be renewed, yet nothing failed"
    assert {r.error_kind for r in failed} == {"credentials"}
    assert "exited with status 1: An error occurred (ExpiredToken)" in (failed[0].error or "")
    # None was sent with an expired token: they failed on the worker.
    assert {status for _, _, status in _served(api_server, before)} == {200}
    assert len(fake.calls()) >= 2


def test_a_plugin_the_allow_list_does_not_name_never_runs(
    api_server: TokenCheckingApiServer,
    ca: ThrowawayCA,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = install_plugin(tmp_path, monkeypatch, name="token-helper")
    with pytest.raises(KubeconfigInvalid, match=r"^users\[eks\]\.user\.exec\.args: 'token-helper'"):
        _access(api_server, ca, fake, command="token-helper", args=[])
    assert fake.calls() == []


def test_a_certificate_from_the_plugin_must_outlast_a_timed_run(ca: ThrowawayCA) -> None:
    class Plugin:
        via = "the exec plugin 'kubelogin' (users[aks].user.exec)"

        def issue(self) -> IssuedCredential:
            raise AssertionError("not run again")

    issued = IssuedCredential(
        client_cert_pem=ca.client.cert_pem,
        client_key_pem=ca.client.key_pem,
        expires_at=time.time() + 120,
    )
    access = EndpointAccess(
        base_url="https://127.0.0.1:1/x", via="via test", credential_plugin=Plugin(), issued=issued
    )
    with pytest.raises(ConfigurationError, match=r"certificate from the exec plugin 'kubelogin'"):
        _config(access, duration_s=600.0).validate()
    _config(access, duration_s=60.0, request_timeout_s=30.0).validate()
    _config(access, max_requests=10).validate()  # no time bound to check


def test_a_users_own_token_wins_and_the_plugin_never_runs(
    api_server: TokenCheckingApiServer,
    ca: ThrowawayCA,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = install_plugin(tmp_path, monkeypatch)
    user = {**eks_user(), "token": "static-token"}
    service = in_cluster_service(IN_CLUSTER)
    assert service is not None
    access = service_proxy_access_from_kubeconfig(_kubeconfig(api_server, ca, user), "eks", service)
    assert access.headers == (("Authorization", "Bearer static-token"),)
    assert access.renewing_bearer() is None
    assert fake.calls() == []
