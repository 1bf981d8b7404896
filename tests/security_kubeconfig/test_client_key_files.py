"""The client key a kubeconfig carries (client-key-data) is decoded to a file by the
kubernetes client, since ssl only takes a path. That file must live in this process's
private secrets directory, which a later run sweeps even after a ``kill -9``, and never in
the shared temporary directory."""

from __future__ import annotations

import base64
import os
import secrets
import stat
import tempfile
from pathlib import Path

import pytest

from budcluster.adapters import kubernetes as kube
from budcluster.secretfiles import process_secret_dir, secrets_root


def _files_holding(root: Path, needle: bytes, skip: Path) -> list[Path]:
    found = []
    for directory, _, names in os.walk(root):
        if Path(directory).is_relative_to(skip):
            continue
        for name in names:
            path = Path(directory) / name
            try:
                if needle in path.read_bytes():
                    found.append(path)
            except OSError:
                continue
    return found


def test_the_decoded_client_key_stays_in_the_private_secrets_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fresh shared temp dir to search; the process's secrets directory stays where it is.
    secret_dir = process_secret_dir()
    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    # Unique per run: the client caches files by content.
    key = (
        f"-----BEGIN PRIVATE KEY-----\n{secrets.token_hex(32)}\n-----END PRIVATE KEY-----\n"
    ).encode()
    cert = f"-----BEGIN CERTIFICATE-----\n{secrets.token_hex(32)}\n-----END CERTIFICATE-----\n"
    config = {
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [
            {
                "name": "u",
                "user": {
                    "client-certificate-data": base64.b64encode(cert.encode()).decode(),
                    "client-key-data": base64.b64encode(key).decode(),
                },
            }
        ],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    api = kube.api_client_from_kubeconfig(config, "c")

    key_file = Path(api.configuration.key_file)
    assert key_file.read_bytes() == key
    assert key_file.is_relative_to(secret_dir), key_file
    assert stat.S_IMODE(key_file.stat().st_mode) & 0o077 == 0
    leaked = _files_holding(shared, key, skip=secrets_root())
    assert not leaked, f"client key written outside the secrets dir: {leaked}"
