"""A tiny OpenAI-compatible streaming server for tests and perf scripts.

It is a raw asyncio protocol (no framework) so that, at zero latency, it can answer far
faster than any client on the same machine can ask: the ceiling benchmark must measure
the client, not the server. It can also inject a known TTFT and inter-chunk delay, and
misbehave the way real servers do (no ``[DONE]``, no usage, 422 on unknown fields,
multi-token chunks, dropping idle keep-alive connections).

The server records the delays it actually produced (sleep overshoot included) and serves
them on ``GET /stats`` so accuracy checks can compare the client against the truth.

Run it standalone: ``python -m budcluster.bench.testing_server --port 8123 --ttft-ms 50``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

_REASONS = {200: "OK", 404: "Not Found", 422: "Unprocessable Entity", 500: "Internal Server Error"}


@dataclass(slots=True)
class ServerBehaviour:
    """How the server answers. Defaults mimic a well-behaved vLLM."""

    chunks: int = 16
    tokens_per_chunk: int = 1
    ttft_s: float = 0.0
    itl_s: float = 0.0
    send_done: bool = True
    send_usage: bool = True
    """Only when the request asks with ``stream_options.include_usage``, as vLLM does."""
    reject_fields: tuple[str, ...] = ()
    """Answer 422 naming the field when the body contains any of these keys."""
    close_after_requests: int = 0
    """Close the connection after this many responses on it (0 = keep alive forever).

    No ``Connection: close`` is sent: llama-server (cpp-httplib) closes after every
    streamed response while its headers still promise ``Keep-Alive: timeout=5, max=100``."""
    close_delay_s: float = 0.0
    """With ``close_after_requests``: shut the write side (FIN) this long after the last
    response byte instead of at once, discard whatever arrives meanwhile and for
    ``drain_s`` after, then close. This is cpp-httplib's ``drain_and_close_socket``: the
    HTTP thread returns from the handler, shuts down writing, drains for up to 100 ms.
    A client that reuses the connection in that window loses its request."""
    drain_s: float = 0.1
    status: int = 200
    """Answer every completion request with this status (non-200 sends an error body)."""
    close_before_response: int = 0
    """Close the connection on the first N completion requests after reading them, without
    answering: a server that fails mid-request (not a stale keep-alive connection)."""


@dataclass(slots=True)
class ServerStats:
    requests: int = 0
    ttft_sum_s: float = 0.0
    ttft_count: int = 0
    itl_sum_s: float = 0.0
    itl_count: int = 0
    rejected: int = 0
    dropped: int = 0
    discarded_bytes: int = 0
    """Bytes that arrived on a connection the server had already decided to close."""
    bodies: list[dict[str, object]] = field(default_factory=list)
    keep_bodies: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "ttft_mean_ms": 1000 * self.ttft_sum_s / self.ttft_count if self.ttft_count else None,
            "itl_mean_ms": 1000 * self.itl_sum_s / self.itl_count if self.itl_count else None,
            "rejected": self.rejected,
            "dropped": self.dropped,
            "discarded_bytes": self.discarded_bytes,
        }


def _sse(payload: Mapping[str, object]) -> bytes:
    data = b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


def _chunk_payload(api: str, index: int, tokens_per_chunk: int) -> dict[str, object]:
    text = "".join(f" tok{index * tokens_per_chunk + k}" for k in range(tokens_per_chunk))
    if api == "chat":
        return {
            "id": "cmpl-test",
            "object": "chat.completion.chunk",
            "model": "test",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
        }
    return {
        "id": "cmpl-test",
        "object": "text_completion",
        "model": "test",
        "choices": [{"index": 0, "text": text, "finish_reason": None}],
    }


class _Responses:
    """Pre-built response pieces, so the zero-latency path is one ``write`` per request."""

    def __init__(self, behaviour: ServerBehaviour) -> None:
        self.head = (
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        self.chunks: dict[str, list[bytes]] = {}
        self.tails: dict[tuple[str, bool], bytes] = {}
        for api in ("completions", "chat"):
            pieces = [
                _sse(_chunk_payload(api, i, behaviour.tokens_per_chunk))
                for i in range(behaviour.chunks)
            ]
            if api == "chat":
                # vLLM opens a chat stream with a role-only delta that carries no text.
                role = {"choices": [{"index": 0, "delta": {"role": "assistant"}}]}
                pieces.insert(0, _sse(role))
            self.chunks[api] = pieces
            for usage in (False, True):
                tail = b""
                if usage:
                    n = behaviour.chunks * behaviour.tokens_per_chunk
                    usage_block = {
                        "prompt_tokens": 8,
                        "completion_tokens": n,
                        "total_tokens": n + 8,
                    }
                    tail += _sse({"choices": [], "usage": usage_block})
                if behaviour.send_done:
                    tail += b"e\r\ndata: [DONE]\n\n\r\n"
                self.tails[(api, usage)] = tail + b"0\r\n\r\n"


class _DelayedStream:
    """Writes one response's chunks at absolute deadlines with ``loop.call_at``.

    Callbacks instead of a coroutine per stream keep the server's work per chunk small,
    so 64 streams due in the same millisecond go out close together. Deadlines are
    absolute, so a late wake-up does not push the later chunks back.
    """

    def __init__(self, protocol: _Protocol, api: str, usage: bool, received: float) -> None:
        self.protocol = protocol
        self.server = protocol.server
        self.chunks = self.server.responses.chunks[api]
        self.tail = self.server.responses.tails[(api, usage)]
        self.received = received
        self.index = 0
        self.text_index = 0
        self.previous: float | None = None
        self.loop = asyncio.get_running_loop()
        # perf_counter and the loop's clock are both CLOCK_MONOTONIC on Linux; converting
        # through "now" keeps this right where they are not.
        self.offset = self.loop.time() - time.perf_counter()

    def start(self) -> None:
        transport = self.protocol.transport
        assert transport is not None
        transport.write(self.server.responses.head)
        self._schedule()

    def _schedule(self) -> None:
        b = self.server.behaviour
        deadline = self.received + b.ttft_s + self.text_index * b.itl_s
        if self.index < len(self.chunks) and b'"role"' in self.chunks[self.index]:
            deadline = 0.0  # the role-only chat delta goes out at once
        # The loop's timers may fire up to about a millisecond late; the server records
        # what it really produced, and that is the truth the accuracy check compares to.
        if deadline <= time.perf_counter():
            self._write()
        else:
            self.loop.call_at(deadline + self.offset, self._write)

    def _write(self) -> None:
        transport = self.protocol.transport
        if transport is None or transport.is_closing():
            return
        piece = self.chunks[self.index]
        transport.write(piece)
        self.index += 1
        if b'"role"' not in piece:
            now = time.perf_counter()
            stats = self.server.stats
            if self.previous is None:
                stats.ttft_sum_s += now - self.received
                stats.ttft_count += 1
            else:
                stats.itl_sum_s += now - self.previous
                stats.itl_count += 1
            self.previous = now
            self.text_index += 1
        if self.index < len(self.chunks):
            self._schedule()
            return
        transport.write(self.tail)
        self.protocol.busy = False
        self.protocol._finished()
        self.protocol._parse()


class _Protocol(asyncio.Protocol):
    def __init__(self, server: StreamingServer) -> None:
        self.server = server
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.served = 0
        self.busy = False
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing asyncio.Transport.
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(transport)  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.server.connections.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        if self.closing:  # cpp-httplib reads and drops it: the request is never handled
            self.server.stats.discarded_bytes += len(data)
            return
        self.buffer += data
        self._parse()

    def _parse(self) -> None:
        while not self.busy and not self.closing:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self.buffer) < head_end + 4 + length:
                return
            body = self.buffer[head_end + 4 : head_end + 4 + length]
            self.buffer = self.buffer[head_end + 4 + length :]
            method, path = head.split(" ", 2)[:2]
            self._handle(method, path, body, time.perf_counter())

    def _handle(self, method: str, path: str, body: bytes, received: float) -> None:
        server = self.server
        assert self.transport is not None
        if path.startswith("/stats"):
            if method == "POST":
                server.stats = ServerStats(keep_bodies=server.stats.keep_bodies)
            self._respond_json(200, server.stats.as_dict())
            return
        api = "chat" if path.startswith("/v1/chat/completions") else "completions"
        if not path.startswith(("/v1/completions", "/v1/chat/completions")):
            self._respond_json(404, {"error": {"message": f"no route {path}"}})
            return
        if server.dropped_so_far < server.behaviour.close_before_response:
            server.dropped_so_far += 1
            server.stats.dropped += 1
            self.transport.close()
            return
        server.stats.requests += 1
        behaviour = server.behaviour
        if server.stats.keep_bodies or behaviour.reject_fields:
            request = json.loads(body or b"{}")
            if server.stats.keep_bodies:
                server.stats.bodies.append(request)
            for name in behaviour.reject_fields:
                if name in request:
                    server.stats.rejected += 1
                    detail = [{"loc": ["body", name], "msg": "Extra inputs are not permitted"}]
                    self._respond_json(422, {"detail": detail})
                    return
        if behaviour.status != 200:
            self._respond_json(behaviour.status, {"error": {"message": "injected"}})
            return
        # A substring test, not a JSON parse: under a burst of 64 requests the server's
        # own per-request work would delay the ones behind it and blur the truth.
        usage = behaviour.send_usage and (
            b'"include_usage":true' in body or b'"include_usage": true' in body
        )
        responses = server.responses
        b = server.behaviour
        if b.ttft_s <= 0 and b.itl_s <= 0:
            self.transport.write(
                responses.head + b"".join(responses.chunks[api]) + responses.tails[(api, usage)]
            )
            self._finished()
            return
        self.busy = True
        _DelayedStream(self, api, usage, received).start()

    def _finished(self) -> None:
        self.served += 1
        behaviour = self.server.behaviour
        limit = behaviour.close_after_requests
        if not limit or self.served < limit or self.transport is None:
            return
        if behaviour.close_delay_s <= 0:
            self.transport.close()
            return
        self.closing = True
        if self.buffer:  # pipelined bytes the server will never answer
            self.server.stats.discarded_bytes += len(self.buffer)
            self.buffer = b""
        loop = asyncio.get_running_loop()
        loop.call_later(behaviour.close_delay_s, self._shut_down_writing)

    def _shut_down_writing(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write_eof()  # shutdown(SHUT_WR): the client sees EOF, may still send
        asyncio.get_running_loop().call_later(self.server.behaviour.drain_s, transport.close)

    def _respond_json(self, status: int, payload: dict[str, object]) -> None:
        assert self.transport is not None
        body = json.dumps(payload).encode()
        reason = _REASONS.get(status, "Error")
        head = (
            f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self._finished()


class StreamingServer:
    """An in-process server; use ``async with StreamingServer(...) as server``."""

    def __init__(
        self,
        behaviour: ServerBehaviour | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        keep_bodies: bool = False,
    ) -> None:
        self.behaviour = behaviour or ServerBehaviour()
        self.responses = _Responses(self.behaviour)
        self.stats = ServerStats(keep_bodies=keep_bodies)
        self.host = host
        self.port = port
        self.dropped_so_far = 0
        self.connections: set[asyncio.Transport] = set()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Protocol(self), self.host, self.port, backlog=1024
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for transport in list(self.connections):
                transport.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> StreamingServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server_process(*args: str, uvloop: bool = True) -> Iterator[str]:
    """Run the server in a child process with CLI ``args``; yield its base URL.

    uvloop serves zero-latency streams fastest, but its timers have millisecond
    granularity; the default loop keeps injected delays closer to nominal."""
    port = free_port()
    command = [sys.executable, "-m", "budcluster.bench.testing_server", "--port", str(port)]
    if uvloop:
        command.append("--uvloop")
    process = subprocess.Popen([*command, *args], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # "listening on ..." once the socket is bound
        if "listening" not in line:
            raise RuntimeError(f"the testing server did not start: {line!r}")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--chunks", type=int, default=16)
    parser.add_argument("--tokens-per-chunk", type=int, default=1)
    parser.add_argument("--ttft-ms", type=float, default=0.0)
    parser.add_argument("--itl-ms", type=float, default=0.0)
    parser.add_argument("--uvloop", action="store_true", help="Serve on uvloop if installed.")
    parser.add_argument(
        "--close-after-requests",
        type=int,
        default=0,
        help="Close each connection after this many responses (llama-server: 1).",
    )
    parser.add_argument(
        "--close-delay-ms",
        type=float,
        default=0.0,
        help="Shut the connection this long after the last response byte (cpp-httplib).",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    behaviour = ServerBehaviour(
        chunks=args.chunks,
        tokens_per_chunk=args.tokens_per_chunk,
        ttft_s=args.ttft_ms / 1000,
        itl_s=args.itl_ms / 1000,
        close_after_requests=args.close_after_requests,
        close_delay_s=args.close_delay_ms / 1000,
    )

    async def serve() -> None:
        server = StreamingServer(behaviour, args.host, args.port)
        await server.start()
        print(f"listening on {server.url}", flush=True)
        await asyncio.Event().wait()

    if args.uvloop:
        try:
            import uvloop

            uvloop.run(serve())
            return
        except ImportError:
            pass
    asyncio.run(serve())


if __name__ == "__main__":
    main()
