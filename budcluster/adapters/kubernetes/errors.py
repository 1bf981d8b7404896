"""The Kubernetes adapter's errors, and the translation of the client's exceptions into them.

* KubernetesError (BudClusterError)
  * KubernetesConfigError (PermanentError): the kubeconfig cannot produce a client
  * KubernetesUnavailable (TemporaryError): the API server could not be reached in time
    * KubernetesServerError: it answered 5xx or 429
  * KubernetesApiError (PermanentError): it refused the request (other 4xx)
    * KubernetesNotFound: 404
    * KubernetesConflict: 409
  * KubernetesTimeout (TemporaryError): a wait ran out of time before the condition held
"""

from __future__ import annotations

import json

import urllib3
from kubernetes.client.exceptions import ApiException

from budcluster.errors import BudClusterError, PermanentError, TemporaryError


class KubernetesError(BudClusterError):
    """Base class of this adapter's errors."""


class KubernetesConfigError(KubernetesError, PermanentError):
    """The kubeconfig cannot produce a client."""


class KubernetesUnavailable(KubernetesError, TemporaryError):
    """The API server could not be reached in time."""


class KubernetesApiError(KubernetesError, PermanentError):
    """The API server refused the request (4xx other than 404/409/410/429)."""

    def __init__(self, message: str, status: int | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class KubernetesNotFound(KubernetesApiError):
    """The object (or its namespace) does not exist."""


class KubernetesConflict(KubernetesApiError):
    """The object already exists, or changed under us."""


class KubernetesTimeout(KubernetesError, TemporaryError):
    """A wait ran out of time before the condition held."""


class KubernetesServerError(KubernetesUnavailable):
    """The API server answered 5xx or 429; retrying may help."""


def _status_message(exc: ApiException) -> str:
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body.startswith("{"):
        try:
            message = json.loads(body).get("message")
        except ValueError:
            message = None
        if message:
            return str(message)
    return str(exc.reason or exc.status)


def translate(exc: Exception, what: str) -> KubernetesError:
    """This adapter's error for a client exception, to be raised ``from exc``."""
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        message = f"{what}: {status} {_status_message(exc)}"
        if status == 404:
            return KubernetesNotFound(message, status, exc.reason)
        if status == 409:
            return KubernetesConflict(message, status, exc.reason)
        if status >= 500 or status in (0, 429):
            return KubernetesServerError(message)
        return KubernetesApiError(message, status, exc.reason)
    return KubernetesUnavailable(f"{what}: the API server did not answer: {exc}")


TRANSPORT_ERRORS = (ApiException, urllib3.exceptions.HTTPError, OSError)
