"""The root of the project's exception tree.

Like kopf, errors say whether retrying can help: a :class:`TemporaryError` may
succeed on a later attempt (a timeout, a 503), a :class:`PermanentError` never
will (bad input, a missing key). Prefect tasks use this to decide on retries.
Each adapter derives its own errors from these and chains the original cause.
"""

from __future__ import annotations


class BudClusterError(Exception):
    """Base class of every error this project raises on purpose."""


class PermanentError(BudClusterError):
    """Retrying will not help: the input, the configuration or the state is wrong."""


class TemporaryError(BudClusterError):
    """The operation may succeed if retried later."""


class ConfigurationError(PermanentError):
    """A setting or an input file is invalid. The message names the field and the fix."""
