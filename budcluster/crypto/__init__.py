"""Client-side envelope encryption for credentials.

A fresh AES-256-GCM data key per secret, wrapped with RSA-OAEP (SHA-256) by the
project key; the secret's owner (block type, block name, field) is bound as
associated data. See :mod:`budcluster.crypto.envelope` for the format.
"""

from budcluster.crypto.envelope import EnvelopeHeader, open_envelope, read_header, seal
from budcluster.crypto.errors import (
    BindingError,
    CryptoError,
    InsecureKeyFileError,
    KeyDirectoryError,
    KeyFileExistsError,
    MalformedEnvelopeError,
    MissingKeyError,
    TamperedCiphertextError,
    UnboundCredentialError,
    WrongKeyError,
)
from budcluster.crypto.keyring import Keyring, init_keys, rotate_active_key

__all__ = [
    "BindingError",
    "CryptoError",
    "EnvelopeHeader",
    "InsecureKeyFileError",
    "KeyDirectoryError",
    "KeyFileExistsError",
    "Keyring",
    "MalformedEnvelopeError",
    "MissingKeyError",
    "TamperedCiphertextError",
    "UnboundCredentialError",
    "WrongKeyError",
    "init_keys",
    "open_envelope",
    "read_header",
    "rotate_active_key",
    "seal",
]
