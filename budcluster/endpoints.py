"""Checking that an OpenAI-compatible endpoint really serves a model.

"Healthy" means three things, in order: ``/health`` answers 200, ``/v1/models`` lists
the served model name, and a real completion returns at least one token. A process
that is up but cannot generate is not ready.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from budcluster.errors import PermanentError, TemporaryError


class EndpointNotReady(TemporaryError):
    """The endpoint did not pass the checks in time."""


class EndpointWrongModel(PermanentError):
    """The endpoint serves, but not the model that was asked for."""


@dataclass(frozen=True)
class EndpointCheck:
    base_url: str
    served_models: list[str]
    completion_tokens: int
    completion_text: str
    seconds_waited: float


def _request(url: str, body: dict[str, Any] | None, timeout_s: float) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        headers={"Content-Type": "application/json"},
        method="POST" if data else "GET",
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        raw = response.read()
        return int(response.status), json.loads(raw) if raw.strip().startswith(
            (b"{", b"[")
        ) else raw


def check_once(base_url: str, served_model_name: str, *, timeout_s: float = 30.0) -> EndpointCheck:
    """One pass of the three checks; raises EndpointNotReady or EndpointWrongModel."""
    base = base_url.rstrip("/")
    started = time.monotonic()
    try:
        status, _ = _request(f"{base}/health", None, timeout_s)
        if status != 200:
            raise EndpointNotReady(f"{base}/health answered {status}")
        _, models = _request(f"{base}/v1/models", None, timeout_s)
        served = [str(m.get("id")) for m in (models or {}).get("data", [])]
        if served_model_name not in served:
            raise EndpointWrongModel(
                f"{base} serves {served or 'no models'}, not {served_model_name!r}; "
                "check the served model name in the plan"
            )
        _, completion = _request(
            f"{base}/v1/completions",
            {"model": served_model_name, "prompt": "Hello", "max_tokens": 8, "temperature": 0},
            timeout_s,
        )
    except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError) as exc:
        raise EndpointNotReady(f"{base} is not ready: {exc}") from exc
    choices = (completion or {}).get("choices") or [{}]
    text = str(choices[0].get("text", ""))
    usage = (completion or {}).get("usage") or {}
    tokens = int(usage.get("completion_tokens") or 0)
    if tokens < 1 and not text:
        raise EndpointNotReady(f"{base} answered a completion with no tokens: {completion!r:.200}")
    return EndpointCheck(base, served, tokens, text, time.monotonic() - started)


def wait_until_ready(
    base_url: str,
    served_model_name: str,
    *,
    timeout_s: float,
    interval_s: float = 1.0,
    still_alive: Callable[[], None] | None = None,
) -> EndpointCheck:
    """Poll :func:`check_once` until it passes or ``timeout_s`` runs out.

    ``still_alive`` is an optional callable that raises when the runtime has died, so a
    crashed process fails fast instead of after the whole timeout.
    """
    started = time.monotonic()
    last_error: Exception | None = None
    while time.monotonic() - started < timeout_s:
        try:
            check = check_once(base_url, served_model_name, timeout_s=min(30.0, timeout_s))
            return EndpointCheck(
                check.base_url,
                check.served_models,
                check.completion_tokens,
                check.completion_text,
                time.monotonic() - started,
            )
        except EndpointNotReady as exc:
            last_error = exc
        if still_alive is not None:
            still_alive()
        time.sleep(interval_s)
    raise EndpointNotReady(
        f"{base_url} was not ready after {timeout_s:.0f} s (last error: {last_error})"
    ) from last_error
