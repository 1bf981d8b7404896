"""Endpoint and gateway verification for the ``kubernetes`` target.

This module does I/O: it waits for the release through the target, reads the Service (and
the gateway's master key Secret) through the Kubernetes adapter, and sends the checks
through the API server's service proxy (:mod:`.probe`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

from kubernetes import client as k8s_client

from budcluster.adapters import kubernetes as kube
from budcluster.endpoints import EndpointCheck, EndpointNotReady
from budcluster.gateway import MASTER_KEY_SECRET_KEY, GatewayCheck, GatewayRoute
from budcluster.targets.base import RuntimeStatus
from budcluster.targets.kubernetes.errors import (
    KubernetesTargetError,
    KubernetesTargetTemporary,
    wrap,
)
from budcluster.targets.kubernetes.probe import ServiceProbe
from budcluster.targets.kubernetes.status import raise_unless_serving
from budcluster.targets.kubernetes.timeouts import KubernetesTimeouts


class ReleaseWatch(Protocol):
    """What verification needs from the target: the state of a deployment or a release,
    now and once it has settled (``KubernetesTarget`` is one)."""

    def status(self, deployment_name: str) -> RuntimeStatus: ...

    def wait_until_settled(
        self, deployment_name: str, timeout_s: float | None = None
    ) -> RuntimeStatus: ...

    def release_status(self, namespace: str, release: str) -> RuntimeStatus: ...

    def wait_for_release(
        self, namespace: str, release: str, timeout_s: float | None = None, *, what: str = ""
    ) -> RuntimeStatus: ...


class EndpointVerifier:
    """Proves that a runtime or a gateway serves, through its Service."""

    def __init__(
        self,
        api_client: k8s_client.ApiClient,
        releases: ReleaseWatch,
        *,
        timeouts: KubernetesTimeouts,
    ) -> None:
        self._api = api_client
        self._releases = releases
        self._timeouts = timeouts

    def verify_endpoint(
        self, deployment_name: str, served_model_name: str, timeout_s: float
    ) -> EndpointCheck:
        """Wait until the rollout is complete, then prove the Service serves the model.

        The checks go through the API server's service proxy with this target's client and
        credentials (``services/<release>:<port>/proxy/...``), so they need no network path
        from here to the pods: ``/health`` answers 200, ``/v1/models`` lists
        ``served_model_name``, and a completion of 8 tokens returns tokens. A Service that
        does not answer yet is asked again every ``endpoint_poll_s`` until ``timeout_s``.

        Raises KubernetesRuntimeFailed (reason and log tail) when the pods fail, before or
        during the checks; EndpointWrongModel when another name is served; EndpointNotReady
        when time runs out.
        """
        started = time.monotonic()
        deadline = started + timeout_s
        try:
            settled = self._releases.wait_until_settled(deployment_name, timeout_s)
        except KubernetesTargetTemporary as exc:
            raise EndpointNotReady(
                f"{deployment_name} did not become ready within {timeout_s:.0f} s: {exc}"
            ) from exc
        raise_unless_serving(deployment_name, settled)
        namespace, release = settled.detail["namespace"], settled.detail["release"]
        try:
            port = self._service_port(namespace, release)
        except kube.KubernetesError as exc:
            raise wrap(exc, f"find the Service of {deployment_name}") from exc
        probe = ServiceProbe(self._api, namespace, release, port)
        while True:
            left = deadline - time.monotonic()
            try:
                served, tokens, text = probe.check(
                    served_model_name, max(1.0, min(self._timeouts.api_s, left))
                )
            except EndpointNotReady as exc:
                if left <= 0:
                    raise EndpointNotReady(
                        f"{deployment_name} did not serve through its Service within "
                        f"{timeout_s:.0f} s: {exc}"
                    ) from exc
            else:
                return EndpointCheck(
                    base_url=probe.base_url,
                    served_models=served,
                    completion_tokens=tokens,
                    completion_text=text,
                    seconds_waited=time.monotonic() - started,
                )
            # A runtime that dies while the checks wait fails now, with its reason.
            raise_unless_serving(
                deployment_name, self._releases.status(deployment_name), starting=True
            )
            time.sleep(max(0.0, min(self._timeouts.endpoint_poll_s, deadline - time.monotonic())))

    def verify_gateway(
        self,
        namespace: str,
        release: str,
        routes: Sequence[GatewayRoute],
        timeout_s: float,
        *,
        master_key_secret: str | None = None,
    ) -> GatewayCheck:
        """Wait until the gateway's rollout is complete, then prove it routes through its
        Service (the API server's service proxy, as ``verify_endpoint``):
        ``/health/liveliness`` answers 200, ``/v1/models`` lists every routed model, and a
        one-token completion of each routed model returns, so every ``api_base`` reaches
        its runtime.

        With ``master_key_secret`` (a Secret in ``namespace``, key ``master-key``, as the
        chart reads it) the key is read from the Secret once the rollout is done;
        ``/v1/models`` must first refuse a request without it (401, ``key_enforced``), then
        the routes are called with it in ``x-litellm-api-key`` (the API server's proxy
        consumes ``Authorization``). The key is never logged nor returned, and error
        messages never contain it. Raises KubernetesRuntimeFailed when the gateway's pods
        fail (a missing Secret is their CreateContainerConfigError); KubernetesTargetError
        when the key is refused; EndpointNotReady when the checks do not pass within
        ``timeout_s``.
        """
        started = time.monotonic()
        deadline = started + timeout_s
        what = f"gateway {release} in {namespace}"
        try:
            settled = self._releases.wait_for_release(namespace, release, timeout_s, what=what)
        except KubernetesTargetTemporary as exc:
            raise EndpointNotReady(
                f"{what} did not become ready within {timeout_s:.0f} s: {exc}"
            ) from exc
        raise_unless_serving(what, settled)
        try:
            port = self._service_port(namespace, release)
        except kube.KubernetesError as exc:
            raise wrap(exc, f"find the Service of {what}") from exc
        key = self._gateway_key(namespace, master_key_secret, what) if master_key_secret else None
        probe = ServiceProbe(self._api, namespace, release, port)
        while True:
            left = deadline - time.monotonic()
            try:
                check = probe.gateway_check(routes, key, max(1.0, min(self._timeouts.api_s, left)))
            except EndpointNotReady as exc:
                if left <= 0:
                    raise EndpointNotReady(
                        f"{what} did not route through its Service within {timeout_s:.0f} s: {exc}"
                    ) from exc
            else:
                return replace(check, seconds_waited=time.monotonic() - started)
            raise_unless_serving(
                what, self._releases.release_status(namespace, release), starting=True
            )
            time.sleep(max(0.0, min(self._timeouts.endpoint_poll_s, deadline - time.monotonic())))

    def _gateway_key(self, namespace: str, secret: str, what: str) -> str:
        try:
            return kube.secret_value(
                self._api, namespace, secret, MASTER_KEY_SECRET_KEY, timeout_s=self._timeouts.api_s
            )
        except kube.KubernetesError as exc:
            raise wrap(
                exc,
                f"read the master key of {what} (the kubeconfig's user needs get on secrets "
                f"in {namespace})",
            ) from exc

    def _service_port(self, namespace: str, release: str) -> str:
        """The release's Service port to proxy to: its name, else its number."""
        service = kube.get_object(
            self._api, kube.ObjectRef("Service", release, namespace), timeout_s=self._timeouts.api_s
        )
        ports = ((service or {}).get("spec") or {}).get("ports") or []
        if not ports:
            raise KubernetesTargetError(
                f"release {release} has no Service with a port in {namespace}; "
                "roll it out again (the bud_runtime_container chart creates one)"
            )
        return str(ports[0].get("name") or ports[0]["port"])
