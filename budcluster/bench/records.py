"""The records a benchmark run produces: the contract between the engine and the store.

Times are seconds on the run's monotonic clock, relative to ``RunInfo.started_monotonic``
(a float keeps sub-microsecond precision where wall-clock timestamps would not). The
store saves them as they are; reports convert them to milliseconds.

Fields may be added (with defaults); existing fields keep their meaning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(slots=True)
class RequestRecord:
    """One request as the client saw it."""

    request_id: int
    level: int
    """Index of the load level within the run (0 for a single-level run)."""
    scheduled_s: float
    """When the profile wanted the request sent."""
    sent_s: float | None = None
    """When the request bytes were handed to the socket; None if never sent."""
    first_token_s: float | None = None
    end_s: float | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    output_tokens_source: str = "usage"
    """Where ``output_tokens`` came from: "usage" (the server), "tokenizer" or "chunks"."""
    chunk_times_s: list[float] = field(default_factory=list)
    """Arrival time of every streamed chunk that carried text; ITL is their gaps."""
    error_kind: str | None = None
    """A stable class such as "http_5xx", "timeout", "connection", "protocol"; None on success."""
    error: str | None = None
    retries: int = 0
    warmup: bool = False


@dataclass(slots=True)
class LatencyStats:
    mean: float
    std: float
    min: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float
    count: int


@dataclass(slots=True)
class LevelSummary:
    """Aggregates of one load level (one profile step of a sweep, or the whole run)."""

    level: int
    label: str
    """Human label such as "concurrency:16" or "rate:50.0"."""
    target_concurrency: int | None
    target_rate: float | None
    duration_s: float
    requests_completed: int
    requests_failed: int
    request_throughput: float
    output_token_throughput: float
    total_token_throughput: float
    goodput: float | None
    error_rate: float
    latencies_ms: dict[str, LatencyStats]
    """Keyed by "ttft_ms", "tpot_ms", "itl_ms", "e2e_ms", "schedule_delay_ms"."""
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    retries: int = 0


@dataclass(slots=True)
class RunInfo:
    """What was measured, how, and when."""

    name: str
    url: str
    model: str
    api: str
    profile: str
    tool_version: str
    started_at: datetime
    started_monotonic: float
    finished_at: datetime | None = None
    status: str = "running"
    deployment_name: str | None = None
    settings: dict[str, object] = field(default_factory=dict)
    """Everything needed to rerun: token specs, SLOs, limits, tokenizer used and why."""
