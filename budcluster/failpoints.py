"""Named points where a fault test can stop a run on purpose.

``BUDCLUSTER_FAILPOINTS`` holds ``NAME=ACTION`` pairs separated by commas; ACTION is
``pause`` (sleep, up to 3600 s; give ``pause:SECONDS`` for less) or ``fail`` (raise
:class:`FailpointTriggered`). Unset, a failpoint costs one dictionary lookup. The value is
parsed, never evaluated: an unknown name or action is refused with the fix.

The fault suite (tests/faults) sets it for one flow run to hold the run at a known step,
for instance right after the runtime started, and then kills the worker there.
"""

from __future__ import annotations

import os
import time

from budcluster.errors import ConfigurationError, PermanentError

__all__ = ["FAILPOINTS", "FailpointTriggered", "failpoint", "parse_failpoints"]

ENV = "BUDCLUSTER_FAILPOINTS"
FAILPOINTS = frozenset({"after-roll-out"})
_MAX_PAUSE_S = 3600.0


class FailpointTriggered(PermanentError):
    """A ``fail`` failpoint was reached."""


def parse_failpoints(text: str | None) -> dict[str, tuple[str, float]]:
    """``after-roll-out=pause:30`` into {name: (action, seconds)}."""
    points: dict[str, tuple[str, float]] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, _, action = (part.strip() for part in item.partition("="))
        verb, _, seconds = action.partition(":")
        try:
            pause = float(seconds) if seconds else _MAX_PAUSE_S
        except ValueError:
            pause = -1.0
        if (
            name not in FAILPOINTS
            or verb not in ("pause", "fail")
            or not 0 <= pause <= _MAX_PAUSE_S
        ):
            raise ConfigurationError(
                f"{ENV}: cannot use {item.strip()!r}; give NAME=pause[:SECONDS] or NAME=fail "
                f"with NAME one of {', '.join(sorted(FAILPOINTS))} and SECONDS at most "
                f"{_MAX_PAUSE_S:g}, or unset {ENV}"
            )
        points[name] = (verb, pause)
    return points


def failpoint(name: str) -> None:
    """Pause or fail here when ``BUDCLUSTER_FAILPOINTS`` names this point."""
    if name not in FAILPOINTS:
        raise ValueError(f"unknown failpoint {name!r}")
    configured = os.environ.get(ENV)
    if not configured:
        return
    action = parse_failpoints(configured).get(name)
    if action is None:
        return
    verb, seconds = action
    if verb == "fail":
        raise FailpointTriggered(f"failpoint {name} reached ({ENV})")
    time.sleep(seconds)
