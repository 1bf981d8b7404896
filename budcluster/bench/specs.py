"""Parsing of the small text specs the command line takes: token lengths, SLOs, profiles.

Every parser raises :class:`ConfigurationError` naming the option and a valid example, so
a typo on the command line tells the user how to fix it.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

from budcluster.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class TokenLengthSpec:
    """A distribution of token counts: fixed, uniform or a bounded normal."""

    kind: str
    """"fixed", "uniform" or "normal"."""
    a: float
    b: float = 0.0
    minimum: int = 1
    maximum: int = 1_000_000

    def sample(self, rng: random.Random) -> int:
        if self.kind == "fixed":
            return int(self.a)
        if self.kind == "uniform":
            return rng.randint(int(self.a), int(self.b))
        value = round(rng.gauss(self.a, self.b))
        return max(self.minimum, min(self.maximum, value))

    def describe(self) -> str:
        if self.kind == "fixed":
            return str(int(self.a))
        if self.kind == "uniform":
            return f"uniform:{int(self.a)}-{int(self.b)}"
        return f"normal:{self.a:g},{self.b:g},{self.minimum},{self.maximum}"


def parse_token_spec(text: str, option: str = "--input-tokens") -> TokenLengthSpec:
    """Parse ``N``, ``uniform:A-B`` or ``normal:MEAN,SD[,MIN,MAX]``."""
    hint = f"{option} takes N, uniform:A-B or normal:MEAN,SD[,MIN,MAX] (e.g. normal:512,64,1,2048)"
    spec = text.strip()
    try:
        if spec.isdigit():
            spec_value = TokenLengthSpec("fixed", int(spec))
        elif spec.startswith("uniform:"):
            low, high = (int(part) for part in spec.removeprefix("uniform:").split("-"))
            if low > high:
                raise ConfigurationError(f"{option}: {text!r} has A > B; {hint}")
            spec_value = TokenLengthSpec("uniform", low, high)
        elif spec.startswith("normal:"):
            parts = [float(part) for part in spec.removeprefix("normal:").split(",")]
            if len(parts) not in (2, 4):
                raise ValueError(text)
            if not all(math.isfinite(p) for p in parts):
                raise ConfigurationError(f"{option}: {text!r} must be finite numbers; {hint}")
            low, high = (int(parts[2]), int(parts[3])) if len(parts) == 4 else (1, 1_000_000)
            if parts[1] < 0 or low > high:
                raise ConfigurationError(f"{option}: {text!r} needs SD >= 0 and MIN <= MAX; {hint}")
            spec_value = TokenLengthSpec("normal", parts[0], parts[1], low, high)
        else:
            raise ValueError(text)
    except ValueError as exc:
        raise ConfigurationError(f"{option}: cannot parse {text!r}; {hint}") from exc
    if spec_value.kind != "normal" and min(spec_value.a, spec_value.b or spec_value.a) < 1:
        raise ConfigurationError(f"{option}: token counts must be >= 1, got {text!r}; {hint}")
    if max(spec_value.a, spec_value.b or 0, spec_value.maximum or 0) > MAX_TOKENS:
        raise ConfigurationError(
            f"{option}: token counts must be at most {MAX_TOKENS}, got {text!r}; {hint}"
        )
    return spec_value


_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ms|s)?\s*$")
SLO_METRICS = ("ttft", "tpot", "e2e")


def parse_slos(text: str | None) -> dict[str, float]:
    """Parse ``ttft=200ms,tpot=50ms,e2e=2s`` into milliseconds keyed by metric name."""
    if not text:
        return {}
    hint = "--slo takes METRIC=VALUE[ms|s] pairs for ttft, tpot, e2e (e.g. ttft=200ms,tpot=50ms)"
    slos: dict[str, float] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        name = name.strip().lower()
        match = _DURATION.match(value)
        if not sep or name not in SLO_METRICS or match is None:
            raise ConfigurationError(f"--slo: cannot parse {item!r}; {hint}")
        number = float(match.group(1))
        slos[name] = number * 1000 if match.group(2) == "s" else number
    return slos


@dataclass(frozen=True, slots=True)
class ProfileSpec:
    """What load to offer. ``kind`` is concurrency, rate, poisson, gamma or sweep."""

    kind: str
    value: float = 0.0
    """Concurrency (streams), rate (requests/s), or the number of sweep rate levels."""
    burstiness: float = 1.0
    """Gamma shape; 1.0 is Poisson, below 1 is burstier, above 1 is more regular."""
    max_concurrency: int | None = None
    """Cap on in-flight requests for rate profiles (the saturation concurrency for sweep)."""

    def label(self) -> str:
        if self.kind == "concurrency":
            return f"concurrency:{int(self.value)}"
        if self.kind == "gamma":
            return f"gamma:{self.value:g},{self.burstiness:g}"
        if self.kind == "sweep":
            return f"sweep:{int(self.value)}"
        return f"{self.kind}:{self.value:g}"


MAX_TOKENS = 10_000_000
MAX_STREAMS = 65_536
MAX_RATE = 1_000_000.0
MAX_SWEEP_LEVELS = 100
MAX_BURSTINESS = 1_000.0


def parse_profile(text: str) -> ProfileSpec:
    """Parse ``concurrency:16``, ``rate:50``, ``poisson:50``, ``gamma:50,0.5`` or ``sweep[:N]``."""
    hint = (
        "--profile takes concurrency:N, rate:R, poisson:R, gamma:R,BURSTINESS or sweep[:LEVELS] "
        "(e.g. concurrency:16, poisson:50, gamma:50,0.5, sweep:5); counts and rates must be "
        f"finite, at most {MAX_STREAMS} streams, {MAX_RATE:g} requests/s, {MAX_SWEEP_LEVELS} levels"
    )
    kind, _, rest = text.strip().partition(":")
    kind = kind.lower()
    try:
        if kind == "sweep":
            levels = int(rest) if rest else 5
            if not 1 <= levels <= MAX_SWEEP_LEVELS:
                raise ValueError(rest)
            return ProfileSpec("sweep", levels)
        if kind == "concurrency":
            streams = int(rest)
            if not 1 <= streams <= MAX_STREAMS:
                raise ValueError(rest)
            return ProfileSpec("concurrency", streams)
        if kind in ("rate", "poisson"):
            rate = float(rest)
            if not 0 < rate <= MAX_RATE:  # also refuses nan
                raise ValueError(rest)
            return ProfileSpec(kind, rate)
        if kind == "gamma":
            rate_text, _, shape_text = rest.partition(",")
            rate, shape = float(rate_text), float(shape_text or "1")
            if not (0 < rate <= MAX_RATE and 0 < shape <= MAX_BURSTINESS):
                raise ValueError(rest)
            return ProfileSpec("gamma", rate, burstiness=shape)
    except ValueError as exc:
        raise ConfigurationError(f"--profile: cannot parse {text!r}; {hint}") from exc
    raise ConfigurationError(f"--profile: unknown profile {kind!r}; {hint}")
