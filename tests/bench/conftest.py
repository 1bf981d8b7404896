"""Fixtures for the benchmark tests: a testing server on its own thread and event loop.

The CLI and ``run_benchmark`` start their own event loop, so the server they talk to must
not live on the test's loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import pytest

from budcluster.bench.testing_server import ServerBehaviour, StreamingServer


@contextmanager
def threaded_server(behaviour: ServerBehaviour | None = None) -> Iterator[StreamingServer]:
    loop = asyncio.new_event_loop()
    server = StreamingServer(behaviour or ServerBehaviour())
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(timeout=10), "testing server did not start"
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@pytest.fixture
def server_thread() -> Iterator[Callable[..., StreamingServer]]:
    """Call with a behaviour to get a running server (stopped after the test)."""
    with ExitStack() as stack:

        def start(behaviour: ServerBehaviour | None = None) -> StreamingServer:
            return stack.enter_context(threaded_server(behaviour))

        yield start
