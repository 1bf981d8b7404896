"""Bounds on the numbers a user types into a plan, a deploy form or ``deployments.yaml``.

YAML reads ``.inf``, ``.nan`` and ``1.0e+30`` as floats, JSON forms send ``4.0`` for 4
and ``true`` for 1, and pydantic's lax mode would take them all: an infinite timeout
never fires, a ``1e30`` context length overflows whatever it is multiplied with. Every
number here must therefore be finite, a whole number where a count is meant, and inside
a range no real deployment leaves; the error says which range.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated

from pydantic import BeforeValidator, Field

__all__ = [
    "ConcurrencyLimit",
    "ContextLength",
    "MemoryFraction",
    "PercentLimit",
    "ReplicaCount",
    "RequestCount",
    "RunId",
    "Seconds",
    "WarmupCount",
    "check_number",
    "check_whole_number",
    "number_in",
    "whole_number",
]

MAX_CONTEXT_TOKENS = 10_000_000
"""Well above the longest context any released model serves (a few million tokens)."""
MAX_CONCURRENCY = 65_536
MAX_REPLICAS = 1_024
MAX_REQUESTS = 10_000_000
MAX_SECONDS = 7 * 24 * 3600.0
"""A week: no wait for a runtime or a benchmark is meant to be longer."""
MAX_PERCENT = 1_000.0
MAX_RUN_ID = 2**63 - 1
"""The store's BIGINT."""


def check_whole_number(value: object, low: int, high: int) -> int:
    """``value`` as an int in ``[low, high]``; digits in a string (a CLI ``--param``) count."""
    number = value
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if isinstance(number, int) and not isinstance(number, bool) and low <= number <= high:
        return number
    raise ValueError(f"must be a whole number from {low} to {high}, not {value!r}")


def check_number(value: object, low: float, high: float, *, low_open: bool = False) -> float:
    """``value`` as a finite float in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    number: object = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = value
    if (
        isinstance(number, int | float)
        and not isinstance(number, bool)
        and math.isfinite(number)
        and (number > low if low_open else number >= low)
        and number <= high
    ):
        return float(number)
    bounds = f"above {low:g} and at most {high:g}" if low_open else f"from {low:g} to {high:g}"
    raise ValueError(f"must be a finite number {bounds}, not {value!r}")


def whole_number(low: int, high: int) -> Callable[[object], int]:
    def check(value: object) -> int:
        return check_whole_number(value, low, high)

    return check


def number_in(low: float, high: float, *, low_open: bool = False) -> Callable[[object], float]:
    def check(value: object) -> float:
        return check_number(value, low, high, low_open=low_open)

    return check


# Each Field keeps the bounds in the JSON schema (the Prefect UI's forms); the validator
# before it runs first and gives one message for every way of being wrong.
ContextLength = Annotated[
    int, Field(ge=1, le=MAX_CONTEXT_TOKENS), BeforeValidator(whole_number(1, MAX_CONTEXT_TOKENS))
]
ConcurrencyLimit = Annotated[
    int, Field(ge=1, le=MAX_CONCURRENCY), BeforeValidator(whole_number(1, MAX_CONCURRENCY))
]
ReplicaCount = Annotated[
    int, Field(ge=1, le=MAX_REPLICAS), BeforeValidator(whole_number(1, MAX_REPLICAS))
]
RequestCount = Annotated[
    int, Field(ge=1, le=MAX_REQUESTS), BeforeValidator(whole_number(1, MAX_REQUESTS))
]
WarmupCount = Annotated[
    int, Field(ge=0, le=MAX_REQUESTS), BeforeValidator(whole_number(0, MAX_REQUESTS))
]
RunId = Annotated[int, Field(ge=1, le=MAX_RUN_ID), BeforeValidator(whole_number(1, MAX_RUN_ID))]
Seconds = Annotated[
    float,
    Field(gt=0, le=MAX_SECONDS),
    BeforeValidator(number_in(0, MAX_SECONDS, low_open=True)),
]
"""A timeout or a duration: above 0, at most a week."""
MemoryFraction = Annotated[
    float, Field(gt=0, le=1), BeforeValidator(number_in(0, 1, low_open=True))
]
PercentLimit = Annotated[
    float, Field(ge=0, le=MAX_PERCENT), BeforeValidator(number_in(0, MAX_PERCENT))
]
