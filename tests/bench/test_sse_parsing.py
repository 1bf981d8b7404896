"""SSE stream parsing: the fast path and the line-by-line path must agree on every shape."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from budcluster.bench.client import ClientConfig, StreamingClient
from budcluster.bench.datasets import Prompt
from budcluster.bench.records import RequestRecord
from budcluster.bench.sse import only_data_events as _only_data_events


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


def compact_event(text: str | None, usage: dict[str, int] | None = None) -> bytes:
    """An event as vLLM writes it: no spaces in the JSON."""
    return event(text, usage).replace(b": ", b":").replace(b", ", b",")


def test_exact_framing_recognises_only_whole_data_events() -> None:
    assert _only_data_events(event("a") + event("b"))
    assert _only_data_events(event("a") + b"data: [DONE]\n\n")
    assert not _only_data_events(event("a")[:-1])  # partial
    assert not _only_data_events(b": keep-alive\n\n" + event("a"))  # comment
    assert not _only_data_events(event("a") + b": keep-alive\n\n" + event("b"))
    assert not _only_data_events(b"event: x\n" + event("a"))  # other field
    assert not _only_data_events(event("a")[:-1] + b"id: 7\n\n")  # field in the event
    assert not _only_data_events(event("a").replace(b"\n", b"\r\n"))  # CRLF


COMPACT_STREAM = (
    compact_event("a")
    + compact_event("")
    + compact_event(" b c")
    + compact_event(None, {"completion_tokens": 3})
    + b"data: [DONE]\n\n"
)


@pytest.mark.parametrize(
    "read",
    [
        COMPACT_STREAM,
        STREAM,  # spaces: not the learned compact form
        compact_event("a") + b": ping\n\n" + COMPACT_STREAM,  # comment between events
        compact_event("a")[:-1] + b"id: 7\n\n" + COMPACT_STREAM,  # field in an event
        b"data: {}\n\n" + compact_event("x") + b"event: done\ndata: [DONE]\n\n",
        compact_event("a") + b"data: [DONE]\n\n" + compact_event("late"),
        compact_event("a") + compact_event(None, {"completion_tokens": 7})[:-1]
        + b": usage above\n\n",
        compact_event("a") + b'data: {"error": {"message": "overloaded"}}\n\n',
        compact_event("a") + compact_event(" b", {"completion_tokens": 2})
        + b"data: [DONE]\n\n",  # usage on the last text event (llama.cpp)
        compact_event("a", {"completion_tokens": 1}) + compact_event("b", {"completion_tokens": 2})
        + compact_event(None, {"completion_tokens": 2}),  # usage on every event (vLLM option)
        compact_event("a") + b'data: {"error": {"message": "overloaded"}}\n\n'
        + compact_event("b"),  # an error between text events
        compact_event("a") + b"data: [DONE]\n\n" + compact_event("b"),  # [DONE] inside
        compact_event("a") + event("b") + compact_event("c"),  # one event written spaced
        compact_event(None, {"completion_tokens": 3}) + b"data: [DONE]\n\n",  # no text
        compact_event("a") + b'data: {"choices":[{"index":0,"text":null}]}\n\n',
        compact_event("a") + b'data: {"choices":[{"index":0,"text": "late"}]}\n\n',
    ],
    ids=["compact", "spaced", "comment", "id-field", "event-field", "after-done",
         "usage-then-comment", "error", "usage-on-last-text", "usage-on-every-event",
         "error-between-texts", "done-inside", "one-spaced", "usage-only", "null-text",
         "spaced-text-in-tail"],
)  # fmt: skip
async def test_unverified_fast_path_agrees_with_the_line_path(read: bytes) -> None:
    """An unverified read through the fast path must give what parsing every line
    gives, whatever sits between the events."""
    config = ClientConfig("http://x", "m", sse_verify_every=1000)
    client = StreamingClient(config, time.perf_counter())
    try:
        first = RequestRecord(0, 0, 0.0, sent_s=0.0)
        await client._read_stream(FakeResponse([COMPACT_STREAM]), first, Prompt("p", 1, 4))  # type: ignore[arg-type]
        fast = RequestRecord(1, 0, 0.0, sent_s=0.0)
        await client._read_stream(FakeResponse([read]), fast, Prompt("p", 1, 4))  # type: ignore[arg-type]
    finally:
        await client.close()
    lines = await parse([read[:1], read[1:]])  # split reads: the line path throughout
    assert len(fast.chunk_times_s) == len(lines.chunk_times_s)
    assert (fast.output_tokens, fast.output_tokens_source) == (
        lines.output_tokens,
        lines.output_tokens_source,
    )
    assert (fast.error_kind, fast.error) == (lines.error_kind, lines.error)
    assert client.fast_path_disabled is None


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


async def test_what_counting_cannot_see_is_caught_by_a_verified_read() -> None:
    # Two text keys in one event (n=2 choices) next to an error event with none: the
    # newlines still match the keys. A full parse sees the error, disagrees, and every
    # later read is parsed in full.
    two_choices = b'data: {"choices":[{"index":0,"text":"a"},{"index":1,"text":"b"}]}\n\n'
    read = two_choices + b'data: {"error":{"message":"overloaded"}}\n\n' + compact_event("c")
    record = await parse([read], verify_every=1)
    assert record.error_kind == "stream_error"
    config = ClientConfig("http://x", "m", sse_verify_every=1)
    client = StreamingClient(config, time.perf_counter())
    try:
        record = RequestRecord(0, 0, 0.0, sent_s=0.0)
        await client._read_stream(FakeResponse([read]), record, Prompt("p", 1, 4))  # type: ignore[arg-type]
    finally:
        await client.close()
    assert client.fast_path_disabled == "the fast path disagreed with full parsing"


@pytest.mark.parametrize(
    ("read", "expected"),
    [
        (COMPACT_STREAM, 2),
        (compact_event("a") + compact_event(" b", {"completion_tokens": 2}), 2),
        (compact_event("a", {"completion_tokens": 1}) + compact_event(None, {"x": 1}), 1),
        (compact_event(None, {"completion_tokens": 3}) + b"data: [DONE]\n\n", 0),
        (STREAM, -1),  # spaced keys
        (compact_event("a") + b": ping\n\n" + compact_event("b"), -1),
        (compact_event("a") + b'data: {"error": {"message": "x"}}\n\n' + compact_event("b"), -1),
        (compact_event("a") + b"data: [DONE]\n\n" + compact_event("b"), -1),
        (compact_event("a") + b"data: {not json\n\n", -1),
    ],
    ids=["vllm", "usage-on-last", "usage-on-every", "usage-only", "spaced", "comment",
         "error-between", "done-inside", "bad-json-in-tail"],
)  # fmt: skip
async def test_the_fast_path_takes_the_common_shapes_and_refuses_the_rest(
    read: bytes, expected: int
) -> None:
    from budcluster.bench.sse import StreamState as _StreamState

    client = StreamingClient(ClientConfig("http://x", "m"), time.perf_counter())
    try:
        state = _StreamState()
        assert client._count_read(read, state) == expected
    finally:
        await client.close()
    if expected >= 0 and b"completion_tokens" in read:
        assert state.usage is not None
