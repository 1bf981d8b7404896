"""The hosts target's errors.

* HostsTargetError (TargetError)
  * HostsConfigError (ConfigurationError): a name, the inventory or an input is unusable
  * HostsOperationFailed (PermanentError): a playbook task failed on a host
  * HostsUnavailable (TemporaryError): a host was unreachable or the playbook timed out
"""

from __future__ import annotations

from budcluster.errors import ConfigurationError, PermanentError, TemporaryError
from budcluster.targets.base import TargetError


class HostsTargetError(TargetError):
    """Base class of the hosts target's errors."""


class HostsConfigError(HostsTargetError, ConfigurationError):
    """A name, the inventory or an input is unusable; the message says which and how to fix it."""


class HostsOperationFailed(HostsTargetError, PermanentError):
    """A playbook task failed on a host (the message names the task, the host and why)."""


class HostsUnavailable(HostsTargetError, TemporaryError):
    """A host was unreachable or the playbook ran out of time; retrying may help."""
