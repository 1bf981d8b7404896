"""Load profiles: when each request should be sent.

Rate profiles produce an endless stream of arrival offsets (seconds from the level's
start); the runner stops taking from it at the duration or request limit. A sweep is
planned in two steps: first the synchronous and the saturating level are measured, then
rates interpolated between what those two achieved (as GuideLLM and inference-perf do).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass

from budcluster.bench.specs import ProfileSpec
from budcluster.errors import ConfigurationError

DEFAULT_SWEEP_CONCURRENCY = 64


@dataclass(frozen=True, slots=True)
class LevelPlan:
    """One load level. ``arrivals`` is "concurrency", "constant", "poisson" or "gamma"."""

    level: int
    label: str
    arrivals: str
    concurrency: int | None = None
    rate: float | None = None
    burstiness: float = 1.0
    max_concurrency: int | None = None


def arrival_offsets(
    arrivals: str, rate: float, rng: random.Random, burstiness: float = 1.0, phase: float = 0.0
) -> Iterator[float]:
    """Endless arrival offsets in seconds, starting at (or near) ``phase``.

    constant: exactly 1/rate apart. poisson: exponential gaps of mean 1/rate. gamma: gaps
    drawn from Gamma(shape=burstiness, scale=1/(rate*burstiness)), mean 1/rate like vLLM's
    ``--burstiness`` (1.0 is Poisson, lower is burstier).
    """
    if rate <= 0:
        raise ConfigurationError(f"rate must be > 0 requests/s, got {rate}")
    if arrivals == "constant":
        return (phase + i / rate for i in itertools.count())
    if arrivals == "poisson":
        return itertools.accumulate(
            (rng.expovariate(rate) for _ in itertools.count()), initial=phase
        )
    if arrivals == "gamma":
        if burstiness <= 0:
            raise ConfigurationError(f"burstiness must be > 0, got {burstiness}")
        scale = 1.0 / (rate * burstiness)
        gaps = (rng.gammavariate(burstiness, scale) for _ in itertools.count())
        return itertools.accumulate(gaps, initial=phase)
    raise ConfigurationError(f"unknown arrival process {arrivals!r}")


def initial_levels(profile: ProfileSpec) -> list[LevelPlan]:
    """The levels known before any measurement: the whole run, or a sweep's first two."""
    if profile.kind == "concurrency":
        streams = int(profile.value)
        return [LevelPlan(0, profile.label(), "concurrency", concurrency=streams)]
    if profile.kind in ("rate", "poisson", "gamma"):
        arrivals = "constant" if profile.kind == "rate" else profile.kind
        return [
            LevelPlan(
                0,
                profile.label(),
                arrivals,
                rate=profile.value,
                burstiness=profile.burstiness,
                max_concurrency=profile.max_concurrency,
            )
        ]
    if profile.kind == "sweep":
        saturation = profile.max_concurrency or DEFAULT_SWEEP_CONCURRENCY
        return [
            LevelPlan(0, "synchronous", "concurrency", concurrency=1),
            LevelPlan(
                1, f"throughput (concurrency:{saturation})", "concurrency", concurrency=saturation
            ),
        ]
    raise ConfigurationError(f"unknown profile kind {profile.kind!r}")


def sweep_rate_levels(
    profile: ProfileSpec, synchronous_rate: float, saturation_rate: float
) -> list[LevelPlan]:
    """``profile.value`` Poisson levels evenly spaced strictly between the two measured rates."""
    count = int(profile.value)
    low, high = sorted((synchronous_rate, saturation_rate))
    if high <= 0:
        raise ConfigurationError(
            "sweep: the saturation level completed no request, so no rate can be interpolated; "
            "check the server and --request-timeout"
        )
    low = max(low, high / 100)  # a synchronous level that failed must not plan a zero rate
    plans = []
    for i in range(1, count + 1):
        rate = low + (high - low) * i / (count + 1)
        plans.append(LevelPlan(1 + i, f"poisson:{rate:.2f}", "poisson", rate=rate))
    return plans
