"""Building an ``ApiClient`` from an in-memory kubeconfig, and one API call with a deadline."""

from __future__ import annotations

import json
from typing import Any, cast
from weakref import WeakKeyDictionary

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from budcluster.adapters.kubernetes.errors import (
    TRANSPORT_ERRORS,
    KubernetesConfigError,
    translate,
)
from budcluster.adapters.kubernetes.retry import DEFAULT_RETRY_S, with_retries
from budcluster.kubeconfig import KubeconfigInvalid, check_kubeconfig
from budcluster.secretfiles import process_secret_dir

DEFAULT_TIMEOUT_S = 30.0
# Per client, like its timeout: set once where the client is handed to a target, read by
# every call through it. Weak keys: a closed client's entry goes with it.
_RETRY_DEADLINES: WeakKeyDictionary[k8s_client.ApiClient, float] = WeakKeyDictionary()


def set_retry_deadline(api_client: k8s_client.ApiClient, seconds: float) -> None:
    """Make every call through ``api_client`` retry a server that turns it away (429,
    502-504) for up to ``seconds`` (``DEFAULT_RETRY_S`` until set)."""
    if not seconds > 0:
        raise ValueError(f"a retry deadline is a positive number of seconds, got {seconds!r}")
    _RETRY_DEADLINES[api_client] = float(seconds)


def retry_deadline_s(api_client: k8s_client.ApiClient) -> float:
    """How long a call through ``api_client`` retries (see ``set_retry_deadline``)."""
    return _RETRY_DEADLINES.get(api_client, DEFAULT_RETRY_S)


def api_client_from_kubeconfig(
    config: dict[str, Any], context: str | None = None, *, timeout_s: float = 30.0
) -> k8s_client.ApiClient:
    """An ``ApiClient`` for ``context`` of an in-memory kubeconfig.

    The kubeconfig is checked again here, whoever built it: nothing in it may run a program
    or read a file on the worker (see ``budcluster.kubeconfig``). The client writes the
    decoded client key and certificates to files; they go to this process's private
    secrets directory, which a later run sweeps even after a ``kill -9``.
    """
    try:
        check_kubeconfig(config, context=context)
    except KubeconfigInvalid as exc:
        raise KubernetesConfigError(str(exc)) from exc
    try:
        api_client = cast(
            k8s_client.ApiClient,
            k8s_config.new_client_from_config_dict(  # type: ignore[no-untyped-call]
                config, context=context, temp_file_path=str(process_secret_dir())
            ),
        )
    except (ConfigException, KeyError, TypeError, ValueError) as exc:
        # The library's messages describe structure, not credentials, so chaining is safe.
        raise KubernetesConfigError(
            f"cannot build a Kubernetes client for context '{context}': {exc}"
        ) from exc
    # Every call made through this client gets a default deadline.
    api_client.configuration.retries = 1
    api_client.rest_client.pool_manager.connection_pool_kw["timeout"] = timeout_s
    return api_client


def request_json(
    api_client: k8s_client.ApiClient,
    method: str,
    path: str,
    *,
    what: str,
    query: list[tuple[str, str]] | None = None,
    body: Any = None,
    content_type: str = "application/json",
    timeout_s: float = DEFAULT_TIMEOUT_S,
    retry_s: float | None = None,
) -> Any:
    """One API call with a deadline; the decoded JSON answer (None when empty).

    A 429 or 502-504 is tried again for up to ``retry_s`` (None: the client's deadline,
    ``retry_deadline_s``), honouring ``Retry-After`` (see :mod:`.retry`); the error that
    ends it names ``what``, the verb and the path.
    """
    deadline_s = retry_deadline_s(api_client) if retry_s is None else retry_s
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type

    def once() -> Any:
        method_, url, header_params, serialized, _ = api_client.param_serialize(
            method,
            path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = api_client.call_api(
            method_, url, header_params, serialized, _request_timeout=timeout_s
        )
        data = response.read()  # type: ignore[no-untyped-call]
        if not 200 <= int(response.status) <= 299:
            raise ApiException(http_resp=response)
        return data

    try:
        data = with_retries(once, f"{what} ({method} {path})", deadline_s=deadline_s)
    except TRANSPORT_ERRORS as exc:
        raise translate(exc, what) from exc
    return json.loads(data) if data else None
