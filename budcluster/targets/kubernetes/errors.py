"""The Kubernetes target's errors.

::

    TargetError
    └── KubernetesTargetError            an operation failed; the cause holds the adapter's error
        ├── KubernetesTargetTemporary    (also TemporaryError) may succeed when retried
        ├── KubernetesTargetConfigError  (also ConfigurationError) an input is unusable
        └── KubernetesRuntimeFailed      the runtime's pods failed, with reason and log tail
"""

from __future__ import annotations

from collections.abc import Sequence

from budcluster.errors import BudClusterError, ConfigurationError, TemporaryError
from budcluster.targets.base import TargetError


class KubernetesTargetError(TargetError):
    """A Kubernetes target operation failed; the cause holds the adapter's error."""


class KubernetesTargetTemporary(KubernetesTargetError, TemporaryError):
    """The operation may succeed when retried (API server busy, wait ran out)."""


class KubernetesTargetConfigError(KubernetesTargetError, ConfigurationError):
    """An input is unusable; the message names it and the fix."""


class KubernetesRuntimeFailed(KubernetesTargetError):
    """The runtime's pods failed (CrashLoopBackOff, ImagePullBackOff, FailedScheduling, ...)."""

    def __init__(self, message: str, reason: str | None, log_tail: Sequence[str]) -> None:
        super().__init__(message)
        self.reason = reason
        self.log_tail = list(log_tail)


def wrap(exc: BudClusterError, what: str) -> KubernetesTargetError:
    """The adapter's ``exc`` as this target's error, temporary when ``exc`` is."""
    if isinstance(exc, TemporaryError):
        return KubernetesTargetTemporary(f"{what}: {exc}")
    return KubernetesTargetError(f"{what}: {exc}")
