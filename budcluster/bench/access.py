"""How the benchmark client reaches an endpoint it cannot dial itself. Pure apart from
building an SSL context.

A Kubernetes endpoint is recorded as its in-cluster URL (``http://rt-x.ns.svc:8000``),
which a worker outside the cluster cannot resolve. :class:`EndpointAccess` says where the
requests go instead (the API server's service proxy for that Service), with which headers
(the kubeconfig user's credentials) and which TLS settings (its CA, its client
certificate). It is plain data, so it crosses to the load generator's worker processes;
each process builds its own SSL context from it. ``repr`` never shows a secret, and the
run records only :attr:`EndpointAccess.via`.

A kubeconfig whose user is an exec plugin (``aws eks get-token``) gives short-lived tokens
(15 minutes for EKS). The access then carries the plugin (a :class:`CredentialPlugin`,
plain data too) and the credential it issued when the access was built; each process's
client keeps a :class:`RenewingBearer` that runs the plugin again shortly before the token
expires.
"""

from __future__ import annotations

import asyncio
import math
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from budcluster.errors import BudClusterError, ConfigurationError
from budcluster.secretfiles import temporary_secret_file

RENEW_BEFORE_S = 60.0
"""A token is renewed this long before it expires (or half its lifetime, if shorter)."""
_EXPIRY_MARGIN_S = 2.0
"""Within this of its expiry a token is no longer sent: the request waits for the new one
(clocks differ, and the request still has to reach the API server)."""


class CredentialUnavailable(BudClusterError):
    """A credential plugin could not issue a credential; the message names the plugin's
    field and why, never a credential."""


@dataclass(frozen=True, slots=True)
class IssuedCredential:
    """What a credential plugin returned: a bearer token or a client certificate and key,
    and when it expires (seconds since the epoch; None: it does not)."""

    token: str | None = field(default=None, repr=False)
    client_cert_pem: str | None = field(default=None, repr=False)
    client_key_pem: str | None = field(default=None, repr=False)
    expires_at: float | None = None


class CredentialPlugin(Protocol):
    """Issues credentials on demand (``budcluster.adapters.exec_credential`` runs a
    kubeconfig's exec plugin). It must pickle: it travels to the worker processes."""

    @property
    def via(self) -> str:
        """Which plugin this is (its field in the kubeconfig), for messages."""
        ...

    def issue(self) -> IssuedCredential:
        """A fresh credential; raises :class:`CredentialUnavailable`. Blocking."""
        ...


@dataclass(frozen=True, slots=True)
class EndpointAccess:
    base_url: str
    """Where requests go: the endpoint's ``/v1/...`` paths are appended to it."""
    via: str
    """How the endpoint is reached, for the report: no secret in it."""
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    """Sent with every request (a name may repeat)."""
    ca_pem: str | None = field(default=None, repr=False)
    client_cert_pem: str | None = field(default=None, repr=False)
    client_key_pem: str | None = field(default=None, repr=False)
    verify_tls: bool = True
    tls_server_name: str | None = None
    forwards_authorization: bool = False
    """False when the hop in between consumes ``Authorization`` (the API server does), so
    an endpoint API key cannot travel in it."""
    credential_plugin: CredentialPlugin | None = field(default=None, repr=False)
    """Issues the bearer token (an exec plugin); ``issued`` is its first credential."""
    issued: IssuedCredential | None = field(default=None, repr=False)

    def renewing_bearer(self) -> RenewingBearer | None:
        """A per-process renewer of the plugin's bearer token; None without one."""
        if self.credential_plugin is None or self.issued is None or not self.issued.token:
            return None
        return RenewingBearer(self.credential_plugin, self.issued)

    def check_lasts(self, bound_s: float | None) -> None:
        """Refuse a run that would outlive a credential nothing renews in the middle of it:
        a client certificate issued by the plugin (it is loaded into each process's SSL
        context once). ``bound_s``: the run's longest time, None when only a request count
        bounds it (then nothing can be checked up front)."""
        issued = self.issued
        if issued is None or issued.token or issued.expires_at is None or bound_s is None:
            return
        left = issued.expires_at - time.time()
        if left < bound_s:
            plugin = self.credential_plugin.via if self.credential_plugin else "the plugin"
            raise ConfigurationError(
                f"the client certificate from {plugin} expires in {max(left, 0):.0f} s, "
                f"before this run could end ({bound_s:.0f} s: its duration plus one "
                "request timeout), and a certificate is not renewed during a run; shorten "
                "--duration, or give the credentials block a plugin that issues a token"
            )

    def endpoint_url(self, path: str) -> str:
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")

    def check_api_key(self, api_key: str | None) -> None:
        if api_key and not self.forwards_authorization:
            raise ConfigurationError(
                f"api_key cannot reach an endpoint {self.via}: the API server takes the "
                "Authorization header for itself and never forwards it; benchmark an "
                "endpoint without --api-key, or put a gateway in front that reads the key "
                "from another header"
            )

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS settings for an ``https`` base URL (None for plain http).

        The CA is loaded from memory; the client certificate and key only load from files,
        so they are written to ``0600`` files in this process's private secrets directory
        for the duration of the load and removed at once (the context keeps them in memory).
        """
        if not self.base_url.startswith("https://"):
            return None
        try:
            context = ssl.create_default_context(cadata=self.ca_pem)
        except ssl.SSLError as exc:
            raise ConfigurationError(
                f"the CA certificate for {self.via} does not load: {exc.reason or exc}"
            ) from None
        if not self.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.client_cert_pem and self.client_key_pem:
            with (
                temporary_secret_file(self.client_cert_pem, name="client.crt") as cert,
                temporary_secret_file(self.client_key_pem, name="client.key") as key,
            ):
                try:
                    context.load_cert_chain(cert, key)
                except ssl.SSLError as exc:
                    # The library's message names no content, only what failed.
                    raise ConfigurationError(
                        f"the client certificate and key for {self.via} do not load: "
                        f"{exc.reason or exc}"
                    ) from None
        return context


class RenewingBearer:
    """The ``Authorization`` value of a plugin's token, renewed before it expires.

    One per process and event loop. Each of the benchmark's worker processes renews on its
    own: they share no loop and no memory, and a channel carrying tokens from the parent
    into each loop would be more machinery than running the plugin there (``aws eks
    get-token`` signs locally, so N processes cost N short runs of it every ~14 minutes).

    The hot path is the caller comparing ``time.time()`` with :attr:`renew_at`; only past
    it does :meth:`current` do anything. The plugin runs in a thread, once at a time, while
    requests keep the old token until it is within ``_EXPIRY_MARGIN_S`` of expiring; from
    then on they wait for the new one. A failed renewal is retried 5 s later while the old
    token lasts; once it has expired, each request waits for another run of the plugin and
    fails with its error if that fails too.
    """

    def __init__(
        self,
        plugin: CredentialPlugin,
        issued: IssuedCredential,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._plugin = plugin
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._error: CredentialUnavailable | None = None
        self._retry_at = 0.0
        self._take(issued)

    def _take(self, issued: IssuedCredential) -> None:
        if not issued.token:
            raise CredentialUnavailable(f"{self._plugin.via} returned no token when run again")
        self.value = f"Bearer {issued.token}"
        self.expires_at = issued.expires_at if issued.expires_at is not None else math.inf
        lifetime = max(self.expires_at - self._clock(), 0.0)
        self.renew_at = self.expires_at - min(RENEW_BEFORE_S, lifetime / 2)
        self._error, self._retry_at = None, 0.0

    async def current(self) -> str:
        """The header value to send now; call it when ``time.time() >= renew_at``."""
        if self._clock() < self.expires_at - _EXPIRY_MARGIN_S:
            # Still good: renew in the background (after a failure, not before 5 s).
            if self._task is None and self._clock() >= self._retry_at:
                self._task = asyncio.get_running_loop().create_task(self._renew())
            return self.value
        # Expired: every request waits for a run of the plugin (one at a time, shared), as
        # client-go runs it when it holds no valid credential.
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._renew())
        await asyncio.shield(self._task)
        # A token the plugin has just issued is sent even inside the margin: it is the
        # freshest there is. Only one that has expired is not.
        if self._clock() >= self.expires_at:
            raise self._error or CredentialUnavailable(
                f"the token from {self._plugin.via} expired and no new one came"
            )
        return self.value

    async def _renew(self) -> None:
        try:
            issued = await asyncio.to_thread(self._plugin.issue)
            self._take(issued)
        except CredentialUnavailable as exc:
            self._error, self._retry_at = exc, self._clock() + 5.0
        except Exception as exc:  # a bug in a plugin wrapper must not crash the run
            self._error = CredentialUnavailable(
                f"renewing the token from {self._plugin.via} failed: {type(exc).__name__}"
            )
            self._retry_at = self._clock() + 5.0
        finally:
            self._task = None

    async def close(self) -> None:
        """Wait for a renewal in flight, so no thread outlives the run."""
        if self._task is not None:
            await asyncio.shield(self._task)
