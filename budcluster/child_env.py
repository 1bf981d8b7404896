"""What a child process of the worker may see of its environment, besides what it is given.

Terraform and kubeconfig exec plugins start with an empty environment plus these names:
enough to find executables, resolve certificates and go through a proxy, and nothing of the
worker's own credentials (its Prefect auth string, cloud keys, database URL).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["BASE_CHILD_ENVIRONMENT", "allowlisted"]

BASE_CHILD_ENVIRONMENT = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
)


def allowlisted(names: Iterable[str], source: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``source`` that ``names`` lists, and no others."""
    return {name: source[name] for name in names if name in source}
