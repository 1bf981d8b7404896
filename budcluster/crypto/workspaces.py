"""Which Prefect workspaces hold credentials sealed with which keys of a key directory.

One key directory can seal blocks for several Prefect APIs (a staging and a production
server, several Prefect Cloud workspaces). `keys rotate` sees only the API it talks to, so
without a record it would retire a previous key that blocks on another API still need.

``workspaces.json`` (mode 0600, next to the keys) maps a workspace label to the key ids
its blocks may use: every sealing adds the active key to the sealing process's workspace,
and a rotation or re-seal replaces its workspace's entry with what it found there. A
previous key is retired only when no workspace's entry names it.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from budcluster.crypto.errors import CryptoError
from budcluster.crypto.files import write_private_file

LEDGER_FILE = "workspaces.json"
_LOCK_FILE = ".workspaces.lock"


def read_ledger(directory: Path) -> dict[str, set[str]]:
    """Workspace label -> key ids its blocks may use; {} if nothing was recorded yet."""
    path = directory / LEDGER_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(text)
        return {str(label): {str(kid) for kid in kids} for label, kids in data.items()}
    except (ValueError, AttributeError, TypeError) as exc:
        raise CryptoError(
            f"{path} is not a workspace ledger (JSON object of lists). Restore it from "
            "backup; until then no previous key can be retired safely."
        ) from exc


def record_use(directory: Path, workspace: str, key_ids: set[str]) -> None:
    """Add ``key_ids`` to what ``workspace`` may use."""
    with _locked(directory):
        ledger = read_ledger(directory)
        if key_ids <= ledger.get(workspace, set()):
            return
        ledger[workspace] = ledger.get(workspace, set()) | key_ids
        _write(directory, ledger)


def replace_use(directory: Path, workspace: str, key_ids: set[str]) -> None:
    """Set what ``workspace`` uses to exactly ``key_ids`` (after reading all its blocks)."""
    with _locked(directory):
        ledger = read_ledger(directory)
        ledger[workspace] = set(key_ids)
        _write(directory, ledger)


def forget_workspace(directory: Path, workspace: str) -> bool:
    """Drop a workspace that no longer exists. Returns whether it was recorded."""
    with _locked(directory):
        ledger = read_ledger(directory)
        if ledger.pop(workspace, None) is None:
            return False
        _write(directory, ledger)
        return True


def users_of(directory: Path, key_ids: set[str]) -> dict[str, list[str]]:
    """For each of ``key_ids`` some workspace may still use: those workspaces, sorted."""
    ledger = read_ledger(directory)
    return {
        kid: sorted(label for label, kids in ledger.items() if kid in kids)
        for kid in sorted(key_ids)
        if any(kid in kids for kids in ledger.values())
    }


def _write(directory: Path, ledger: dict[str, set[str]]) -> None:
    data = {label: sorted(kids) for label, kids in sorted(ledger.items())}
    write_private_file(directory / LEDGER_FILE, (json.dumps(data, indent=2) + "\n").encode())


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    # Two `credentials add` at once must not lose each other's entry.
    fd = os.open(directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
