"""Errors of the credential encryption. Each one says what is wrong and how to fix it.

None of them ever carries plaintext: messages name keys and block names only, and
lower-level errors that could echo input are not chained.
"""

from __future__ import annotations

from budcluster.errors import PermanentError


class CryptoError(PermanentError):
    """Base class for key and envelope problems."""


class MissingKeyError(CryptoError):
    """A key file is not where the settings say it is."""


class InsecureKeyFileError(CryptoError):
    """A key file is readable or writable by others, or owned by another user."""


class KeyDirectoryError(CryptoError):
    """The key directory is not a directory, or cannot be created."""


class KeyFileExistsError(CryptoError):
    """``keys init`` would overwrite existing keys."""


class WrongKeyError(CryptoError):
    """The secret was sealed with a key this keyring does not hold."""


class TamperedCiphertextError(CryptoError):
    """Authentication failed: the ciphertext or its binding was changed."""


class MalformedEnvelopeError(CryptoError):
    """The value is not an envelope this version understands."""


class BindingError(CryptoError):
    """A stored credential's fields differ from what its binding authenticated."""


class UnboundCredentialError(BindingError):
    """A stored credential has no binding, so none of its plain fields can be trusted."""
