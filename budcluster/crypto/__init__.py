"""Client-side envelope encryption for credentials.

A fresh AES-256-GCM data key per secret, wrapped with RSA-OAEP (SHA-256) by the
project key; the secret's owner (block type, block name, field) is bound as
associated data. See :mod:`budcluster.crypto.envelope` for the format.
"""

from budcluster.crypto.envelope import EnvelopeHeader, open_envelope, read_header, seal
from budcluster.crypto.errors import (
    CryptoError,
    KeyFileExistsError,
    MalformedEnvelopeError,
    MissingKeyError,
    TamperedCiphertextError,
    WrongKeyError,
)
from budcluster.crypto.keyring import Keyring, init_keys, rotate_active_key

__all__ = [
    "CryptoError",
    "EnvelopeHeader",
    "KeyFileExistsError",
    "Keyring",
    "MalformedEnvelopeError",
    "MissingKeyError",
    "TamperedCiphertextError",
    "WrongKeyError",
    "init_keys",
    "open_envelope",
    "read_header",
    "rotate_active_key",
    "seal",
]
