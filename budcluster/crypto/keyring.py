"""The project's key material, as files in ``crypto-keys/`` (gitignored).

Layout, compatible with the original service's file names::

    crypto-keys/
      rsa-private-key.pem            active RSA-4096 key (PKCS#8 PEM), mode 0600
      symmetric-key-256              32 random bytes, hex encoded, mode 0600
      previous/rsa-private-key-<key id>.pem
                                     keys replaced by `keys rotate`, kept only until
                                     no stored credential needs them any more
      previous-rsa-private-key-<key id>.pem
                                     the same, flat: how a Kubernetes Secret (whose keys
                                     cannot hold '/') carries them to a worker
      bindings-required              present once every block sealed with these keys
                                     carries a field binding (`keys init` and the first
                                     `keys rotate` write it): from then on, a block
                                     without one was stripped, not saved by an old build
      workspaces.json                which Prefect APIs hold blocks sealed with which
                                     keys (see :mod:`budcluster.crypto.workspaces`)

The RSA key wraps each secret's data key. The symmetric key never encrypts
secrets: it keys the HMAC that makes the fingerprints shown by
``credentials list``, so a fingerprint of a short secret cannot be brute-forced
by someone who can read the Prefect database.

Like ssh, :meth:`Keyring.load` refuses a key file that group or others may read or
change, or that another user owns: a key others could copy is no longer a secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from budcluster.crypto.errors import CryptoError, KeyFileExistsError, MissingKeyError
from budcluster.crypto.files import ensure_private_dir, read_private_file, write_private_file

RSA_KEY_FILE = "rsa-private-key.pem"
SYMMETRIC_KEY_FILE = "symmetric-key-256"
PREVIOUS_DIR = "previous"
PREVIOUS_FLAT_PREFIX = "previous-"
"""Previous keys directly in the key directory: ``previous-rsa-private-key-<id>.pem``."""
BINDINGS_MARKER = "bindings-required"
RSA_KEY_BITS = 4096


def key_id(public_key: rsa.RSAPublicKey) -> str:
    """A short, stable name for a key pair: the SHA-256 of its public key, 16 hex digits."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:16]


@dataclass(frozen=True)
class Keyring:
    """The keys of one ``crypto-keys`` directory, loaded into memory."""

    directory: Path
    active: rsa.RSAPrivateKey
    symmetric_key: bytes = field(repr=False)
    previous: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict, repr=False)
    bindings_required: bool = False

    @property
    def active_key_id(self) -> str:
        return key_id(self.active.public_key())

    @property
    def key_ids(self) -> list[str]:
        return [self.active_key_id, *sorted(self.previous)]

    def private_key(self, kid: str) -> rsa.RSAPrivateKey | None:
        if kid == self.active_key_id:
            return self.active
        return self.previous.get(kid)

    def only_active(self) -> Keyring:
        """This keyring without its previous keys: what opens with it is really re-sealed."""
        return replace(self, previous={})

    def fingerprint(self, plaintext: bytes) -> str:
        """A keyed fingerprint that identifies a secret without revealing it."""
        digest = hmac.new(self.symmetric_key, plaintext, hashlib.sha256).hexdigest()
        return f"hmac-sha256:{digest[:16]}"

    @classmethod
    def load(cls, directory: Path) -> Keyring:
        rsa_path = directory / RSA_KEY_FILE
        sym_path = directory / SYMMETRIC_KEY_FILE
        for path in (rsa_path, sym_path):
            if not path.is_file():
                raise MissingKeyError(
                    f"key file {path} is missing. Create keys with `budcluster keys init "
                    f"--dir {directory}`, or point BUDCLUSTER_KEYS_DIR at the directory "
                    "that holds the keys the credentials were sealed with."
                )
        active = _load_private_key(rsa_path)
        symmetric_key = _load_symmetric_key(sym_path)
        previous = {}
        for path in previous_key_files(directory):
            key = _load_private_key(path)
            previous[key_id(key.public_key())] = key
        bound = (directory / BINDINGS_MARKER).is_file()
        return cls(directory, active, symmetric_key, previous, bindings_required=bound)


def previous_key_files(directory: Path) -> list[Path]:
    """The previous keys' files: under ``previous/``, or flat as a mounted Secret has them."""
    nested = directory / PREVIOUS_DIR
    found = sorted(nested.glob("rsa-private-key-*.pem")) if nested.is_dir() else []
    return found + sorted(directory.glob(f"{PREVIOUS_FLAT_PREFIX}rsa-private-key-*.pem"))


def init_keys(directory: Path, *, force: bool = False) -> Keyring:
    """Create a new RSA-4096 key and a 256-bit symmetric key in ``directory``."""
    rsa_path = directory / RSA_KEY_FILE
    sym_path = directory / SYMMETRIC_KEY_FILE
    existing = [str(p) for p in (rsa_path, sym_path) if p.exists()]
    if existing and not force:
        raise KeyFileExistsError(
            f"{', '.join(existing)} already exist. Credentials sealed with these keys "
            "would become unreadable; use `budcluster keys rotate` to replace keys "
            "safely, or pass --force if you really want new, unrelated keys."
        )
    ensure_private_dir(directory)
    write_private_file(sym_path, secrets.token_bytes(32).hex().encode())
    write_private_file(rsa_path, _pem(_new_rsa_key()))
    require_bindings(directory)  # new keys have never sealed an unbound block
    return Keyring.load(directory)


def require_bindings(directory: Path) -> None:
    """Record that every block sealed with these keys carries a binding."""
    write_private_file(
        directory / BINDINGS_MARKER,
        b"Every credential block sealed with these keys carries a field binding;\n"
        b"a block without one was edited, and `keys rotate` will not bind it.\n",
    )


def rotate_active_key(directory: Path) -> tuple[str, str]:
    """Make a new active key; keep the old one under ``previous/``. Returns (old, new) ids.

    Crash-safe: the old key is copied to ``previous/`` before the active file is
    atomically replaced, so at every instant both keys exist on disk.
    """
    keyring = Keyring.load(directory)
    old_id = keyring.active_key_id
    previous_dir = directory / PREVIOUS_DIR
    ensure_private_dir(previous_dir)
    write_private_file(previous_dir / f"rsa-private-key-{old_id}.pem", _pem(keyring.active))
    new_key = _new_rsa_key()
    write_private_file(directory / RSA_KEY_FILE, _pem(new_key))
    return old_id, key_id(new_key.public_key())


def retire_previous_keys(directory: Path, still_needed: set[str]) -> list[str]:
    """Delete previous keys that no stored secret needs any more. Returns their ids."""
    keyring = Keyring.load(directory)
    retired = []
    for kid in sorted(keyring.previous):
        if kid not in still_needed:
            (directory / PREVIOUS_DIR / f"rsa-private-key-{kid}.pem").unlink(missing_ok=True)
            retired.append(kid)
    return retired


def _new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_private_key(path: Path) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(read_private_file(path), password=None)
    except (ValueError, TypeError) as exc:
        raise CryptoError(
            f"{path} is not an unencrypted PEM private key: {exc}. "
            "Restore it from backup or create keys with `budcluster keys init`."
        ) from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CryptoError(f"{path} holds a {type(key).__name__}, not an RSA private key.")
    return key


def _load_symmetric_key(path: Path) -> bytes:
    text = read_private_file(path).strip()
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except ValueError:  # not ASCII, or not hex
        key = b""
    if len(key) != 32:
        raise CryptoError(
            f"{path} must hold 32 bytes as 64 hex digits. "
            "Restore it from backup or create keys with `budcluster keys init`."
        )
    return key
