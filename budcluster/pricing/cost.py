"""Cost per million output tokens from an hourly price and a measured throughput. Pure.

cost = usd_per_hour / (output_tokens_per_s x 3600) x 1e6: what one million output tokens
cost when the devices run for exactly as long as the measured rate needs to produce them.
"""

from __future__ import annotations

import math

TOKENS = 1_000_000
SECONDS_PER_HOUR = 3600


def usd_per_million_output_tokens(
    usd_per_hour: float | None, output_tokens_per_s: float | None
) -> float | None:
    """None when the price is unknown or nothing was produced (no rate, no cost)."""
    if usd_per_hour is None or output_tokens_per_s is None:
        return None
    if not math.isfinite(output_tokens_per_s) or output_tokens_per_s <= 0:
        return None
    return usd_per_hour / (output_tokens_per_s * SECONDS_PER_HOUR) * TOKENS
