"""The keyring of the configured key directory, kept while its key files are unchanged."""

from __future__ import annotations

from pathlib import Path

from budcluster.crypto import Keyring, MissingKeyError
from budcluster.crypto.keyring import (
    BINDINGS_MARKER,
    RSA_KEY_FILE,
    SYMMETRIC_KEY_FILE,
    previous_key_files,
)
from budcluster.settings import Settings, get_settings

_Signature = tuple[tuple[str, int, int, int, int, int], ...]
_cached_keyring: tuple[_Signature, Keyring] | None = None


def load_keyring() -> Keyring:
    """The configured keyring, loaded again only when a file in its directory changed.

    Loading validates an RSA-4096 key (about 0.4 s), and every block load checks a
    binding. The cache is keyed on each file's inode, size, mtime, mode and owner, so a
    rotation, a restore or a chmod is seen, and the permission checks rerun with it.
    """
    global _cached_keyring
    settings = get_settings()
    directory = settings.keys_dir
    signature = _files_signature(directory)
    if _cached_keyring is not None and signature and _cached_keyring[0] == signature:
        return _cached_keyring[1]
    try:
        keyring = Keyring.load(directory)
    except MissingKeyError as exc:
        if not settings.keys_secret:
            raise
        raise MissingKeyError(_missing_secret_message(settings, exc)) from exc
    _cached_keyring = (signature, keyring) if signature else None
    return keyring


def _files_signature(directory: Path) -> _Signature:
    # The key files only: the workspace ledger beside them changes on every sealing.
    names = (RSA_KEY_FILE, SYMMETRIC_KEY_FILE, BINDINGS_MARKER)
    paths = [directory / name for name in names if (directory / name).exists()]
    paths += previous_key_files(directory)
    signature = []
    for path in paths:
        try:
            info = path.stat()
        except OSError:
            return ()
        signature.append(
            (str(path), info.st_ino, info.st_size, info.st_mtime_ns, info.st_mode, info.st_uid)
        )
    return tuple(signature)


def _missing_secret_message(settings: Settings, exc: MissingKeyError) -> str:
    """A worker whose keys come from a Kubernetes Secret: name the Secret and its command."""
    namespace = settings.keys_secret_namespace or "<namespace>"
    return (
        f"{exc} This worker reads its keys from the Kubernetes Secret "
        f"{settings.keys_secret!r} in namespace {namespace!r}, mounted at "
        f"{settings.keys_dir}, and the Secret is missing or lacks the key files. Create it "
        "from the keys the credentials were sealed with, on the machine that holds them: "
        f"`budcluster keys k8s-secret --namespace {namespace} --name {settings.keys_secret} "
        "--apply` (then rerun the flow)."
    )
