"""SSE stream parsing: the fast path and the line-by-line path must agree on every shape."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from budcluster.bench.client import ClientConfig, StreamingClient, _StreamState
from budcluster.bench.datasets import Prompt
from budcluster.bench.records import RequestRecord


def event(text: str | None, usage: dict[str, int] | None = None) -> bytes:
    body: dict[str, Any] = {"choices": [{"index": 0, "text": text}] if text is not None else []}
    if usage:
        body["usage"] = usage
    return b"data: " + json.dumps(body).encode() + b"\n\n"


class FakeContent:
    def __init__(self, reads: list[bytes]) -> None:
        self.reads = reads

    async def iter_any(self) -> AsyncIterator[bytes]:
        for read in self.reads:
            yield read


class FakeResponse:
    connection = None

    def __init__(self, reads: list[bytes]) -> None:
        self.content = FakeContent(reads)


async def parse(reads: list[bytes], verify_every: int = 16) -> RequestRecord:
    config = ClientConfig("http://x", "m", sse_verify_every=verify_every)
    client = StreamingClient(config, time.perf_counter())
    record = RequestRecord(0, 0, 0.0, sent_s=0.0)
    try:
        await client._read_stream(FakeResponse(reads), record, Prompt("p", 1, 4))  # type: ignore[arg-type]
    finally:
        await client.close()
    return record


STREAM = (
    event("a")
    + event("")
    + event(" b c")
    + event(None, {"completion_tokens": 3})
    + b"data: [DONE]\n\n"
)


async def test_fast_path_recognises_only_whole_data_events() -> None:
    client = StreamingClient(ClientConfig("http://x", "m"), time.perf_counter())
    try:

        def fast(data: bytes) -> bool:
            return client._scan_read(data, _StreamState()) >= 0

        assert fast(event("a") + event("b"))
        assert fast(event("a") + b"data: [DONE]\n\n")
        assert not fast(event("a")[:-1])  # partial
        assert not fast(b": keep-alive\n\n" + event("a"))  # comment
        assert not fast(event("a") + b": keep-alive\n\n" + event("b"))  # comment between
        assert not fast(b"event: x\n" + event("a"))  # other field
        assert not fast(event("a")[:-1] + b"id: 7\n\n")  # other field in the event
        assert not fast(event("a").replace(b"\n", b"\r\n"))  # CRLF
        assert not fast(b"data: [DONE]\n\n" + event("a"))  # [DONE] before the end
    finally:
        await client.close()


@pytest.mark.parametrize(
    "reads",
    [
        [STREAM],  # one read: fast path
        [STREAM[:17], STREAM[17:60], STREAM[60:]],  # split mid-event: line path
        [STREAM.replace(b"\n", b"\r\n")],  # CRLF line endings
        [b": ping\n\n" + STREAM],  # comment line
        [STREAM.replace(b"data: [DONE]\n\n", b"")],  # no [DONE]
    ],
    ids=["one-read", "split", "crlf", "comment", "no-done"],
)
async def test_every_shape_gives_the_same_record(reads: list[bytes]) -> None:
    record = await parse(reads)
    assert record.error_kind is None
    assert len(record.chunk_times_s) == 2  # the empty-text and usage-only events carry no text
    assert (record.output_tokens, record.output_tokens_source) == (3, "usage")


async def test_events_after_done_are_ignored() -> None:
    record = await parse([event("a") + b"data: [DONE]\n\n" + event("late")])
    assert len(record.chunk_times_s) == 1


@pytest.mark.parametrize("verify_every", [1, 2, 16])
async def test_every_shape_matches_full_parsing(verify_every: int) -> None:
    # The same streams through the fast path with and without full verification.
    for reads in ([STREAM], [event("x") * 5 + b"data: [DONE]\n\n"], [event(" ") + event("")]):
        record = await parse(reads, verify_every)
        assert len(record.chunk_times_s) == sum(
            r.count(b'"text": "') - r.count(b'"text": ""') for r in reads
        )


async def test_bad_json_is_a_protocol_error_when_verified() -> None:
    record = await parse([event("a") + b"data: {not json\n\n"], verify_every=1)
    assert record.error_kind == "protocol"
    assert "not json" in (record.error or "")


async def test_bad_json_turns_the_fast_path_off_for_the_run() -> None:
    config = ClientConfig("http://x", "m", sse_verify_every=2)
    client = StreamingClient(config, time.perf_counter())
    bad = event("a") + b'data: {"choices":[{"text":"b"}]\n\n'  # missing brace
    try:
        for i in range(2):
            record = RequestRecord(i, 0, 0.0, sent_s=0.0)
            await client._read_stream(FakeResponse([bad]), record, Prompt("p", 1, 4))  # type: ignore[arg-type]
        assert record.error_kind == "protocol"  # the second read is verified and caught
        assert client.fast_path_disabled == "an event was not valid JSON"
        record = RequestRecord(2, 0, 0.0, sent_s=0.0)
        await client._read_stream(FakeResponse([bad]), record, Prompt("p", 1, 4))  # type: ignore[arg-type]
        assert record.error_kind == "protocol"  # every later read is parsed in full
    finally:
        await client.close()


async def test_error_event_is_a_stream_error() -> None:
    record = await parse([event("a") + b'data: {"error": {"message": "overloaded"}}\n\n'])
    assert record.error_kind == "stream_error"
    assert "overloaded" in (record.error or "")


async def test_stream_without_text_is_an_error() -> None:
    record = await parse([event("") + b"data: [DONE]\n\n"])
    assert record.error_kind == "empty_stream"
