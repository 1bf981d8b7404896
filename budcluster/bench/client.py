"""The streaming client: one OpenAI-compatible request in, one :class:`RequestRecord` out.

Hot-path choices, all to keep the client from being the bottleneck:

* aiohttp with pre-serialised bodies; the body is built once per request.
* The stream is read with ``iter_any`` (one await per socket read, not per line) and split
  into SSE lines by hand. Every line in one read gets that read's timestamp, which is the
  best arrival time the client can know.
* JSON is parsed with orjson when installed.

Tolerance of real servers: a missing ``[DONE]`` (EOF ends the stream), a missing usage
block (output tokens then come from the tokenizer, else the chunk count), 400/422 on an
optional field (it is dropped for the rest of the run and the request resent), multi-token
chunks (TPOT uses the token count, ITL the chunk gaps), and keep-alive connections the
server has closed (see :meth:`_ArrivalStampingHandler.is_connected` and
:func:`_resendable`).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import select
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler

from budcluster.bench.datasets import Prompt, Tokenizer
from budcluster.bench.records import RequestRecord

try:
    import orjson

    _loads: Callable[[bytes], Any] = orjson.loads

    def _dumps(value: object) -> bytes:
        return orjson.dumps(value)

except ImportError:  # pragma: no cover - orjson comes with prefect
    _loads = json.loads

    def _dumps(value: object) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()


OPTIONAL_FIELDS = ("ignore_eos", "stream_options")
_BODY_CACHE_SIZE = 4096
"""Runs cycle through at most 1000 prompts; more distinct ones just rebuild bodies."""
_RETRYABLE = (
    aiohttp.ServerDisconnectedError,
    aiohttp.ClientOSError,
    aiohttp.ClientConnectionResetError,
)


# The connection the current try went out on, in a one-slot list made per try; aiohttp
# writes the request from a task of its own (Python < 3.12), which starts with a copy of
# this context and so fills the same list.
_TRY_CONNECTION: contextvars.ContextVar[list[_ArrivalStampingHandler | None] | None] = (
    contextvars.ContextVar("budcluster_bench_try_connection", default=None)
)


def _resendable(protocol: _ArrivalStampingHandler | None) -> bool:
    """Whether a try that failed on ``protocol`` (None: it never got one) can be sent
    again without risk.

    Never once a response byte came back. Otherwise yes when the request never fully
    left (the server cannot act on a request whose body it has not got: what happens
    when the client writes into a connection the server has just shut), or when a pooled
    keep-alive connection was closed by the server with no answer: the stale-connection
    race every HTTP/1.1 client has, and a completion has no side effect to repeat. A
    fresh connection that took the whole request and closed without a byte is a server
    failure, not a stale connection: that is reported, not resent.
    """
    if protocol is None:
        return True
    if protocol.first_unread_s is not None:
        return False
    return not protocol.request_written or protocol.requests_started > 1


def _idle_socket_poller(transport: asyncio.BaseTransport) -> select.poll | None:
    """A poller for the transport's socket, to ask whether it has become readable.

    An idle keep-alive connection has nothing to read unless the server closed it (or
    broke the protocol). The event loop reads that EOF only on its next poll, often after
    the pool has handed the connection out again; a zero-timeout poll sees it at once.
    ``poll``, not ``select``: descriptors above 1023 are common at high concurrency.
    """
    sock = transport.get_extra_info("socket")
    if sock is None:
        return None
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return poller


class _ArrivalStampingHandler(ResponseHandler):
    """aiohttp's protocol, noting when the socket delivered the first unread bytes.

    A coroutine resumes only after every coroutine woken before it has run, so under a
    burst (64 streams answering in the same millisecond) a timestamp taken in the reading
    coroutine lags the arrival by the others' processing time. ``data_received`` runs as
    the event loop reads the socket, so its timestamp does not.
    """

    first_unread_s: float | None = None
    request_sent_s: float | None = None
    """When the current request's bytes were handed to the socket (see _StampingRequest)."""
    requests_started: int = 0
    """Requests written on this connection: more than one means a reused keep-alive."""
    request_written: bool = False
    """Every byte of the current request (head and body) was handed to the socket."""
    _poller: select.poll | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # Built once: looking the socket up costs microseconds per call on uvloop.
        self._poller = _idle_socket_poller(transport)
        if type(transport).__module__ == "uvloop.loop":
            # uvloop took this protocol's data_received (the stamping one below) when it
            # made the transport and calls that for every socket read. aiohttp calls
            # self.data_received(b"") once more for every HTTP chunk it resumes parsing
            # (~18 per streamed response), bytes that were stamped when they were read:
            # those calls go straight to aiohttp's method. asyncio's own transports look
            # the method up on every read, so there the class's stamping method stays.
            self.data_received = functools.partial(_BASE_DATA_RECEIVED, self)  # type: ignore[method-assign]

    # aiohttp's StreamReader calls resume_reading after every HTTP chunk it hands out,
    # paused or not (~18 times per 16-token response), and each call re-enters the
    # parser with b"" and the transport. When nothing was paused there is nothing to
    # resume: the parser only keeps unparsed bytes after pause_reading, which sets
    # _reading_paused, or a buffer pause (aiohttp >= 3.13), which sets _buffer_paused;
    # the other case, a paused decompressor, cannot happen with auto_decompress=False.
    # Skipping those calls saved ~13% of the client's instructions per request.
    if hasattr(ResponseHandler, "_buffer_paused"):

        def resume_reading(self, resume_parser: bool = True) -> None:
            if self._reading_paused or self._buffer_paused:
                _BASE_RESUME_READING(self, resume_parser)

    else:  # pragma: no cover - older aiohttp

        def resume_reading(self, resume_parser: bool = True) -> None:
            if self._reading_paused:
                _BASE_RESUME_READING(self, resume_parser)

    def is_connected(self) -> bool:
        # aiohttp asks this before handing a pooled connection out again (and when it
        # sweeps the pool), never while a response is being read. llama-server
        # (cpp-httplib) closes the connection right after every streamed response while
        # its headers promise keep-alive; without this check nearly every reuse wrote
        # into a closed socket and needed a resend. The descriptor is still this
        # connection's: the transport is open, so it has not been closed and reused.
        transport = self.transport  # ResponseHandler.is_connected, without the super() call
        if transport is None or transport.is_closing():
            return False
        poller = self._poller
        return poller is None or not poller.poll(0)

    def data_received(
        self,
        data: bytes,
        _clock: Callable[[], float] = time.perf_counter,
        _base: Callable[[ResponseHandler, bytes], None] = ResponseHandler.data_received,
    ) -> None:
        # Hot (see connection_made): bound defaults instead of globals and super(), and
        # only the first read after the reader took the stamp stamps again.
        if self.first_unread_s is None:
            self.first_unread_s = _clock()
        _base(self, data)


_BASE_DATA_RECEIVED = ResponseHandler.data_received
_BASE_RESUME_READING = ResponseHandler.resume_reading
_BASE_WRITE_BYTES = aiohttp.ClientRequest.write_bytes


class _StampingRequest(aiohttp.ClientRequest):
    """Notes when aiohttp actually writes the request.

    On Python < 3.12 aiohttp writes headers and body from a task scheduled after the
    ``post`` call, so under a burst the bytes leave a few milliseconds after the caller
    asked. TTFT counts from this write, as the definition requires.
    """

    async def write_bytes(self, writer: Any, conn: Any, *args: Any, **kwargs: Any) -> None:
        # Once per request: the base method by reference, not through super().
        protocol = conn.protocol
        if not isinstance(protocol, _ArrivalStampingHandler):
            await _BASE_WRITE_BYTES(self, writer, conn, *args, **kwargs)
            return
        protocol.request_sent_s = time.perf_counter()
        protocol.first_unread_s = None  # only bytes from here on answer this request
        protocol.requests_started += 1
        protocol.request_written = False
        slot = _TRY_CONNECTION.get()
        if slot is not None:
            slot[0] = protocol
        await _BASE_WRITE_BYTES(self, writer, conn, *args, **kwargs)
        # aiohttp reports a failed write on the protocol instead of raising it here.
        protocol.request_written = protocol.exception() is None


class _ArrivalStampingConnector(aiohttp.TCPConnector):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # aiohttp builds each connection's protocol with this factory (connector.py).
        self._factory = functools.partial(_ArrivalStampingHandler, loop=self._loop)  # type: ignore[assignment]


@dataclass(slots=True)
class ClientConfig:
    base_url: str
    model: str
    api: str = "completions"
    """"completions" (/v1/completions) or "chat" (/v1/chat/completions)."""
    ignore_eos: bool = False
    include_usage: bool = True
    request_timeout_s: float = 600.0
    connect_timeout_s: float = 10.0
    max_retries: int = 2
    api_key: str | None = None
    sse_verify_every: int = 16
    """Fully parse every N-th socket read to check the fast path (1: parse every read)."""

    @property
    def endpoint(self) -> str:
        path = "/v1/chat/completions" if self.api == "chat" else "/v1/completions"
        base = self.base_url.rstrip("/")
        base = base.removesuffix("/v1")
        return base + path


@dataclass(slots=True)
class _StreamState:
    text_parts: list[str] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    error: str | None = None
    done: bool = False


class StreamingClient:
    """Sends requests on one aiohttp session. Create inside a running event loop."""

    def __init__(
        self,
        config: ClientConfig,
        origin_s: float,
        tokenizer: Tokenizer | None = None,
        connections: int = 0,
    ) -> None:
        self.config = config
        self.origin_s = origin_s
        self.tokenizer = tokenizer
        self.optional: dict[str, object] = {}
        if config.ignore_eos:
            self.optional["ignore_eos"] = True
        if config.include_usage:
            self.optional["stream_options"] = {"include_usage": True}
        self.dropped_fields: list[str] = []
        self._bodies: dict[int, tuple[Prompt, bytes]] = {}
        """Request bodies by prompt: a run cycles through a fixed set of prompts."""
        self._url = config.endpoint
        self._chat = config.api == "chat"
        # Text-carrying events are counted by key on the fast path (see _count_read);
        # every sse_verify_every-th read is also fully parsed to check it.
        key = b'"content":' if self._chat else b'"text":'
        self._compact_key, self._compact_empty = key + b'"', key + b'""'
        self._reads = 0
        self.fast_path_disabled: str | None = None
        # The stream is read undecoded (auto_decompress=False), so ask for it that way:
        # aiohttp otherwise offers gzip, and a server or proxy that compresses event
        # streams would make every read unparseable.
        self._headers = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
        if config.api_key:
            self._headers["Authorization"] = f"Bearer {config.api_key}"
        timeout = aiohttp.ClientTimeout(
            total=config.request_timeout_s, sock_connect=config.connect_timeout_s
        )
        self._timeout = timeout
        self.session = self._new_session(limit=connections, force_close=False)
        self._fresh_session: aiohttp.ClientSession | None = None
        """For resends: a new connection each time, never one from the pool."""

    def _new_session(self, limit: int, force_close: bool) -> aiohttp.ClientSession:
        connector = _ArrivalStampingConnector(
            limit=limit, ttl_dns_cache=300, force_close=force_close
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            auto_decompress=False,
            request_class=_StampingRequest,
        )

    async def close(self) -> None:
        await self.session.close()
        if self._fresh_session is not None:
            await self._fresh_session.close()

    def _fresh(self) -> aiohttp.ClientSession:
        if self._fresh_session is None:
            self._fresh_session = self._new_session(limit=0, force_close=True)
        return self._fresh_session

    def _cache_body(self, prompt: Prompt) -> bytes:
        # Keyed by id() (hashing a Prompt runs Python code); the entry keeps the prompt
        # alive, so its id cannot be reused while cached.
        if len(self._bodies) >= _BODY_CACHE_SIZE:
            self._bodies.clear()
        body = self.body(prompt)
        self._bodies[id(prompt)] = (prompt, body)
        return body

    def body(self, prompt: Prompt) -> bytes:
        payload: dict[str, object] = {
            "model": self.config.model,
            "max_tokens": prompt.max_tokens,
            "stream": True,
        }
        if self._chat:
            payload["messages"] = [{"role": "user", "content": prompt.text}]
        else:
            payload["prompt"] = prompt.text
        payload.update(self.optional)
        return _dumps(payload)

    def _drop_rejected(self, error_text: str) -> bool:
        """Drop the optional fields a 400/422 names (all of them if it names none)."""
        if not self.optional:
            return False
        named = [name for name in self.optional if name in error_text]
        for name in named or list(self.optional):
            self.optional.pop(name, None)
            if name not in self.dropped_fields:
                self.dropped_fields.append(name)
        self._bodies.clear()  # they carry the dropped fields
        return True

    async def send(self, prompt: Prompt, record: RequestRecord) -> RequestRecord:
        """Send ``prompt`` and fill ``record``; never raises for a failed request."""
        origin = self.origin_s
        clock = time.perf_counter
        session = self.session
        try:
            while True:  # once per try
                cached = self._bodies.get(id(prompt))
                body = cached[1] if cached is not None and cached[0] is prompt else None
                if body is None:
                    body = self._cache_body(prompt)
                record.sent_s = clock() - origin
                received_any = False
                slot: list[_ArrivalStampingHandler | None] = [None]
                _TRY_CONNECTION.set(slot)
                try:
                    async with session.post(self._url, data=body, headers=self._headers) as resp:
                        received_any = True
                        connection = resp.connection
                        protocol = connection.protocol if connection is not None else None
                        if (
                            isinstance(protocol, _ArrivalStampingHandler)
                            and protocol.request_sent_s
                        ):
                            record.sent_s = protocol.request_sent_s - origin
                            protocol.request_sent_s = None
                        if resp.status == 200:
                            await self._read_stream(resp, record, prompt)
                            break
                        if await self._rejected_field(resp, record):
                            continue
                        break
                except _RETRYABLE:
                    if (
                        received_any
                        or record.retries >= self.config.max_retries
                        or not _resendable(slot[0])
                    ):
                        raise
                    record.retries += 1
                    # Other pooled connections may have been shut by the same server at
                    # the same moment; a new one cannot be stale.
                    session = self._fresh()
        except asyncio.CancelledError:
            record.error_kind, record.error = "cancelled", "the run ended before the response"
            raise
        except TimeoutError as exc:
            record.error_kind, record.error = "timeout", f"no complete response in time: {exc!r}"
        except aiohttp.ClientConnectorError as exc:
            record.error_kind, record.error = "connection", str(exc)
        except _RETRYABLE as exc:
            record.error_kind, record.error = "disconnected", repr(exc)
        except aiohttp.ClientPayloadError as exc:
            record.error_kind, record.error = "protocol", repr(exc)
        except aiohttp.ClientError as exc:
            record.error_kind, record.error = "client", repr(exc)
        if record.error_kind is not None and record.end_s is None:
            record.end_s = clock() - origin  # when the failure was seen
        return record

    async def _rejected_field(self, resp: aiohttp.ClientResponse, record: RequestRecord) -> bool:
        """Handle a non-200 answer: True when it rejected an optional field, which is then
        dropped and the request resent; otherwise the record gets the HTTP error."""
        text = (await resp.read()).decode("utf-8", "replace")
        if resp.status in (400, 422) and self._drop_rejected(text):
            record.retries += 1
            return True
        record.error_kind = f"http_{resp.status // 100}xx"
        record.error = f"HTTP {resp.status}: {text[:300]}"
        return False

    async def _read_stream(
        self, resp: aiohttp.ClientResponse, record: RequestRecord, prompt: Prompt
    ) -> None:
        origin = self.origin_s
        clock = time.perf_counter
        state = _StreamState()
        chunk_times = record.chunk_times_s
        pending = b""
        connection = resp.connection
        protocol = connection.protocol if connection is not None else None
        if isinstance(protocol, _ArrivalStampingHandler):
            # Bytes that came with the headers (read before this point) are not body
            # bytes' arrival; the clock below covers a body that came in the same packet.
            protocol.first_unread_s = None
        else:
            protocol = None
        scan_read = self._scan_read
        async for data in resp.content.iter_any():
            # Inline rather than a helper: this loop runs once per socket read.
            if protocol is not None and (arrived := protocol.first_unread_s) is not None:
                protocol.first_unread_s = None
            else:
                arrived = clock()
            now = arrived - origin
            if pending:
                data = pending + data
                pending = b""
            texts = scan_read(data, state) if not state.done else -1
            if texts < 0:
                lines = data.split(b"\n")
                pending = lines.pop()
                texts = self._handle_lines(lines, state)
            if texts:
                chunk_times += [now] * texts
            if state.done and record.end_s is None:
                record.end_s = now
        now = clock() - origin
        if pending and self._handle_lines([pending], state):
            chunk_times.append(now)
        if record.end_s is None:
            record.end_s = now  # no [DONE]: the end of the body ends the stream
        self._finish(record, state, prompt)

    def _scan_read(self, data: bytes, state: _StreamState) -> int:
        """Text-carrying events in a read of whole ``data:`` events; -1 for another shape
        (a partial event, a first line that is not data), which the line-by-line path
        handles. The first and every ``sse_verify_every``-th read are parsed in full and
        check the fast path (:meth:`_count_read`); on any disagreement or bad JSON the
        client parses every read for the rest of the run and the run records why."""
        if not data.startswith(b"data:") or not data.endswith(b"\n\n"):
            return -1
        reads = self._reads = self._reads + 1
        if (
            reads == 1
            or reads % self.config.sse_verify_every == 0
            or self.fast_path_disabled is not None
            or self.tokenizer is not None  # the text itself is needed to count tokens
        ):
            return self._parse_read(data, state)
        return self._count_read(data, state)

    def _count_read(self, data: bytes, state: _StreamState) -> int:
        """The fast path: -1 unless the read is text events, then a few others.

        Inside JSON every quote in a string is escaped, so ``"text":"`` can only be a
        ``text`` key written compactly (vLLM, llama.cpp, TGI and SGLang all write it so)
        with a string value, and ``"text":""`` one with an empty value. The events after
        the last such key (usage, a finish event, [DONE]) are few and parsed one by one.
        The events before it are counted, not parsed: a ``data:`` event is two newlines,
        so when the newlines there are exactly twice the keys, every one of those events
        is a text event. Anything else among them (an error event, a key written another
        way, a comment, another field, a [DONE] in the middle) breaks the equality and
        the line path reads the read exactly.

        Each count is one pass over the read in C, and those passes, not the Python
        around them, are the fast path's cost: three here (the newline count is the
        cheapest kind, a single byte). What counting cannot see is an event with two
        text keys (``n`` > 1 choices, never asked for) next to an event with none;
        verified reads catch that.
        """
        key = self._compact_key
        keys = data.count(key)
        tail_at = 0
        if keys:
            last_key = data.rfind(key)
            tail_at = data.find(b"\n\n", last_key) + 2
            if tail_at == 1 or data.count(b"\n", 0, tail_at) != 2 * keys:
                return -1
            # Usage rides on the last text event on some servers (llama.cpp) and on
            # every event with vLLM's continuous usage stats: the last one is the total.
            last_event = data.rfind(b"\n\ndata:", 0, last_key)
            last_event = 0 if last_event < 0 else last_event + 2
            if data.find(b'"usage"', last_event, tail_at) >= 0:
                try:
                    usage = _loads(data[last_event + 5 : tail_at - 2]).get("usage")
                except (ValueError, AttributeError):
                    return -1  # the line path names the bad event
                if usage:
                    state.usage = usage
        done = False
        if tail_at < len(data):
            tail = self._read_tail(data[tail_at:-2], state)
            if tail is None:
                return -1
            done = tail
        state.done = done
        return keys - data.count(self._compact_empty, 0, tail_at) if keys else 0

    def _read_tail(self, tail: bytes, state: _StreamState) -> bool | None:
        """Parse the events after the last text event; whether the last is [DONE].
        None for what the line path must decide: a comment or other field, an event
        after [DONE], bad JSON, or text written in a form the count did not see."""
        done = False
        for part in tail.split(b"\n\n"):
            if done or not part.startswith(b"data:"):
                return None
            payload = part[5:].strip()
            if payload == b"[DONE]":
                done = True
                continue
            try:
                event = _loads(payload)
            except ValueError:
                return None
            if type(event) is not dict:
                return None
            if (choices := event.get("choices")) and type(choice := choices[0]) is dict:
                if self._chat:
                    delta = choice.get("delta")
                    if type(delta) is dict and delta.get("content"):
                        return None
                elif choice.get("text"):
                    return None
            if usage := event.get("usage"):
                state.usage = usage
            if "error" in event:
                state.error = f"error event: {str(event['error'])[:300]}"
        return done

    def _parse_read(self, data: bytes, state: _StreamState) -> int:
        """Full parse of a read of whole ``data:`` events, checking the fast path."""
        parts = data[5:-2].split(b"\n\ndata:")
        done = parts[-1].strip() == b"[DONE]"
        if done:
            parts.pop()
        try:
            events = _loads(b"[" + b",".join(parts) + b"]") if parts else []
        except ValueError:
            # A line that is not data (a comment, another field) or a [DONE] before the
            # end lands inside a part and fails the parse too: that is a shape for the
            # line path, not bad JSON.
            if _only_data_events(data) and not any(p.strip() == b"[DONE]" for p in parts):
                self._disable_fast_path("an event was not valid JSON")
            return self._handle_lines(data.split(b"\n"), state)  # names the bad event
        usage_before, error_before = state.usage, state.error
        texts = self._scan_events(events, data, state)
        state.done = done
        if self.fast_path_disabled is None:
            counted = _StreamState()
            fast = self._count_read(data, counted)
            usage = state.usage if state.usage is not usage_before else None
            error = state.error if state.error is not error_before else None
            if fast >= 0 and (
                fast != texts
                or counted.done != done
                or counted.usage != usage
                or (counted.error is None) != (error is None)
            ):
                self._disable_fast_path("the fast path disagreed with full parsing")
        return texts

    def _disable_fast_path(self, why: str) -> None:
        if self.fast_path_disabled is None:
            self.fast_path_disabled = why

    def _handle_lines(self, lines: list[bytes], state: _StreamState) -> int:
        """Process the SSE lines of one read; returns how many events carried text.

        All events of a read are parsed with one JSON call and scanned with comprehensions:
        at high request rates the per-event Python overhead, not the parsing, is what would
        make the client the bottleneck.
        """
        if state.done:
            return 0
        payloads = [line[5:] for line in lines if line.startswith(b"data:")]
        if not payloads:
            return 0
        if payloads[-1].strip() == b"[DONE]":
            payloads.pop()
            state.done = True
            if not payloads:
                return 0
        joined = b"[" + b",".join(payloads) + b"]"
        try:
            events = _loads(joined)
        except ValueError:
            events = self._parse_one_by_one(payloads, state)
        return self._scan_events(events, joined, state)

    def _scan_events(self, events: list[Any], raw: bytes, state: _StreamState) -> int:
        """Count text-carrying events; keep usage, errors and (if needed) the text."""
        if self._chat:
            texts = [
                t
                for e in events
                if type(e) is dict
                and (c := e.get("choices"))
                and type(d := c[0].get("delta")) is dict
                and (t := d.get("content"))
            ]
        else:
            texts = [
                t
                for e in events
                if type(e) is dict and (c := e.get("choices")) and (t := c[0].get("text"))
            ]
        if self.tokenizer is not None:
            state.text_parts.extend(str(t) for t in texts)
        # Substring checks first: most events carry neither, and the scan is per event.
        if b'"usage"' in raw:
            for event in events:
                if type(event) is dict and event.get("usage"):
                    state.usage = event["usage"]
        if b'"error"' in raw:
            for event in events:
                if type(event) is dict and "error" in event:
                    state.error = f"error event: {str(event['error'])[:300]}"
        return len(texts)

    @staticmethod
    def _parse_one_by_one(payloads: list[bytes], state: _StreamState) -> list[Any]:
        """Slow path for a read holding a bad event or a [DONE] before its end."""
        events = []
        for payload in payloads:
            if state.done:
                break
            if payload.strip() == b"[DONE]":
                state.done = True
                continue
            try:
                events.append(_loads(payload))
            except ValueError:
                state.error = f"unparseable SSE data: {payload[:200]!r}"
        return events

    def _finish(self, record: RequestRecord, state: _StreamState, prompt: Prompt) -> None:
        if state.error is not None:
            record.error_kind = "stream_error" if state.error.startswith("error") else "protocol"
            record.error = state.error
            return
        if not record.chunk_times_s:
            record.error_kind, record.error = "empty_stream", "the stream carried no text"
            return
        record.first_token_s = record.chunk_times_s[0]
        usage = state.usage or {}
        prompt_tokens = usage.get("prompt_tokens")
        record.prompt_tokens = (
            prompt_tokens if isinstance(prompt_tokens, int) else prompt.prompt_tokens
        )
        completion_tokens = usage.get("completion_tokens")
        if isinstance(completion_tokens, int):
            record.output_tokens, record.output_tokens_source = completion_tokens, "usage"
        elif self.tokenizer is not None:
            record.output_tokens = self.tokenizer.count("".join(state.text_parts))
            record.output_tokens_source = "tokenizer"
        else:
            record.output_tokens = len(record.chunk_times_s)
            record.output_tokens_source = "chunks"


def _only_data_events(data: bytes) -> bool:
    """Whether ``data`` is nothing but whole ``data: ...`` lines, each followed by a blank
    line (what vLLM, TGI and SGLang send): no comments, other fields or CRLF pairs. JSON
    has no raw newlines, so ``\n\ndata:`` can only be an event boundary."""
    # A CR before the blank line ("\r\n\n") is harmless: JSON and [DONE] are stripped.
    return (
        data.startswith(b"data:")
        and data.endswith(b"\n\n")
        and data.count(b"\n") == 2 * data.count(b"\n\ndata:") + 2
    )
