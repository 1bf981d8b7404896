"""Running a kubeconfig's exec credential plugin (``aws eks get-token``, ``kubelogin
get-token``) for a client outside the kubernetes library: the benchmark client, which
reaches endpoints through the API server's service proxy.

It follows client-go's exec authenticator: an ``ExecCredential`` of the kubeconfig's
``apiVersion`` in ``KUBERNETES_EXEC_INFO`` (``spec.interactive`` false, ``spec.cluster``
when ``provideClusterInfo`` asks for it), the kubeconfig entry's ``env`` on top of the
worker's environment, stdout read as an ``ExecCredential`` whose ``status`` holds a
``token`` (or ``clientCertificateData`` + ``clientKeyData``) and an optional
``expirationTimestamp``. Differences, on purpose:

* The kubernetes client's ``ExecProvider`` is not reused: it waits for the plugin without
  a timeout and hands it the worker's whole environment. Here the plugin gets a deadline
  and, from the worker, only ``PATH``, ``HOME``, locale, TLS and proxy settings and the
  credential variables ``budcluster.kubeconfig.SAFE_EXEC_ENV`` names (as Terraform's
  children do), then the kubeconfig's own ``env`` (already limited to those names).
* Its stdin is ``/dev/null``: a worker has no terminal, so, as ``ExecProvider`` does when
  stdout is not a TTY, the plugin is told it is not interactive; ``interactiveMode:
  Always`` (a plugin that needs a person) is refused, as client-go refuses it then.
* The plugin is checked against ``BUDCLUSTER_KUBECONFIG_EXEC_ALLOW`` again right before
  each run, whoever built the spec: nothing that is not allowed is ever started.
* Error messages never include the plugin's stdout (it holds the credential), only the
  end of its stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from budcluster.bench.access import CredentialUnavailable, IssuedCredential
from budcluster.child_env import BASE_CHILD_ENVIRONMENT, allowlisted
from budcluster.errors import PermanentError, TemporaryError
from budcluster.kubeconfig import (
    SAFE_EXEC_ENV,
    ExecPluginSpec,
    KubeconfigInvalid,
    check_exec_plugin,
)

DEFAULT_TIMEOUT_S = 30.0
"""``aws eks get-token`` answers in about a second; kubelogin's service-principal login
makes one call to Entra ID."""
_STDERR_TAIL = 400


class ExecPluginError(CredentialUnavailable):
    """Base class of this adapter's errors."""


class ExecPluginFailed(ExecPluginError, PermanentError):
    """The plugin is not allowed, missing, exited non-zero or printed no valid credential."""


class ExecPluginTimeout(ExecPluginError, TemporaryError):
    """The plugin did not answer within its deadline."""


@dataclass(frozen=True)
class ExecCredentialPlugin:
    """A kubeconfig user's exec plugin, ready to run; plain data, so it pickles into the
    benchmark's worker processes, where each runs it on its own."""

    spec: ExecPluginSpec
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def via(self) -> str:
        return f"the exec plugin '{self.spec.command}' ({self.spec.where})"

    def issue(self) -> IssuedCredential:
        """Run the plugin once and return what it issued."""
        spec = self.spec
        try:
            check_exec_plugin(spec)
        except KubeconfigInvalid as exc:
            raise ExecPluginFailed(str(exc)) from exc
        if spec.interactive_mode == "Always":
            raise ExecPluginFailed(
                f"{spec.where}.interactiveMode: 'Always' needs a terminal and the worker has "
                "none; set it to 'IfAvailable' or 'Never' if the plugin can log in without one."
            )
        try:
            done = subprocess.run(
                [spec.command, *spec.args],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                env=self._environment(),
                timeout=self.timeout_s,
                text=True,
                check=False,
            )
        except FileNotFoundError as exc:
            raise ExecPluginFailed(
                f"{spec.where}.command: '{spec.command}' is not on the worker's PATH; install "
                "it on the worker (or the image its jobs run in)."
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise ExecPluginTimeout(
                f"{self.via} did not answer within {self.timeout_s:.0f} s."
            ) from exc
        except OSError as exc:
            raise ExecPluginFailed(f"{self.via} could not start: {exc.strerror}") from exc
        if done.returncode != 0:
            tail = done.stderr.strip()[-_STDERR_TAIL:]
            raise ExecPluginFailed(
                f"{self.via} exited with status {done.returncode}" + (f": {tail}" if tail else ".")
            )
        return self._parse(done.stdout)

    def _environment(self) -> dict[str, str]:
        env = allowlisted((*BASE_CHILD_ENVIRONMENT, *sorted(SAFE_EXEC_ENV)), os.environ)
        env.update(self.spec.env)
        info: dict[str, Any] = {
            "apiVersion": self.spec.api_version,
            "kind": "ExecCredential",
            "spec": {"interactive": False},
        }
        if self.spec.cluster_info is not None:
            info["spec"]["cluster"] = dict(self.spec.cluster_info)
        env["KUBERNETES_EXEC_INFO"] = json.dumps(info)
        return env

    def _parse(self, stdout: str) -> IssuedCredential:
        # Never quote stdout: it is the credential.
        try:
            data = json.loads(stdout)
        except ValueError:
            data = None
        if not isinstance(data, dict) or data.get("kind") != "ExecCredential":
            raise ExecPluginFailed(f"{self.via} did not print an ExecCredential as JSON.")
        if data.get("apiVersion") != self.spec.api_version:
            raise ExecPluginFailed(
                f"{self.via} answered with apiVersion {str(data.get('apiVersion'))[:80]!r}, "
                f"not the kubeconfig's {self.spec.api_version!r}; set {self.spec.where}"
                ".apiVersion to the version the plugin speaks."
            )
        status = data.get("status")
        if not isinstance(status, dict):
            raise ExecPluginFailed(f"{self.via} printed an ExecCredential without a status.")
        token = status.get("token")
        cert, key = status.get("clientCertificateData"), status.get("clientKeyData")
        if token is not None and (not isinstance(token, str) or not token):
            raise ExecPluginFailed(f"{self.via}: status.token is not a non-empty string.")
        pem = [v for v in (cert, key) if isinstance(v, str) and "-----BEGIN " in v]
        if (cert is not None or key is not None) and len(pem) != 2:
            raise ExecPluginFailed(
                f"{self.via}: status.clientCertificateData and clientKeyData must both be PEM text."
            )
        if not token and not pem:
            raise ExecPluginFailed(
                f"{self.via} issued neither status.token nor clientCertificateData/clientKeyData."
            )
        return IssuedCredential(
            token=token or None,
            client_cert_pem=cert if pem else None,
            client_key_pem=key if pem else None,
            expires_at=self._expiry(status.get("expirationTimestamp")),
        )

    def _expiry(self, value: object) -> float | None:
        if value is None:
            return None
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise ExecPluginFailed(
                f"{self.via}: status.expirationTimestamp is not an RFC 3339 time with a zone."
            )
        return moment.timestamp()
