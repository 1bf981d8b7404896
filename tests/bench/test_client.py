"""The streaming client against servers that misbehave the way real ones do."""

from __future__ import annotations

import asyncio
import time

import pytest

from budcluster.bench.client import ClientConfig, StreamingClient
from budcluster.bench.datasets import Prompt, WordTokenizer
from budcluster.bench.records import RequestRecord
from budcluster.bench.sse import SSEDecoder
from budcluster.bench.testing_server import (
    ServerBehaviour,
    StreamingServer,
    free_port,
    server_process,
)

PROMPT = Prompt("hello there", prompt_tokens=2, max_tokens=16)


async def send_many(
    url: str,
    n: int = 1,
    api: str = "completions",
    tokenizer: WordTokenizer | None = None,
    **kw: object,
) -> tuple[list[RequestRecord], StreamingClient]:
    client = StreamingClient(ClientConfig(url, "m", api=api, **kw), time.perf_counter(), tokenizer)  # type: ignore[arg-type]
    records = []
    try:
        for i in range(n):
            record = RequestRecord(i, 0, scheduled_s=0.0)
            await client.send(PROMPT, record)
            records.append(record)
    finally:
        await client.close()
    return records, client


@pytest.mark.parametrize("api", ["completions", "chat"])
async def test_well_behaved_stream(api: str) -> None:
    async with StreamingServer(ServerBehaviour(chunks=5)) as server:
        (record,), _ = await send_many(server.url, api=api)
    assert record.error_kind is None
    assert len(record.chunk_times_s) == 5  # chat's role-only first delta is not text
    assert (record.output_tokens, record.output_tokens_source) == (5, "usage")
    assert record.prompt_tokens == 8  # from the server's usage block
    assert record.sent_s is not None and record.first_token_s is not None
    assert record.sent_s <= record.first_token_s <= record.end_s  # type: ignore[operator]


async def test_no_done_marker_ends_at_eof() -> None:
    async with StreamingServer(ServerBehaviour(chunks=4, send_done=False)) as server:
        (record,), _ = await send_many(server.url)
    assert record.error_kind is None
    assert record.output_tokens == 4


async def test_no_usage_falls_back_to_tokenizer_then_chunks() -> None:
    # Two tokens per chunk: a chunk count would say 3, the tokenizer says 6.
    behaviour = ServerBehaviour(chunks=3, tokens_per_chunk=2, send_usage=False)
    async with StreamingServer(behaviour) as server:
        (with_tokenizer,), _ = await send_many(server.url, tokenizer=WordTokenizer())
        (without,), _ = await send_many(server.url)
    assert (with_tokenizer.output_tokens, with_tokenizer.output_tokens_source) == (6, "tokenizer")
    assert (without.output_tokens, without.output_tokens_source) == (3, "chunks")
    assert with_tokenizer.prompt_tokens == PROMPT.prompt_tokens  # no usage: our own count


async def test_multi_token_chunks_tpot_uses_tokens_itl_uses_chunks() -> None:
    behaviour = ServerBehaviour(chunks=4, tokens_per_chunk=3, ttft_s=0.02, itl_s=0.01)
    async with StreamingServer(behaviour) as server:
        (record,), _ = await send_many(server.url)
    assert record.output_tokens == 12
    assert len(record.chunk_times_s) == 4  # 3 ITL gaps of ~10 ms
    from budcluster.bench import metrics

    # Bounds that hold on a loaded machine too, where gaps mostly grow: the server waits
    # 10 ms between chunks, so ITL (one per chunk) averages about that, not the ~3.3 ms a
    # per-token figure would give (one gap may shrink when the chunk before it came late).
    # TPOT shares the span (E2E - TTFT, at least the 3 gaps) among 11 tokens.
    itls = metrics.itls_ms(record)
    mean_itl = sum(itls) / len(itls)
    assert len(itls) == 3 and mean_itl >= 8
    tpot = metrics.tpot_ms(record)
    assert sum(itls) / 11 - 0.5 <= tpot < mean_itl / 2


async def test_unknown_field_422_drops_it_for_the_run_and_counts_the_retry() -> None:
    behaviour = ServerBehaviour(chunks=2, reject_fields=("ignore_eos",))
    async with StreamingServer(behaviour, keep_bodies=True) as server:
        records, client = await send_many(server.url, n=3, ignore_eos=True)
        bodies = server.stats.bodies
    assert [r.error_kind for r in records] == [None, None, None]
    assert [r.retries for r in records] == [1, 0, 0]
    assert client.dropped_fields == ["ignore_eos"]
    assert "stream_options" in client.optional  # only the named field was dropped
    assert ["ignore_eos" in b for b in bodies] == [True, False, False, False]


async def send_concurrently(
    url: str, n: int, concurrency: int, **kw: object
) -> list[RequestRecord]:
    """A closed loop of ``concurrency`` workers on one client, as the runner drives it."""
    client = StreamingClient(
        ClientConfig(url, "m", **kw),  # type: ignore[arg-type]
        time.perf_counter(),
        connections=concurrency,
    )
    ids = iter(range(n))
    records: list[RequestRecord] = []

    async def worker() -> None:
        for i in ids:
            record = RequestRecord(i, 0, scheduled_s=0.0)
            records.append(await client.send(PROMPT, record))

    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        await client.close()
    return records


async def test_connection_the_server_closed_after_its_response_is_not_reused() -> None:
    # llama-server closes after every streamed response without "Connection: close".
    # The FIN is in the socket before the client reuses the connection, so a client that
    # looks at the socket never writes into it: no resend, no request lost on the way.
    behaviour = ServerBehaviour(chunks=2, close_after_requests=1)
    async with StreamingServer(behaviour) as server:
        records, _ = await send_many(server.url, n=5)
        assert server.stats.requests == 5
    assert [r.error_kind for r in records] == [None] * 5
    assert [r.retries for r in records] == [0] * 5


async def test_closed_connections_are_not_reused_under_concurrency() -> None:
    # Four streams finishing together leave up to four closed connections in the pool;
    # with no resends allowed, any reuse of one would be a failed request.
    behaviour = ServerBehaviour(chunks=4, close_after_requests=1)
    async with StreamingServer(behaviour) as server:
        records = await send_concurrently(server.url, 64, 4, max_retries=0)
        assert server.stats.discarded_bytes == 0
    assert [r.error for r in records if r.error] == []


async def test_keepalive_closed_after_reuse_is_resent_on_a_fresh_connection() -> None:
    # cpp-httplib shuts the socket a moment after the response and drops what arrived
    # meanwhile. The client has already reused the connection: its request is lost with
    # no byte of answer, and must be resent once, on a new connection, and counted.
    behaviour = ServerBehaviour(chunks=2, close_after_requests=1, close_delay_s=0.05)
    async with StreamingServer(behaviour) as server:
        records, _ = await send_many(server.url, n=4)
        assert server.stats.discarded_bytes > 0
        assert server.stats.requests == 4
    assert [r.error_kind for r in records] == [None] * 4
    # The resend's connection closes after it, so the next request opens a new one.
    assert [r.retries for r in records] == [0, 1, 0, 1]


async def test_stale_connections_under_concurrency_cost_at_most_one_resend() -> None:
    # Four streams at a time, every connection shut by the server shortly after its
    # response: each lost request needs one resend, never a second.
    behaviour = ServerBehaviour(chunks=4, close_after_requests=1, close_delay_s=0.02)
    async with StreamingServer(behaviour) as server:
        records = await send_concurrently(server.url, 40, 4, max_retries=1)
    assert [r.error for r in records if r.error] == []
    assert sum(r.retries for r in records) > 0  # the race really happened


async def test_fresh_connection_closed_without_answer_is_reported_not_resent() -> None:
    # A new connection that took the whole request and closed is a server failure:
    # the request may have been processed, so resending it would be a guess.
    behaviour = ServerBehaviour(chunks=2, close_before_response=1)
    async with StreamingServer(behaviour) as server:
        (record,), _ = await send_many(server.url)
        assert server.stats.dropped == 1
    assert record.error_kind == "disconnected"
    assert record.retries == 0
    assert record.end_s is not None


def test_resend_rule() -> None:
    from budcluster.bench.transport import ArrivalStampingHandler as _ArrivalStampingHandler
    from budcluster.bench.transport import resendable as _resendable

    def connection(answered: bool, requests: int, written: bool) -> _ArrivalStampingHandler:
        protocol = _ArrivalStampingHandler.__new__(_ArrivalStampingHandler)
        protocol.first_unread_s = 1.0 if answered else None
        protocol.requests_started, protocol.request_written = requests, written
        return protocol

    assert _resendable(None)  # never connected: nothing left the client
    assert _resendable(connection(False, 1, written=False))  # the body never left
    assert _resendable(connection(False, 2, written=True))  # stale keep-alive connection
    assert not _resendable(connection(False, 1, written=True))  # a server failure
    assert not _resendable(connection(True, 2, written=False))
    assert not _resendable(connection(True, 2, written=True))


async def test_retries_are_bounded() -> None:
    # Nothing is ever sent to a closed port, so each try may be repeated: up to the cap.
    (record,), _ = await send_many(f"http://127.0.0.1:{free_port()}")
    assert record.error_kind == "connection"
    assert record.retries == 2
    assert record.end_s is not None


async def test_http_errors_are_classified_not_dropped() -> None:
    async with StreamingServer(ServerBehaviour(status=500)) as server:
        (record,), _ = await send_many(server.url)
    assert record.error_kind == "http_5xx"
    assert "HTTP 500" in (record.error or "")


async def test_connection_refused_is_classified() -> None:
    (record,), _ = await send_many(f"http://127.0.0.1:{free_port()}")
    assert record.error_kind == "connection"


async def test_timeout_is_classified() -> None:
    async with StreamingServer(ServerBehaviour(chunks=2, ttft_s=2.0)) as server:
        (record,), _ = await send_many(server.url, request_timeout_s=0.2)
    assert record.error_kind == "timeout"


def test_endpoint_accepts_base_url_with_or_without_v1() -> None:
    assert ClientConfig("http://h:8000/v1/", "m").endpoint == "http://h:8000/v1/completions"
    assert (
        ClientConfig("http://h:8000", "m", api="chat").endpoint
        == "http://h:8000/v1/chat/completions"
    )


def test_on_uvloop_socket_reads_are_stamped_and_resume_calls_skip_the_stamp(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # uvloop keeps the data_received it found when it made the transport (the stamping
    # one); aiohttp's own data_received(b"") calls, one per HTTP chunk it resumes
    # parsing, must go straight to aiohttp. If uvloop stopped keeping it, no read would
    # be stamped and this fails.
    pytest.importorskip("uvloop")
    from budcluster.bench.runner import run_on_fast_loop
    from budcluster.bench.transport import ArrivalStampingHandler as _ArrivalStampingHandler

    reads: list[int] = []
    stamping = _ArrivalStampingHandler.data_received

    def counting(self: _ArrivalStampingHandler, data: bytes) -> None:
        reads.append(len(data))
        stamping(self, data)

    monkeypatch.setattr(_ArrivalStampingHandler, "data_received", counting)

    async def run() -> list[RequestRecord]:
        async with StreamingServer(ServerBehaviour(chunks=16)) as server:
            records, _ = await send_many(server.url, n=3)
        return records

    records = run_on_fast_loop(run())
    assert [(r.error_kind, len(r.chunk_times_s)) for r in records] == [(None, 16)] * 3
    assert len(reads) >= 3  # at least one socket read per response
    assert 0 not in reads  # no resume call went through the stamping method


def test_a_response_bigger_than_the_read_buffer_pauses_resumes_and_arrives_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The client skips aiohttp's resume calls when nothing is paused; when aiohttp did
    # pause (its buffer or chunk count over the high-water mark), the resume must still
    # go through, or the response would stall until the request timeout.
    # On uvloop (what bench run uses) a socket read can exceed aiohttp's high-water
    # mark (twice read_bufsize); asyncio's reads stop at 256 KiB, below it.
    pytest.importorskip("uvloop")
    from budcluster.bench.runner import run_on_fast_loop
    from budcluster.bench.transport import ArrivalStampingHandler as _ArrivalStampingHandler

    pauses: list[int] = []
    pause = _ArrivalStampingHandler.pause_reading

    def counting(self: _ArrivalStampingHandler) -> None:
        pauses.append(1)
        pause(self)

    monkeypatch.setattr(_ArrivalStampingHandler, "pause_reading", counting)
    scan = SSEDecoder.feed

    def slow_scan(self: SSEDecoder, data: bytes, state: object) -> int:
        time.sleep(0.002)  # a slow reader: the socket fills aiohttp's buffer meanwhile
        return scan(self, data, state)  # type: ignore[arg-type]

    monkeypatch.setattr(SSEDecoder, "feed", slow_scan)
    chunks = 4_000  # x 100 tokens: ~1.5 MB, many times aiohttp's 128 KiB high-water mark

    async def run(url: str) -> list[RequestRecord]:
        records, _ = await send_many(url, n=2, request_timeout_s=10.0)
        return records

    # The server runs in its own process, so it keeps writing while the reader sleeps.
    with server_process("--chunks", str(chunks), "--tokens-per-chunk", "100") as url:
        records = run_on_fast_loop(run(url))
    assert [(r.error_kind, len(r.chunk_times_s)) for r in records] == [(None, chunks)] * 2
    assert pauses, "the response never filled aiohttp's buffer: the test proves nothing"


async def test_a_server_that_compresses_what_the_client_accepts_sends_it_plain() -> None:
    # aiohttp's web server compresses a response with enable_compression() when the
    # request accepts gzip, as compressing proxies do. The client reads the stream
    # undecoded, so it must ask for identity or every read would be gzip bytes.
    from aiohttp import web

    seen: list[str] = []

    async def completions(request: web.Request) -> web.StreamResponse:
        seen.append(request.headers.get("Accept-Encoding", ""))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        response.enable_compression()
        await response.prepare(request)
        for word in ("a", "b", "c"):
            await response.write(b'data: {"choices":[{"index":0,"text":"%s"}]}\n\n' % word.encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/completions", completions)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        records, _ = await send_many(f"http://127.0.0.1:{port}", n=2)
    finally:
        await runner.cleanup()
    assert [(r.error_kind, len(r.chunk_times_s)) for r in records] == [(None, 3)] * 2
    assert seen == ["identity", "identity"]
