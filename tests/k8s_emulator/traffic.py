"""What the emulator saw of HTTP traffic to workloads, for tests to assert the path a
request took: the API server's services/proxy requests (as its audit or access log would
show them) and the requests each pod's simulated server answered."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

LOG_SIZE = 10_000
"""Entries kept per log; older ones fall off."""
BODY_KEPT = 16_384
"""Bytes of a request body an engine log entry keeps."""


@dataclass(frozen=True)
class ProxiedRequest:
    """One request to ``services/<service_id>/proxy/<path>``, as the API server answered it."""

    namespace: str
    service_id: str
    method: str
    path: str
    status: int
    streamed_events: int = 0
    """Server-sent events written back, each flushed as it came (0: not streamed)."""
    started_s: float = 0.0
    finished_s: float = 0.0
    """``time.monotonic()`` when the request came in and when its answer was complete."""


@dataclass(frozen=True)
class ServedRequest:
    """One request a pod's simulated server (inference engine or LiteLLM) answered."""

    namespace: str
    pod: str
    port: int
    server: str
    """"vllm", "llama.cpp" or "litellm"."""
    method: str
    path: str
    status: int
    via: str
    """"service-proxy" (from the API server) or "cluster-network" (from another pod)."""
    headers: dict[str, str] = field(default_factory=dict)
    """The headers that reached the server (lower-case names)."""
    body: bytes = b""
    """The request body that reached the server (what the client asked of the engine: the
    model name, a LoRA selection), up to ``BODY_KEPT`` bytes."""

    def json_body(self) -> Any:
        """The body as JSON; None when it is empty or not JSON."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None
