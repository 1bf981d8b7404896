"""Arrival schedules of each load profile, spec parsing, and sweep planning."""

from __future__ import annotations

import itertools
import math
import random
import statistics

import pytest

from budcluster.bench import profiles
from budcluster.bench.specs import (
    ProfileSpec,
    TokenLengthSpec,
    parse_profile,
    parse_slos,
    parse_token_spec,
)
from budcluster.errors import ConfigurationError


def take(iterator: object, n: int) -> list[float]:
    return list(itertools.islice(iterator, n))  # type: ignore[call-overload]


def gaps(offsets: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(offsets)]


def test_constant_rate_is_evenly_spaced() -> None:
    offsets = take(profiles.arrival_offsets("constant", 50.0, random.Random(0)), 6)
    assert offsets == pytest.approx([0.0, 0.02, 0.04, 0.06, 0.08, 0.10])


def test_poisson_gaps_are_exponential_with_the_right_mean() -> None:
    rate = 200.0
    n = 20_000
    offsets = take(profiles.arrival_offsets("poisson", rate, random.Random(42)), n + 1)
    observed = gaps(offsets)
    mean = statistics.fmean(observed)
    # Mean of n exponential gaps: standard error (1/rate)/sqrt(n); allow 4 sigma.
    assert abs(mean - 1 / rate) < 4 * (1 / rate) / math.sqrt(n)
    # Coefficient of variation of an exponential is 1.
    assert statistics.pstdev(observed) / mean == pytest.approx(1.0, abs=0.05)
    # Kolmogorov-Smirnov distance to Exp(rate); 1.36/sqrt(n) is the 5% critical value.
    ordered = sorted(observed)
    d = max(
        max(abs((i + 1) / n - (1 - math.exp(-rate * x))), abs(i / n - (1 - math.exp(-rate * x))))
        for i, x in enumerate(ordered)
    )
    assert d < 1.36 / math.sqrt(n)
    # Counts per 1-second window are Poisson: variance equals the mean.
    counts = [0] * int(offsets[-1])
    for t in offsets:
        if int(t) < len(counts):
            counts[int(t)] += 1
    assert statistics.pvariance(counts) / statistics.fmean(counts) == pytest.approx(1.0, abs=0.35)


def test_a_uniform_schedule_fails_the_poisson_checks() -> None:
    # Guard that the statistical test above can fail: constant gaps have CV 0.
    offsets = take(profiles.arrival_offsets("constant", 200.0, random.Random(0)), 1001)
    observed = gaps(offsets)
    assert statistics.pstdev(observed) / statistics.fmean(observed) < 0.01


@pytest.mark.parametrize("burstiness", [0.25, 1.0, 4.0])
def test_gamma_keeps_the_rate_and_sets_burstiness(burstiness: float) -> None:
    rate, n = 100.0, 20_000
    offsets = take(profiles.arrival_offsets("gamma", rate, random.Random(7), burstiness), n + 1)
    observed = gaps(offsets)
    assert statistics.fmean(observed) == pytest.approx(1 / rate, rel=0.05)
    # Gamma(shape k): CV = 1/sqrt(k); lower burstiness means burstier traffic.
    cv = statistics.pstdev(observed) / statistics.fmean(observed)
    assert cv == pytest.approx(1 / math.sqrt(burstiness), rel=0.08)


def test_same_seed_same_schedule() -> None:
    first = take(profiles.arrival_offsets("poisson", 10.0, random.Random(3)), 50)
    second = take(profiles.arrival_offsets("poisson", 10.0, random.Random(3)), 50)
    assert first == second


def test_initial_levels_per_profile() -> None:
    (level,) = profiles.initial_levels(parse_profile("concurrency:16"))
    assert (level.arrivals, level.concurrency) == ("concurrency", 16)
    (level,) = profiles.initial_levels(parse_profile("rate:50"))
    assert (level.arrivals, level.rate) == ("constant", 50.0)
    (level,) = profiles.initial_levels(parse_profile("poisson:5"))
    assert level.arrivals == "poisson"
    (level,) = profiles.initial_levels(parse_profile("gamma:5,0.5"))
    assert (level.arrivals, level.burstiness) == ("gamma", 0.5)
    sync, saturate = profiles.initial_levels(parse_profile("sweep:3"))
    assert (sync.concurrency, saturate.concurrency) == (1, profiles.DEFAULT_SWEEP_CONCURRENCY)


def test_sweep_interpolates_between_measured_rates() -> None:
    plans = profiles.sweep_rate_levels(ProfileSpec("sweep", 3), 10.0, 50.0)
    assert [p.rate for p in plans] == pytest.approx([20.0, 30.0, 40.0])
    assert [p.level for p in plans] == [2, 3, 4]
    assert all(p.arrivals == "poisson" for p in plans)
    with pytest.raises(ConfigurationError, match="saturation"):
        profiles.sweep_rate_levels(ProfileSpec("sweep", 3), 0.0, 0.0)


def test_token_specs() -> None:
    rng = random.Random(0)
    assert parse_token_spec("128") == TokenLengthSpec("fixed", 128)
    uniform = parse_token_spec("uniform:10-20")
    assert all(10 <= uniform.sample(rng) <= 20 for _ in range(500))
    normal = parse_token_spec("normal:100,50,80,120")
    samples = [normal.sample(rng) for _ in range(2000)]
    assert min(samples) == 80 and max(samples) == 120  # clipped at the bounds
    unbounded = parse_token_spec("normal:500,20")
    assert statistics.fmean(unbounded.sample(rng) for _ in range(2000)) == pytest.approx(500, abs=3)


@pytest.mark.parametrize("bad", ["", "0", "uniform:20-10", "normal:5", "gauss:1,2", "x"])
def test_bad_token_specs_name_the_option_and_the_forms(bad: str) -> None:
    with pytest.raises(ConfigurationError, match=r"--output-tokens.*uniform:A-B"):
        parse_token_spec(bad, "--output-tokens")


def test_slos_parse_to_milliseconds() -> None:
    assert parse_slos("ttft=200ms,tpot=50ms,e2e=2s") == {"ttft": 200, "tpot": 50, "e2e": 2000}
    with pytest.raises(ConfigurationError, match="--slo"):
        parse_slos("itl=5ms")


@pytest.mark.parametrize("bad", ["concurrency:0", "rate:-1", "poisson:x", "burst:5", "sweep:0"])
def test_bad_profiles_are_rejected(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="--profile"):
        parse_profile(bad)
