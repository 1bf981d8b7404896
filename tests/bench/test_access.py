"""The benchmark client through an API server's service proxy over TLS: a stand-in API
server (aiohttp with a throwaway CA) that requires a client certificate, checks the bearer
token, and streams server-sent events, reached with the CA, client certificate, key and
tls-server-name taken from a kubeconfig. What must fail (another CA, a name the server's
certificate does not hold, no client certificate, an endpoint API key) fails."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from budcluster.bench.access import EndpointAccess
from budcluster.bench.config import BenchmarkConfig
from budcluster.bench.report import write_report
from budcluster.bench.runner import run_benchmark
from budcluster.bench.specs import ProfileSpec, TokenLengthSpec
from budcluster.errors import ConfigurationError
from budcluster.kubeconfig import api_server_credentials
from budcluster.secretfiles import process_secret_dir, temporary_secret_file
from budcluster.targets.kubernetes.reach import in_cluster_service, service_proxy_access
from tests.support.tls import ThrowawayCA, make_test_ca

TOKEN = "bench-token-123"
SERVER_NAME = "api.lab.example"
IN_CLUSTER = "http://rt-llama.bud-llama.svc:8000"
PROXY = "/api/v1/namespaces/bud-llama/services/rt-llama:8000/proxy"
TOKENS = 6
TOKEN_GAP_S = 0.005


@dataclass
class FakeApiServer:
    """What the stand-in API server saw: one entry per request it served."""

    url: str
    seen: list[dict[str, Any]] = field(default_factory=list)


async def _proxy(request: web.Request, seen: list[dict[str, Any]]) -> web.StreamResponse:
    peer = request.transport.get_extra_info("peercert") if request.transport else None
    subject = dict(item[0] for item in (peer or {}).get("subject", ()))
    seen.append(
        {
            "path": request.path,
            "authorization": request.headers.get("Authorization"),
            "client_cn": subject.get("commonName"),
        }
    )
    if request.headers.get("Authorization") != f"Bearer {TOKEN}":
        return web.json_response({"kind": "Status", "code": 401}, status=401)
    if request.path != PROXY + "/v1/completions":
        return web.json_response({"kind": "Status", "code": 404}, status=404)
    body = await request.json()
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for index in range(TOKENS):
        await asyncio.sleep(TOKEN_GAP_S)
        chunk = {"choices": [{"index": 0, "text": f" t{index}", "finish_reason": None}]}
        await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    usage = {"prompt_tokens": 4, "completion_tokens": TOKENS, "total_tokens": TOKENS + 4}
    if (body.get("stream_options") or {}).get("include_usage"):
        await response.write(b"data: " + json.dumps({"choices": [], "usage": usage}).encode())
        await response.write(b"\n\n")
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


@pytest.fixture(scope="module")
def ca() -> ThrowawayCA:
    return make_test_ca([SERVER_NAME])


@pytest.fixture(scope="module")
def api_server(ca: ThrowawayCA) -> Iterator[FakeApiServer]:
    """An HTTPS server on 127.0.0.1 whose certificate names only ``SERVER_NAME`` and that
    requires a client certificate from the same CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=ca.ca.cert_pem)
    context.verify_mode = ssl.CERT_REQUIRED
    with (
        temporary_secret_file(ca.server.cert_pem, name="server.crt") as cert,
        temporary_secret_file(ca.server.key_pem, name="server.key") as key,
    ):
        context.load_cert_chain(cert, key)
    seen: list[dict[str, Any]] = []
    app = web.Application()

    async def handle(request: web.Request) -> web.StreamResponse:
        return await _proxy(request, seen)

    app.router.add_route("POST", "/{tail:.*}", handle)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    started = threading.Event()
    port: list[int] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        loop.run_until_complete(site.start())
        port.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield FakeApiServer(f"https://127.0.0.1:{port[0]}", seen)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _access(
    server: FakeApiServer, ca: ThrowawayCA, *, ca_pem: str | None = None, **cluster: Any
) -> EndpointAccess:
    config = {
        "clusters": [
            {
                "name": "lab",
                "cluster": {
                    "server": server.url,
                    "certificate-authority-data": _b64(ca_pem or ca.ca.cert_pem),
                    "tls-server-name": SERVER_NAME,
                    **cluster,
                },
            }
        ],
        "users": [
            {
                "name": "bench",
                "user": {
                    "token": TOKEN,
                    "client-certificate-data": _b64(ca.client.cert_pem),
                    "client-key-data": _b64(ca.client.key_pem),
                },
            }
        ],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "bench"}}],
        "current-context": "lab",
    }
    service = in_cluster_service(IN_CLUSTER)
    assert service is not None
    return service_proxy_access(api_server_credentials(config, "lab"), service)


def _config(access: EndpointAccess | None, **overrides: Any) -> BenchmarkConfig:
    values: dict[str, Any] = {
        "url": IN_CLUSTER,
        "model": "llama",
        "profile": ProfileSpec("concurrency", 2),
        "max_requests": 6,
        "input_tokens": TokenLengthSpec("fixed", 8),
        "output_tokens": TokenLengthSpec("fixed", TOKENS),
        "request_timeout_s": 10.0,
        "access": access,
    }
    values.update(overrides)
    return BenchmarkConfig(**values)


def test_the_benchmark_reaches_the_service_through_the_proxy_with_the_kubeconfig(
    api_server: FakeApiServer, ca: ThrowawayCA, tmp_path: Path
) -> None:
    before = len(api_server.seen)
    result = run_benchmark(_config(_access(api_server, ca)))
    seen = api_server.seen[before:]
    assert result.overall.requests_completed == 6, [r.error for r in result.records]
    # Every request went to the Service's proxy path, with the token and the client
    # certificate the kubeconfig holds.
    assert {s["path"] for s in seen} == {PROXY + "/v1/completions"}
    assert {s["authorization"] for s in seen} == {f"Bearer {TOKEN}"}
    assert {s["client_cn"] for s in seen} == {"bench-user"}
    # The run records the in-cluster URL and how it was reached, no secret.
    assert result.run.url == IN_CLUSTER
    via = result.run.settings["reached_via"]
    assert via == f"via API server service proxy {api_server.url}{PROXY}"
    assert TOKEN not in json.dumps(result.run.settings, default=str)
    # Streamed: the first token is timed, and the gaps between tokens are.
    ttft = result.overall.latencies_ms["ttft_ms"]
    itl = result.overall.latencies_ms["itl_ms"]
    assert ttft.p50 >= TOKEN_GAP_S * 1000 * 0.9
    assert itl.mean >= TOKEN_GAP_S * 1000 * 0.9
    assert {r.output_tokens for r in result.records} == {TOKENS}
    # The reports say it after the endpoint.
    folder = write_report(result, tmp_path)
    for name in ("report.md", "report.html"):
        text = (folder / name).read_text()
        assert f"reached {via}" in text, name
        assert TOKEN not in text


def test_worker_processes_each_build_the_tls_session(
    api_server: FakeApiServer, ca: ThrowawayCA
) -> None:
    result = run_benchmark(_config(_access(api_server, ca), processes=2, max_requests=4))
    assert result.overall.requests_completed == 4, [r.error for r in result.records]


@pytest.mark.parametrize(
    "breaks",
    ["another CA", "the server's certificate does not name the host", "no client certificate"],
)
def test_a_connection_the_kubeconfig_does_not_vouch_for_fails(
    api_server: FakeApiServer, ca: ThrowawayCA, breaks: str
) -> None:
    access = _access(api_server, ca)
    if breaks == "another CA":
        access = _access(api_server, ca, ca_pem=make_test_ca([SERVER_NAME]).ca.cert_pem)
    elif breaks == "the server's certificate does not name the host":
        access = replace(access, tls_server_name=None)  # 127.0.0.1 is not in it
    else:
        access = replace(access, client_cert_pem=None, client_key_pem=None)
    before = len(api_server.seen)
    result = run_benchmark(_config(access, max_requests=2))
    assert result.overall.requests_completed == 0
    assert result.run.status == "failed"
    assert {r.error_kind for r in result.records} <= {"connection", "client", "disconnected"}
    assert len(api_server.seen) == before  # no request got through


def test_the_client_key_is_on_disk_only_while_the_context_loads(ca: ThrowawayCA) -> None:
    access = EndpointAccess(
        base_url="https://127.0.0.1:1/x",
        via="via test",
        ca_pem=ca.ca.cert_pem,
        client_cert_pem=ca.client.cert_pem,
        client_key_pem=ca.client.key_pem,
    )
    assert access.ssl_context() is not None
    left = [p for p in process_secret_dir().rglob("*") if p.is_file()]
    assert not [p for p in left if p.name in ("client.crt", "client.key")]
    bad = replace(access, client_key_pem=ca.server.key_pem)  # not the certificate's key
    with pytest.raises(ConfigurationError, match="client certificate and key for via test"):
        bad.ssl_context()
    assert replace(access, base_url="http://plain").ssl_context() is None


def test_an_endpoint_api_key_cannot_travel_through_the_api_server(
    api_server: FakeApiServer, ca: ThrowawayCA
) -> None:
    config = _config(_access(api_server, ca), api_key="sk-endpoint")
    with pytest.raises(ConfigurationError, match="takes the Authorization header for itself"):
        config.validate()


def test_only_an_in_cluster_url_of_a_kubernetes_cluster_goes_through_the_api_server() -> None:
    from budcluster.targets.ref import ClusterRef
    from tasks.targets import endpoint_access

    # A host's URL is dialled directly, without even looking the cluster up.
    assert endpoint_access("no-such-cluster", "http://127.0.0.1:8000") is None
    assert endpoint_access(None, IN_CLUSTER) is None
    hosts = ClusterRef(name="lab", kind="hosts", credentials_block="lab-hosts")
    assert endpoint_access(hosts, IN_CLUSTER) is None
