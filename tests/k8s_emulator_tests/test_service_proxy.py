"""The services/proxy subresource and the simulated engine behind it: the API server's own
answers (404, 503 no endpoints, no service port, dial refused) and the backend's answers
passed through as they are (status, body, method and path)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.k8s_emulator import Emulator
from tests.k8s_emulator.fixtures import kubectl_path
from tests.k8s_emulator.runtime_http import SimulatedEngine
from tests.k8s_emulator.waiting import eventually, raw_request

NS = "serve"


def _runtime(
    name: str,
    args: list[str],
    *,
    image: str = "vllm/vllm-openai:v0.8.5",
    container_port: int = 8000,
    replicas: int = 1,
) -> list[dict[str, Any]]:
    labels = {"app": name}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": NS},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {
                                "name": "engine",
                                "image": image,
                                "args": args,
                                "ports": [{"name": "http", "containerPort": container_port}],
                            }
                        ]
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": NS},
            "spec": {
                "selector": labels,
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            },
        },
    ]


def _create(emu: Emulator, objects: list[dict[str, Any]]) -> None:
    paths = {
        "Namespace": "/api/v1/namespaces",
        "Deployment": f"/apis/apps/v1/namespaces/{NS}/deployments",
        "Service": f"/api/v1/namespaces/{NS}/services",
    }
    for obj in objects:
        status, body = raw_request(emu.url, "POST", paths[obj["kind"]], obj)
        assert status in (201, 409), body


@pytest.fixture
def emu(k8s_emulator: Emulator) -> Emulator:
    _create(k8s_emulator, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}])
    return k8s_emulator


def _proxy(emu: Emulator, service: str, path: str, method: str = "GET", body: Any = None) -> Any:
    return raw_request(
        emu.url, method, f"/api/v1/namespaces/{NS}/services/{service}/proxy/{path}", body
    )


def _serving(emu: Emulator, service: str) -> None:
    eventually(lambda: _proxy(emu, service, "health")[0] == 200, what=f"{service} serving")


def test_no_endpoints_before_ready_then_the_engine_answers(emu: Emulator) -> None:
    _create(emu, _runtime("vllm", ["--model", "/models/llama", "--served-model-name", "llama-8b"]))
    status, body = _proxy(emu, "vllm:http", "health")
    # The pod is not Ready yet: the API server answers itself, as a Status.
    assert status == 503
    assert body["kind"] == "Status" and body["reason"] == "ServiceUnavailable"
    assert body["message"] == 'no endpoints available for service "vllm"'

    _serving(emu, "vllm:http")
    pods = emu.objects("pods", namespace=NS)
    ready = [c for c in pods[0]["status"]["conditions"] if c["type"] == "Ready"]
    assert ready[0]["status"] == "True"  # served only once the pod is Ready

    status, models = _proxy(emu, "vllm:80", "v1/models")  # a port number maps to its name
    assert status == 200
    assert [m["id"] for m in models["data"]] == ["llama-8b"]
    assert models["data"][0]["root"] == "/models/llama"

    request = {"model": "llama-8b", "prompt": "Hello", "max_tokens": 5}
    status, completion = _proxy(emu, "vllm:http", "v1/completions", "POST", request)
    assert status == 200
    assert completion["usage"]["completion_tokens"] == 5
    assert len(completion["choices"][0]["text"].split()) == 5
    assert completion["model"] == "llama-8b"


def test_backend_answers_come_back_as_they_are(emu: Emulator) -> None:
    _create(emu, _runtime("vllm", ["--model", "/m", "--served-model-name", "a", "b"]))
    _serving(emu, "vllm:http")
    status, models = _proxy(emu, "vllm:http", "v1/models")
    assert status == 200 and [m["id"] for m in models["data"]] == ["a", "b"]
    # Without a port the API server looks for an unnamed port, and this Service has none.
    status, body = _proxy(emu, "vllm", "v1/models")
    assert (status, body["message"]) == (503, 'no endpoints available for service "vllm"')

    wrong = {"model": "c", "prompt": "Hi", "max_tokens": 2}
    status, body = _proxy(emu, "vllm:http", "v1/completions", "POST", wrong)
    assert status == 404 and body["message"] == "The model `c` does not exist."
    assert body.get("kind") != "Status"  # the engine's body, not the API server's
    status, body = _proxy(emu, "vllm:http", "v1/completions")  # GET where POST is routed
    assert (status, body) == (405, {"detail": "Method Not Allowed"})
    status, body = _proxy(emu, "vllm:http", "nowhere?x=1")
    assert (status, body) == (404, {"detail": "Not Found"})
    status, chat = _proxy(
        emu,
        "vllm:http",
        "v1/chat/completions",
        "POST",
        {"model": "b", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3},
    )
    assert status == 200 and chat["usage"]["completion_tokens"] == 3


def test_llama_cpp_serves_its_alias_and_default_port(emu: Emulator) -> None:
    args = ["-m", "/models/q4.gguf", "--alias", "llama-q4", "--ctx-size", "4096"]
    _create(
        emu, _runtime("llama", args, image="ghcr.io/ggml-org/llama.cpp:server", container_port=8080)
    )
    _serving(emu, "llama:http")
    status, health = _proxy(emu, "llama:http", "health")
    assert (status, health) == (200, {"status": "ok"})
    status, models = _proxy(emu, "llama:http", "v1/models")
    assert [m["id"] for m in models["data"]] == ["llama-q4"]
    # llama-server does not check the model name.
    status, completion = _proxy(
        emu, "llama:http", "v1/completions", "POST", {"model": "x", "prompt": "a", "max_tokens": 4}
    )
    assert status == 200 and completion["usage"]["completion_tokens"] == 4


def test_api_server_errors(emu: Emulator) -> None:
    # The engine listens on --port 8000 but the pod declares 9000: the dial is refused.
    _create(emu, _runtime("skew", ["--model", "/m", "--port", "8000"], container_port=9000))
    eventually(
        lambda: (
            _proxy(emu, "skew:http", "health")[0] == 503
            and "connection refused" in _proxy(emu, "skew:http", "health")[1]["message"]
        ),
        what="a refused dial",
    )
    status, body = _proxy(emu, "skew:http", "health")
    assert body["message"].startswith("error trying to reach service: dial tcp 10.244.")
    assert body["message"].endswith(":9000: connect: connection refused")

    status, body = _proxy(emu, "skew:81", "health")
    assert status == 503 and body["message"] == 'no service port 81 found for service "skew"'
    status, body = _proxy(emu, "absent:http", "health")
    assert status == 404 and body["message"] == 'services "absent" not found'
    status, body = _proxy(emu, "ftp:skew:http", "health")
    assert status == 400 and body["message"] == 'invalid service request "ftp:skew:http"'


def test_discovery_lists_the_proxy_subresource(emu: Emulator) -> None:
    _, resources = raw_request(emu.url, "GET", "/api/v1")
    proxy = next(r for r in resources["resources"] if r["name"] == "services/proxy")
    assert proxy["kind"] == "ServiceProxyOptions"
    assert set(proxy["verbs"]) >= {"get", "create"}


def test_kubectl_get_raw_reaches_the_engine(emu: Emulator, tmp_path: Path) -> None:
    _create(emu, _runtime("vllm", ["--model", "/m", "--served-model-name", "served"]))
    _serving(emu, "vllm:http")
    done = subprocess.run(
        [
            str(kubectl_path()),
            "--kubeconfig",
            str(emu.write_kubeconfig(tmp_path / "kubeconfig")),
            "get",
            "--raw",
            f"/api/v1/namespaces/{NS}/services/vllm:http/proxy/v1/models",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert '"id": "served"' in done.stdout


@pytest.mark.parametrize(
    ("container", "engine", "port", "names"),
    [
        ({"image": "vllm/vllm-openai", "args": ["--model", "/m"]}, "vllm", 8000, ["/m"]),
        (
            {"image": "vllm/vllm-openai", "args": ["serve", "org/x", "--port=9001"]},
            "vllm",
            9001,
            ["org/x"],
        ),
        ({"image": "vllm/vllm-openai"}, "vllm", 8000, ["facebook/opt-125m"]),
        (
            {"image": "x/llama.cpp:server", "args": ["-m", "/g.gguf"]},
            "llama.cpp",
            8080,
            ["/g.gguf"],
        ),
        (
            {"image": "custom", "command": ["llama-server"], "args": ["-a", "n", "--port", "7"]},
            "llama.cpp",
            7,
            ["n"],
        ),
    ],
)
def test_engine_read_from_the_container_spec(
    container: dict[str, Any], engine: str, port: int, names: list[str]
) -> None:
    found = SimulatedEngine.of(container)
    assert (found.engine, found.port, found.served_names) == (engine, port, names)


def _stream_events(emu: Emulator, service: str, body: dict[str, Any]) -> list[tuple[float, bytes]]:
    """POST through the proxy and read the answer as it arrives: (seconds since the
    request was sent, bytes) per socket read."""
    import http.client
    import json
    import time
    from urllib.parse import urlsplit

    url = urlsplit(emu.url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    try:
        started = time.monotonic()
        connection.request(
            "POST",
            f"/api/v1/namespaces/{NS}/services/{service}/proxy/v1/completions",
            json.dumps(body),
            {"Content-Type": "application/json", "Authorization": f"Bearer {emu.token}"},
        )
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type", "").startswith("text/event-stream")
        assert response.getheader("Transfer-Encoding") == "chunked"
        reads: list[tuple[float, bytes]] = []
        while chunk := response.read1(65536):
            reads.append((time.monotonic() - started, chunk))
        return reads
    finally:
        connection.close()


def test_a_streamed_completion_comes_through_the_proxy_event_by_event(emu: Emulator) -> None:
    import json

    from tests.k8s_emulator.runtime_http import FIRST_TOKEN_S, TOKEN_INTERVAL_S

    _create(emu, _runtime("vllm", ["--model", "/m", "--served-model-name", "llama-8b"]))
    _serving(emu, "vllm:http")
    tokens = 8
    body = {
        "model": "llama-8b",
        "prompt": "Hello there",
        "max_tokens": tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    reads = _stream_events(emu, "vllm:http", body)
    text = b"".join(chunk for _, chunk in reads).decode()
    events = [e.removeprefix("data: ") for e in text.split("\n\n") if e]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert [c["choices"][0]["text"] for c in chunks[:tokens]] == [
        " the",
        " quick",
        " brown",
        " fox",
        " jumps",
        " over",
        " the",
        " lazy",
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks[:tokens]] == [None] * 7 + ["length"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == tokens
    # Flushed as written: the first token after the simulated prefill, and the tokens in
    # separate reads spread over the engine's pacing, not one buffered body at the end.
    assert reads[0][0] >= FIRST_TOKEN_S
    token_reads = [t for t, chunk in reads if b'"text"' in chunk]
    assert len(token_reads) >= tokens - 1, reads
    assert token_reads[-1] - token_reads[0] >= (tokens - 1) * TOKEN_INTERVAL_S * 0.9

    # The API server logged the proxied request and the engine answered it, without the
    # bearer token (the API server consumes Authorization).
    (proxied,) = [p for p in emu.proxy_log() if p.path == "/v1/completions"]
    assert (proxied.service_id, proxied.status) == ("vllm:http", 200)
    assert proxied.streamed_events == tokens + 2  # the tokens, the usage event, [DONE]
    (served,) = [s for s in emu.engine_log() if s.path == "/v1/completions"]
    assert (served.server, served.via, served.status) == ("vllm", "service-proxy", 200)
    assert "authorization" not in served.headers


def test_stream_options_without_stream(emu: Emulator) -> None:
    _create(emu, _runtime("vllm", ["--model", "/m", "--served-model-name", "m"]))
    _serving(emu, "vllm:http")
    request = {"model": "m", "prompt": "Hi", "max_tokens": 2, "stream_options": {"a": 1}}
    status, body = _proxy(emu, "vllm:http", "v1/completions", "POST", request)
    assert status == 400 and "stream=True" in body["message"]
