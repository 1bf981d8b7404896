"""The project's keys as a Kubernetes Secret manifest, for workers that run flows as pods.

The Secret holds the files of ``crypto-keys/`` under their own names (the work pool's job
template mounts it read-only with ``defaultMode: 0400`` and points ``BUDCLUSTER_KEYS_DIR``
at it). Secret keys cannot contain '/', so a previous key ``previous/rsa-private-key-<id>.pem``
travels as ``previous-rsa-private-key-<id>.pem``, a name :meth:`Keyring.load` also reads.
The workspace ledger stays behind: a worker seals nothing that rotation needs it for.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

from budcluster.crypto.files import read_private_file
from budcluster.crypto.keyring import (
    BINDINGS_MARKER,
    PREVIOUS_DIR,
    PREVIOUS_FLAT_PREFIX,
    RSA_KEY_FILE,
    SYMMETRIC_KEY_FILE,
    Keyring,
    previous_key_files,
)
from budcluster.errors import ConfigurationError

DEFAULT_KEYS_SECRET = "budcluster-crypto-keys"
KEYS_MOUNT_PATH = "/var/run/secrets/budcluster/crypto-keys"
"""Where the work pool's job template mounts the Secret (prefect.yaml says the same)."""
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def secret_key_names(directory: Path) -> list[tuple[str, Path]]:
    """(Secret key, file) for every file of ``directory`` a worker needs to open credentials."""
    entries = [(RSA_KEY_FILE, directory / RSA_KEY_FILE)]
    entries.append((SYMMETRIC_KEY_FILE, directory / SYMMETRIC_KEY_FILE))
    if (directory / BINDINGS_MARKER).is_file():
        entries.append((BINDINGS_MARKER, directory / BINDINGS_MARKER))
    for path in previous_key_files(directory):
        nested = path.parent.name == PREVIOUS_DIR and path.parent.parent == directory
        entries.append((f"{PREVIOUS_FLAT_PREFIX}{path.name}" if nested else path.name, path))
    return entries


def keys_secret_manifest(directory: Path, *, name: str, namespace: str) -> dict[str, Any]:
    """A ``v1/Secret`` holding the keys of ``directory``; the keys are checked (present,
    private, loadable) first, so a broken key never reaches a cluster."""
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise ConfigurationError(
            f"--name: {name!r} is not a valid Secret name (lowercase letters, digits, '-' and "
            f"'.'), e.g. {DEFAULT_KEYS_SECRET}"
        )
    if not _DNS_LABEL.match(namespace):
        raise ConfigurationError(
            f"--namespace: {namespace!r} is not a namespace name (a DNS-1123 label: lowercase "
            "letters, digits and '-', at most 63), e.g. budcluster"
        )
    keyring = Keyring.load(directory)
    data = {
        key: base64.b64encode(read_private_file(path)).decode("ascii")
        for key, path in secret_key_names(directory)
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "bud-serve-cluster"},
            # Ids only: which keys the Secret holds, to compare with `keys status`.
            "annotations": {
                "budcluster.io/active-key-id": keyring.active_key_id,
                "budcluster.io/previous-key-ids": ",".join(sorted(keyring.previous)),
            },
        },
        "data": data,
    }
