"""OCI image references, checked as text before they reach a pod spec or a command line.

An image string ends up in Kubernetes manifests, in ``docker run`` argv on hosts and in
Ansible variables, where ``{{ ... }}`` is templated and a leading ``-`` is an option; the
grammar of distribution/reference admits none of that, so anything outside it is refused:

    reference := name [":" tag] ["@" digest]
    name      := [domain "/"] path-component ["/" path-component]*   (at most 255 chars)
    domain    := host [":" port]      host: DNS name or [IPv6]
    path-component := [a-z0-9]+ ([._] | "__" | "-"+) [a-z0-9]+ ...
    tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest    := algorithm ":" hex    (sha256: 64 hex digits, sha512: 128)
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

from budcluster.errors import ConfigurationError

__all__ = ["ImageReference", "InvalidImageReference", "check_image_reference"]

MAX_NAME_LENGTH = 255
EXAMPLE = "registry.local:5000/vllm/vllm-openai:v0.11.0"

_ALNUM = r"[a-z0-9]+"
_PATH_COMPONENT = rf"{_ALNUM}(?:(?:[._]|__|-+){_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9A-Fa-f:.]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_ALGORITHM = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*"
_REFERENCE = re.compile(
    rf"(?P<name>{_NAME})(?::(?P<tag>{_TAG}))?"
    rf"(?:@(?P<algorithm>{_ALGORITHM}):(?P<hex>[0-9a-fA-F]{{32,}}))?",
    re.ASCII,
)
_DIGEST_LENGTHS = {"sha256": 64, "sha512": 128}


class InvalidImageReference(ConfigurationError, ValueError):
    """Not an OCI image reference. A ValueError too, so pydantic reports the field."""


def check_image_reference(value: str) -> str:
    """Return ``value`` unchanged if it is an OCI image reference; raise otherwise."""
    match = _REFERENCE.fullmatch(value)
    problem = None
    if match is None:
        problem = "use [REGISTRY[:PORT]/]NAME[:TAG][@sha256:DIGEST], NAME in lowercase"
    elif len(match["name"]) > MAX_NAME_LENGTH:
        problem = f"its name is longer than {MAX_NAME_LENGTH} characters"
    elif match["algorithm"] in _DIGEST_LENGTHS and len(match["hex"]) != (
        wanted := _DIGEST_LENGTHS[match["algorithm"]]
    ):
        problem = f"a {match['algorithm']} digest has {wanted} hex digits"
    if problem is not None:
        raise InvalidImageReference(
            f"{value!r} is not an OCI image reference ({problem}); e.g. {EXAMPLE!r}"
        )
    return value


ImageReference = Annotated[str, AfterValidator(check_image_reference)]
"""A ``str`` field that holds an OCI image reference."""
