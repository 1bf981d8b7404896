"""Polling helper for tests that wait on the emulator's simulated controllers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class NotYet(AssertionError):
    pass


def eventually(check: Callable[[], T | None], timeout: float = 8.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns a truthy value (returned) or raise after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.05)
    raise NotYet(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def raw_request(
    base_url: str,
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
    accept: str = "application/json",
    timeout: float = 10.0,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One plain HTTP call to the emulator: (status, decoded JSON or text); ``headers`` are
    sent besides Content-Type and Accept."""
    import json
    import urllib.error
    import urllib.request

    data = None
    if body is not None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    request = urllib.request.Request(
        base_url + path,
        data=data,
        method=method,
        headers={"Content-Type": content_type, "Accept": accept, **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text
