"""How the benchmark client reaches an endpoint it cannot dial itself. Pure apart from
building an SSL context.

A Kubernetes endpoint is recorded as its in-cluster URL (``http://rt-x.ns.svc:8000``),
which a worker outside the cluster cannot resolve. :class:`EndpointAccess` says where the
requests go instead (the API server's service proxy for that Service), with which headers
(the kubeconfig user's credentials) and which TLS settings (its CA, its client
certificate). It is plain data, so it crosses to the load generator's worker processes;
each process builds its own SSL context from it. ``repr`` never shows a secret, and the
run records only :attr:`EndpointAccess.via`.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

from budcluster.errors import ConfigurationError
from budcluster.secretfiles import temporary_secret_file


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
