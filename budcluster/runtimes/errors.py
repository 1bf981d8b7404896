"""Errors raised while building or installing a runtime."""

from __future__ import annotations

from budcluster.errors import PermanentError, TemporaryError


class RuntimeBuildError(PermanentError):
    """A build or install step failed; the message carries the tail of its log."""


class RuntimeBuildTimeout(TemporaryError):
    """A build step, or the wait for another process's build lock, ran out of time."""
