"""Client lag: whether the load generator kept up well enough to time what it measured.

The client stamps sends and chunk arrivals on its own event loop. When that loop runs late
(cores shared with the server, too many streams for one process), its stamps are late by
up to that much, and chunks that arrived while it was busy are read in one go: their gaps
shrink to 0 ms and, once the lag reaches the length of a whole answer, TPOT collapses
towards 0. Schedule delay (sent - scheduled) shows that lateness directly.

The rule: the client lag is the schedule delay's p90 (most requests, not the odd stall).
Every latency is a difference of two stamps, so its error is up to the lag; a metric is
untrustworthy when the lag is more than ``LAG_FRACTION`` (a quarter) of the span it times:

* ITL, one gap: one token's time, TPOT p50 (ITL's own p50 is 0 ms whenever the server
  sends several chunks in one packet, lag or not);
* TPOT, a request's decode averaged over its tokens: E2E p50 - TTFT p50;
* TTFT and E2E: their own p50.

Per-token timings have the shortest spans, so they are listed (and go) first.

Schedule delay also counts the client's own work to send a request, and for a rate
profile with a concurrency cap it would count queueing for a free slot (this tool caps no
rate profile today); both make the rule err towards warning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

LAG_FRACTION = 0.25
"""Lag above this fraction of the span a metric times makes the metric untrustworthy."""

RULE = (
    f"a metric is untrustworthy when the schedule delay p90 exceeds {LAG_FRACTION:.0%} of "
    "the span it times: TPOT p50 for ITL, E2E p50 - TTFT p50 for TPOT, its own p50 for "
    "TTFT and E2E"
)
PER_TOKEN = ("ITL", "TPOT")


@dataclass(frozen=True, slots=True)
class ClientLag:
    """A run (or level) whose client lag is large against what it measured."""

    lag_ms: float
    """The schedule delay's p90."""
    exceeded: tuple[tuple[str, str, float], ...]
    """(metric, the span it times, that span in ms) for each untrustworthy metric."""

    @property
    def untrustworthy(self) -> tuple[str, ...]:
        """Metric names, per-token timings first (e.g. "ITL", "TPOT", "TTFT")."""
        return tuple(metric for metric, _, _ in self.exceeded)

    def message(self) -> str:
        spans = [f"{span} {_ms(value)} for {metric}" for metric, span, value in self.exceeded]
        listed = ", ".join(spans[:-1]) + " and " + spans[-1] if len(spans) > 1 else spans[0]
        per_token = [name for name in self.untrustworthy if name in PER_TOKEN]
        others = [name for name in self.untrustworthy if name not in PER_TOKEN]
        if per_token:
            # Bunching shows once the lag reaches the decode itself (TPOT is flagged).
            effect = "read tokens in bunches" if "TPOT" in per_token else "stamped chunks late"
            doubtful = f"per-token timings ({', '.join(per_token)})"
            if others:
                doubtful += f" first, then {', '.join(others)}"
        else:
            effect = "stamped events late"
            doubtful = ", ".join(others)
        return (
            f"Client lag: schedule delay p90 {_ms(self.lag_ms)} is more than "
            f"{LAG_FRACTION:.0%} of the span each metric times ({listed}). The benchmark "
            "client ran late (it shares CPU cores with the server, or drives too many "
            f"streams) and {effect}, so these figures are untrustworthy: {doubtful}. Give "
            "the client a core of its own (or another machine) and rerun."
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "schedule_delay_p90_ms": self.lag_ms,
            "fraction": LAG_FRACTION,
            "rule": RULE,
            "untrustworthy": list(self.untrustworthy),
            "span_ms": {metric: value for metric, _, value in self.exceeded},
            "message": self.message(),
        }


def _ms(value: float) -> str:
    return f"{value:.3g} ms" if abs(value) < 100 else f"{value:.0f} ms"


def assess_client_lag(
    schedule_delay_p90_ms: float, p50_ms: Mapping[str, float | None]
) -> ClientLag | None:
    """The warning for a lag against the p50s keyed "tpot_ms", "ttft_ms", "e2e_ms"
    (None or absent: not measured, not judged); None when the lag is small enough."""
    tpot, ttft, e2e = (p50_ms.get(key) for key in ("tpot_ms", "ttft_ms", "e2e_ms"))
    spans: list[tuple[str, str, float | None]] = [
        ("ITL", "one token (TPOT p50)", tpot),
        ("TPOT", "the decode (E2E p50 - TTFT p50)", None),
        ("TTFT", "TTFT p50", ttft),
        ("E2E", "E2E p50", e2e),
    ]
    if tpot is not None and ttft is not None and e2e is not None:
        spans[1] = ("TPOT", "the decode (E2E p50 - TTFT p50)", e2e - ttft)
    exceeded = tuple(
        (metric, span, value)
        for metric, span, value in spans
        if value is not None and schedule_delay_p90_ms > LAG_FRACTION * value
    )
    return ClientLag(schedule_delay_p90_ms, exceeded) if exceeded else None


def level_client_lag(level: Mapping[str, Any]) -> ClientLag | None:
    """The rule applied to one level of a summary (or the summary's whole-run figures)."""
    delay = level.get("schedule_delay_ms") or {}
    if not delay.get("count") or delay.get("p90") is None:
        return None
    p50s: dict[str, float | None] = {}
    for key in ("tpot_ms", "ttft_ms", "e2e_ms"):
        stats = level.get(key) or {}
        p50s[key] = stats.get("p50") if stats.get("count") else None
    return assess_client_lag(float(delay["p90"]), p50s)
