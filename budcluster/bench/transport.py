"""aiohttp's transport, tuned for measuring: arrival stamps, send stamps, stale connections.

* :class:`ArrivalStampingHandler` notes when the socket delivered the first unread bytes
  (the arrival time the client reports), skips aiohttp's needless resume calls, and sees
  a keep-alive connection the server has closed before the pool hands it out again.
* :class:`StampingRequest` notes when the request was actually written (TTFT counts from
  there) and on which connection, for :func:`resendable`.
* :func:`new_session` builds a session from both.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import select
import ssl as ssl_module
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler

# The connection the current try went out on, in a one-slot list made per try; aiohttp
# writes the request from a task of its own (Python < 3.12), which starts with a copy of
# this context and so fills the same list.
TRY_CONNECTION: contextvars.ContextVar[list[ArrivalStampingHandler | None] | None] = (
    contextvars.ContextVar("budcluster_bench_try_connection", default=None)
)


def resendable(protocol: ArrivalStampingHandler | None) -> bool:
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


class ArrivalStampingHandler(ResponseHandler):
    """aiohttp's protocol, noting when the socket delivered the first unread bytes.

    A coroutine resumes only after every coroutine woken before it has run, so under a
    burst (64 streams answering in the same millisecond) a timestamp taken in the reading
    coroutine lags the arrival by the others' processing time. ``data_received`` runs as
    the event loop reads the socket, so its timestamp does not.
    """

    first_unread_s: float | None = None
    request_sent_s: float | None = None
    """When the current request's bytes were handed to the socket (see StampingRequest)."""
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


class StampingRequest(aiohttp.ClientRequest):
    """Notes when aiohttp actually writes the request.

    On Python < 3.12 aiohttp writes headers and body from a task scheduled after the
    ``post`` call, so under a burst the bytes leave a few milliseconds after the caller
    asked. TTFT counts from this write, as the definition requires.
    """

    async def write_bytes(self, writer: Any, conn: Any, *args: Any, **kwargs: Any) -> None:
        # Once per request: the base method by reference, not through super().
        protocol = conn.protocol
        if not isinstance(protocol, ArrivalStampingHandler):
            await _BASE_WRITE_BYTES(self, writer, conn, *args, **kwargs)
            return
        protocol.request_sent_s = time.perf_counter()
        protocol.first_unread_s = None  # only bytes from here on answer this request
        protocol.requests_started += 1
        protocol.request_written = False
        slot = TRY_CONNECTION.get()
        if slot is not None:
            slot[0] = protocol
        await _BASE_WRITE_BYTES(self, writer, conn, *args, **kwargs)
        # aiohttp reports a failed write on the protocol instead of raising it here.
        protocol.request_written = protocol.exception() is None


class ArrivalStampingConnector(aiohttp.TCPConnector):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # aiohttp builds each connection's protocol with this factory (connector.py).
        self._factory = functools.partial(ArrivalStampingHandler, loop=self._loop)  # type: ignore[assignment]


def new_session(
    *,
    limit: int,
    force_close: bool,
    timeout: aiohttp.ClientTimeout,
    ssl: ssl_module.SSLContext | bool = True,
) -> aiohttp.ClientSession:
    """A session whose connections stamp arrivals and sends; bodies are read undecoded.
    ``ssl``: the TLS settings of https connections (True: the system's defaults)."""
    connector = ArrivalStampingConnector(
        limit=limit, ttl_dns_cache=300, force_close=force_close, ssl=ssl
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        auto_decompress=False,
        request_class=StampingRequest,
    )
