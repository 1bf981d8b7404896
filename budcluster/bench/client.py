"""The streaming client: one OpenAI-compatible request in, one :class:`RequestRecord` out.

Hot-path choices, all to keep the client from being the bottleneck:

* aiohttp with pre-serialised bodies; the body is built once per request.
* The stream is read with ``iter_any`` (one await per socket read, not per line) and fed
  to the SSE decoder (:mod:`budcluster.bench.sse`). Every event in one read gets that
  read's timestamp, which is the best arrival time the client can know
  (:mod:`budcluster.bench.transport` takes it as the socket delivers the bytes).
* JSON is written and parsed with orjson when installed.

Tolerance of real servers: a missing ``[DONE]`` (EOF ends the stream), a missing usage
block (output tokens then come from the tokenizer, else the chunk count), 400/422 on an
optional field (it is dropped for the rest of the run and the request resent), multi-token
chunks (TPOT uses the token count, ITL the chunk gaps), and keep-alive connections the
server has closed (see :meth:`~budcluster.bench.transport.ArrivalStampingHandler.is_connected`
and :func:`~budcluster.bench.transport.resendable`).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from multidict import CIMultiDict

from budcluster.bench.access import CredentialUnavailable, EndpointAccess, RenewingBearer
from budcluster.bench.datasets import Prompt, Tokenizer
from budcluster.bench.records import RequestRecord
from budcluster.bench.sse import SSEDecoder, StreamState
from budcluster.bench.transport import (
    TRY_CONNECTION,
    ArrivalStampingHandler,
    new_session,
    resendable,
)

try:
    import orjson

    def _dumps(value: object) -> bytes:
        return orjson.dumps(value)

except ImportError:  # pragma: no cover - orjson comes with prefect

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
    extra_body: dict[str, object] = field(default_factory=dict)
    """Fields every request carries (an adapter selection); unlike the optional ones, a
    server that rejects them fails the request instead of having them dropped."""
    access: EndpointAccess | None = None
    """How to reach ``base_url`` when it cannot be dialled (an in-cluster Service): the
    requests go to ``access.base_url`` with its headers and TLS settings instead."""

    @property
    def endpoint(self) -> str:
        path = "/v1/chat/completions" if self.api == "chat" else "/v1/completions"
        if self.access is not None:
            return self.access.endpoint_url(path)
        base = self.base_url.rstrip("/")
        base = base.removesuffix("/v1")
        return base + path


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
        self._sse = SSEDecoder(
            chat=self._chat,
            keep_text=tokenizer is not None,  # the text itself is needed to count tokens
            verify_every=config.sse_verify_every,
        )
        # The stream is read undecoded (auto_decompress=False), so ask for it that way:
        # aiohttp otherwise offers gzip, and a server or proxy that compresses event
        # streams would make every read unparseable.
        self._headers: CIMultiDict[str] = CIMultiDict(
            {"Content-Type": "application/json", "Accept-Encoding": "identity"}
        )
        if config.api_key:
            self._headers["Authorization"] = f"Bearer {config.api_key}"
        self._ssl: ssl.SSLContext | bool = True
        self._request_options: dict[str, Any] = {}
        self._bearer: RenewingBearer | None = None
        access = config.access
        if access is not None:
            access.check_api_key(config.api_key)
            for name, value in access.headers:
                self._headers.add(name, value)
            self._bearer = access.renewing_bearer()
            if self._bearer is not None:
                self._headers["Authorization"] = self._bearer.value
            self._ssl = access.ssl_context() or True
            if access.tls_server_name:
                self._request_options["server_hostname"] = access.tls_server_name
        self._timeout = aiohttp.ClientTimeout(
            total=config.request_timeout_s, sock_connect=config.connect_timeout_s
        )
        self.session = new_session(
            limit=connections, force_close=False, timeout=self._timeout, ssl=self._ssl
        )
        self._fresh_session: aiohttp.ClientSession | None = None
        """For resends: a new connection each time, never one from the pool."""

    @property
    def fast_path_disabled(self) -> str | None:
        """Why the SSE fast path was turned off for the run; None while it holds."""
        return self._sse.fast_path_disabled

    async def close(self) -> None:
        if self._bearer is not None:
            await self._bearer.close()
        await self.session.close()
        if self._fresh_session is not None:
            await self._fresh_session.close()

    def _fresh(self) -> aiohttp.ClientSession:
        if self._fresh_session is None:
            self._fresh_session = new_session(
                limit=0, force_close=True, timeout=self._timeout, ssl=self._ssl
            )
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
        payload.update(self.config.extra_body)
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
        bearer = self._bearer
        try:
            # A plugin's token: one timestamp check per request, a renewal only near expiry.
            # Each request's headers are copied by aiohttp when sent, so replacing the
            # value here never changes a request in flight.
            if bearer is not None and time.time() >= bearer.renew_at:
                self._headers["Authorization"] = await bearer.current()
            while True:  # once per try
                cached = self._bodies.get(id(prompt))
                body = cached[1] if cached is not None and cached[0] is prompt else None
                if body is None:
                    body = self._cache_body(prompt)
                record.sent_s = clock() - origin
                received_any = False
                slot: list[ArrivalStampingHandler | None] = [None]
                TRY_CONNECTION.set(slot)
                try:
                    async with session.post(
                        self._url, data=body, headers=self._headers, **self._request_options
                    ) as resp:
                        received_any = True
                        connection = resp.connection
                        protocol = connection.protocol if connection is not None else None
                        if isinstance(protocol, ArrivalStampingHandler) and protocol.request_sent_s:
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
                        or not resendable(slot[0])
                    ):
                        raise
                    record.retries += 1
                    # Other pooled connections may have been shut by the same server at
                    # the same moment; a new one cannot be stale.
                    session = self._fresh()
        except asyncio.CancelledError:
            record.error_kind, record.error = "cancelled", "the run ended before the response"
            raise
        except CredentialUnavailable as exc:
            record.error_kind, record.error = "credentials", str(exc)
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
        state = StreamState()
        chunk_times = record.chunk_times_s
        connection = resp.connection
        protocol = connection.protocol if connection is not None else None
        if isinstance(protocol, ArrivalStampingHandler):
            # Bytes that came with the headers (read before this point) are not body
            # bytes' arrival; the clock below covers a body that came in the same packet.
            protocol.first_unread_s = None
        else:
            protocol = None
        feed = self._sse.feed
        async for data in resp.content.iter_any():
            # Inline rather than a helper: this loop runs once per socket read.
            if protocol is not None and (arrived := protocol.first_unread_s) is not None:
                protocol.first_unread_s = None
            else:
                arrived = clock()
            now = arrived - origin
            if texts := feed(data, state):
                chunk_times += [now] * texts
            if state.done and record.end_s is None:
                record.end_s = now
        now = clock() - origin
        if self._sse.flush(state):
            chunk_times.append(now)
        if record.end_s is None:
            record.end_s = now  # no [DONE]: the end of the body ends the stream
        self._finish(record, state, prompt)

    def _count_read(self, data: bytes, state: StreamState) -> int:
        # Tests check the decoder's fast path on the decoder a client built.
        return self._sse.count_read(data, state)

    def _finish(self, record: RequestRecord, state: StreamState, prompt: Prompt) -> None:
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
