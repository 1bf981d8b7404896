"""Retrying an API call the server turned away (429, 502-504), as client-go does.

A 429 comes from API Priority and Fairness: the request was queued out and never ran, and
the answer's ``Retry-After`` says when to come back (client-go honours it on every verb). A
503/502/504 says the server (or a proxy in front of it) could not serve the request; it did
not run it either. So every verb is retried, waiting at least ``Retry-After`` and at least an
exponential backoff, until a deadline; a wait that would pass the deadline gives up at once
with a temporary error naming the call, the status and how long it was tried.

Creates cannot duplicate: every object this project creates has a fixed name, so a POST
whose first try did run answers 409 AlreadyExists on the retry, which ``apply_objects``
turns into the patch it would have made anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from kubernetes.client.exceptions import ApiException

from budcluster.adapters.kubernetes.errors import KubernetesServerError

_T = TypeVar("_T")

RETRY_STATUSES = frozenset({429, 502, 503, 504})
DEFAULT_RETRY_S = 60.0
"""How long one call keeps retrying a server that turns it away."""
FIRST_BACKOFF_S = 0.2
MAX_BACKOFF_S = 5.0
MAX_RETRY_AFTER_S = 60.0
"""Longest ``Retry-After`` taken at its word (a bigger one is still bounded by the deadline)."""
_REASONS = {
    429: "TooManyRequests",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


def retry_after_s(exc: ApiException) -> float | None:
    """The answer's ``Retry-After`` in seconds (delta-seconds form only), or None."""
    headers = exc.headers or {}
    value = next((v for k, v in headers.items() if str(k).lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        seconds = float(str(value).strip())
    except ValueError:
        return None  # an HTTP date: the API server never sends one; fall back to backoff
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def retryable(exc: BaseException) -> bool:
    return isinstance(exc, ApiException) and int(exc.status or 0) in RETRY_STATUSES


@dataclass
class RetryLog:
    """What one call went through: each retried status and the wait before the next try."""

    waits: list[tuple[int, float]] = field(default_factory=list)

    @property
    def retries(self) -> int:
        return len(self.waits)


def with_retries(
    call: Callable[[], _T],
    what: str,
    *,
    deadline_s: float = DEFAULT_RETRY_S,
    sleep: Callable[[float], None] = time.sleep,
    log: RetryLog | None = None,
) -> _T:
    """``call()``, tried again while it raises an ApiException of ``RETRY_STATUSES``.

    Waits ``max(Retry-After, backoff)`` between tries (backoff doubling from 0.2 s to 5 s).
    Raises KubernetesServerError naming ``what`` once the next wait would pass
    ``deadline_s`` from the first try; any other exception goes through untouched.
    """
    started = time.monotonic()
    backoff = FIRST_BACKOFF_S
    tries = 0
    while True:
        tries += 1
        try:
            return call()
        except ApiException as exc:
            if not retryable(exc):
                raise
            status = int(exc.status or 0)
            told = retry_after_s(exc)
            wait = max(told or 0.0, backoff)
            elapsed = time.monotonic() - started
            if elapsed + wait > deadline_s:
                hint = f" (Retry-After {told:g} s)" if told is not None else ""
                raise KubernetesServerError(
                    f"{what}: the API server answered {status} {_REASONS.get(status, '')}"
                    f"{hint} to all {tries} tries over {elapsed:.1f} s; it is overloaded or "
                    f"throttling this client: retry later (each call retries for up to "
                    f"{deadline_s:g} s)"
                ) from exc
            if log is not None:
                log.waits.append((status, wait))
            sleep(wait)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
