"""The endpoint checks of a runtime or a gateway, sent through the API server's service proxy.

This module does network I/O: every check is a request through the Kubernetes adapter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes import client as k8s_client

from budcluster.adapters import kubernetes as kube
from budcluster.endpoints import EndpointNotReady, EndpointWrongModel
from budcluster.errors import TemporaryError
from budcluster.gateway import (
    MASTER_KEY_HEADER,
    GatewayCheck,
    GatewayRoute,
    listed_models,
    missing_routes,
)
from budcluster.targets.kubernetes.errors import KubernetesTargetError, wrap


class ServiceProbe:
    """The three endpoint checks, sent through the API server's proxy to one Service port."""

    def __init__(self, api: k8s_client.ApiClient, namespace: str, service: str, port: str) -> None:
        self._api = api
        self._namespace = namespace
        self._service = service
        self._port = port
        host = str(api.configuration.host).rstrip("/")
        self.base_url = host + kube.service_proxy_path(namespace, service, port).rstrip("/")

    def _call(
        self,
        method: str,
        path: str,
        timeout_s: float,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> kube.ProxyResponse:
        try:
            answer = kube.service_proxy(
                self._api,
                self._namespace,
                self._service,
                self._port,
                path,
                method=method,
                body=body,
                headers=headers,
                timeout_s=timeout_s,
            )
        except kube.KubernetesError as exc:
            if isinstance(exc, TemporaryError):
                raise EndpointNotReady(f"{method} {path}: {exc}") from exc
            raise wrap(exc, f"{method} {path} through the service proxy") from exc
        refused = answer.api_status()
        if refused is not None and answer.status in (401, 403):
            # The API server's own refusal: no retry helps without RBAC on services/proxy.
            raise KubernetesTargetError(
                f"the API server refused {method} {path} through the service proxy "
                f"({answer.status}: {answer.excerpt()}); the kubeconfig's user needs "
                f"get and create on services/proxy in namespace {self._namespace}"
            )
        return answer

    def check(self, served_model_name: str, timeout_s: float) -> tuple[list[str], int, str]:
        """(served names, completion tokens, completion text); raises when a check fails."""
        where = f"{self._namespace}/{self._service}:{self._port}"
        health = self._call("GET", "health", timeout_s)
        if health.status != 200:
            raise EndpointNotReady(f"{where} /health answered {health.status}: {health.excerpt()}")
        models = self._call("GET", "v1/models", timeout_s)
        listing = models.json() if models.status == 200 else None
        if not isinstance(listing, dict):
            raise EndpointNotReady(
                f"{where} /v1/models answered {models.status}: {models.excerpt()}"
            )
        served = [str(m.get("id")) for m in listing.get("data") or [] if isinstance(m, dict)]
        if served_model_name not in served:
            raise EndpointWrongModel(
                f"{where} serves {served or 'no models'}, not {served_model_name!r}; check "
                "--served-model-name (vLLM) or --alias (llama.cpp) in the plan"
            )
        completion = self._call(
            "POST",
            "v1/completions",
            timeout_s,
            {"model": served_model_name, "prompt": "Hello", "max_tokens": 8},
        )
        answer = completion.json() if completion.status == 200 else None
        if not isinstance(answer, dict):
            raise EndpointNotReady(
                f"{where} /v1/completions answered {completion.status}: {completion.excerpt()}"
            )
        choices = answer.get("choices") or [{}]
        text = str((choices[0] or {}).get("text", ""))
        tokens = int((answer.get("usage") or {}).get("completion_tokens") or 0)
        if tokens < 1 and not text:
            raise EndpointNotReady(f"{where} answered a completion with no tokens: {answer!r:.200}")
        return served, tokens, text

    def gateway_check(
        self, routes: Sequence[GatewayRoute], master_key: str | None, timeout_s: float
    ) -> GatewayCheck:
        """One pass of the gateway checks; raises EndpointNotReady when one fails. With
        ``master_key``, a request without it must be refused before the routes are called
        with it; no message carries the key."""
        where = f"{self._namespace}/{self._service}:{self._port}"

        def shown(answer: kube.ProxyResponse) -> str:
            text = answer.excerpt()
            return text.replace(master_key, "***") if master_key else text

        alive = self._call("GET", "health/liveliness", timeout_s)
        if alive.status != 200:
            raise EndpointNotReady(
                f"{where} /health/liveliness answered {alive.status}: {shown(alive)}"
            )
        models = self._call("GET", "v1/models", timeout_s)
        keyed: dict[str, str] = {}
        if master_key is not None:
            if models.status != 401:
                raise EndpointNotReady(
                    f"{where} /v1/models answered {models.status} without a key, not 401: the "
                    f"proxy does not enforce the master key (yet); {shown(models)}"
                )
            keyed = {MASTER_KEY_HEADER: f"Bearer {master_key}"}
            models = self._call("GET", "v1/models", timeout_s, headers=keyed)
            if models.status in (400, 401, 403):
                raise KubernetesTargetError(
                    f"{where} refused the master key from its Secret ({models.status}: "
                    f"{shown(models)}): the proxy read another key when it started; restart "
                    f"it (kubectl -n {self._namespace} rollout restart deployment/"
                    f"{self._service}) so it reads the Secret again"
                )
        elif models.status == 401:
            raise KubernetesTargetError(
                f"{where} asks for a key, but no master key Secret was given; name it in "
                "master_key_secret"
            )
        listing = models.json() if models.status == 200 else None
        if not isinstance(listing, dict):
            raise EndpointNotReady(f"{where} /v1/models answered {models.status}: {shown(models)}")
        missing = missing_routes(listing, routes)
        if missing:
            raise EndpointNotReady(
                f"{where} /v1/models lists {listed_models(listing)}, not {missing}"
            )
        tokens: dict[str, int] = {}
        for name in sorted({r.model_name for r in routes}):
            answer = self._call(
                "POST",
                "v1/completions",
                timeout_s,
                {"model": name, "prompt": "Hello", "max_tokens": 1},
                headers=keyed,
            )
            body = answer.json() if answer.status == 200 else None
            if not isinstance(body, dict) or not body.get("choices"):
                raise EndpointNotReady(
                    f"{where} could not complete with {name!r}: {answer.status} {shown(answer)}"
                )
            tokens[name] = int((body.get("usage") or {}).get("completion_tokens") or 0)
        return GatewayCheck(
            self.base_url, listed_models(listing), tokens, key_enforced=master_key is not None
        )
