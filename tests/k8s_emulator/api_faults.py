"""API fault switch: make the next N requests matching a verb and a path answer 429 or 503
(or 504 after running them), as the real API server does under load.

A 429 is what API Priority and Fairness answers when a request's priority level has no seat
and its queue is full: the request never ran, the body is a ``TooManyRequests`` Status with
``details.retryAfterSeconds`` and the response carries a ``Retry-After`` header (APF always
says 1 s). A 503 is what the server answers when it cannot serve at all (storage
unavailable, shutting down): a ``ServiceUnavailable`` Status, with ``Retry-After`` only when
the server knows when to come back. Either way nothing was written, so the switch answers
before the request reaches the store.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any

API_FAULT_STATUSES = (429, 503, 504)
VERBS = ("GET", "POST", "PUT", "PATCH", "DELETE", "*")
_ids = itertools.count(1)


@dataclass
class ApiFault:
    """Answer the next ``count`` requests whose method is ``verb`` (``*``: any) and whose
    path matches the regular expression ``path`` (``re.fullmatch`` on the URL path, no
    query) with ``status``. ``retry_after_s`` becomes the ``Retry-After`` header; ``None``
    sends none (a plain 503)."""

    verb: str
    path: str
    status: int = 429
    count: int = 1
    retry_after_s: int | None = 1
    watch: bool | None = None
    """True: only watch requests; False: never a watch; None: either."""
    run_first: bool = False
    """Serve the request, then answer ``status`` instead of its result: the real server's
    504 when its handler outlives the request timeout (the write may still commit), the
    outcome a client cannot know. Only with 503 or 504; APF's 429 never runs a request."""
    id: int = field(default_factory=lambda: next(_ids))
    answered: int = 0
    _pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.verb = self.verb.upper()
        if self.verb not in VERBS:
            raise ValueError(f"verb must be one of {VERBS}, got {self.verb!r}")
        if self.status not in API_FAULT_STATUSES:
            raise ValueError(f"status must be one of {API_FAULT_STATUSES}, got {self.status!r}")
        if not isinstance(self.count, int) or self.count < 1:
            raise ValueError(f"count must be a positive integer, got {self.count!r}")
        if self.retry_after_s is not None and (
            not isinstance(self.retry_after_s, int) or self.retry_after_s < 0
        ):
            raise ValueError("retry_after_s must be a whole number of seconds or null")
        if self.run_first and self.status == 429:
            raise ValueError("run_first: a 429 from API Priority and Fairness never ran")
        try:
            self._pattern = re.compile(self.path)
        except re.error as exc:
            raise ValueError(f"path is not a regular expression: {exc}") from exc

    def matches(self, method: str, path: str, watch: bool) -> bool:
        if self.answered >= self.count:
            return False
        if self.verb != "*" and self.verb != method.upper():
            return False
        if self.watch is not None and self.watch != watch:
            return False
        return self._pattern.fullmatch(path) is not None

    def status_body(self) -> dict[str, Any]:
        """The Status the real server sends with this code (apimachinery's wording)."""
        if self.status == 429:
            reason, message = "TooManyRequests", "Too many requests, please try again later."
        elif self.status == 504:
            reason = "Timeout"
            message = "Timeout: request did not complete within the allotted timeout"
        else:
            reason, message = (
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            )
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": self.status,
        }
        if self.retry_after_s is not None:
            body["details"] = {"retryAfterSeconds": self.retry_after_s}
        return body

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "verb": self.verb,
            "path": self.path,
            "status": self.status,
            "count": self.count,
            "retry_after_s": self.retry_after_s,
            "watch": self.watch,
            "run_first": self.run_first,
            "answered": self.answered,
        }


@dataclass(frozen=True)
class FaultedRequest:
    """One request the switch answered instead of the server."""

    fault_id: int
    method: str
    path: str
    status: int
    at: float  # time.monotonic()


@dataclass
class ApiFaultBook:
    faults: list[ApiFault] = field(default_factory=list)
    log: list[FaultedRequest] = field(default_factory=list)

    def add(self, fault: ApiFault) -> ApiFault:
        self.faults.append(fault)
        return fault

    def remove(self, fault_id: int | None = None) -> None:
        self.faults = [] if fault_id is None else [f for f in self.faults if f.id != fault_id]

    def take(self, method: str, path: str, watch: bool) -> ApiFault | None:
        """The first armed fault for this request, counted as answered; None to serve it."""
        for fault in self.faults:
            if fault.matches(method, path, watch):
                fault.answered += 1
                self.log.append(
                    FaultedRequest(fault.id, method.upper(), path, fault.status, time.monotonic())
                )
                return fault
        return None
