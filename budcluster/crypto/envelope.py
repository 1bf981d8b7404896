"""The envelope format for one secret.

A sealed secret is one ASCII string::

    bsc1.<key id>.<wrapped data key>.<nonce>.<ciphertext + GCM tag>

- ``bsc1``: format version. A later format gets a new prefix; old ones stay readable.
- key id: which RSA key wrapped the data key (see :func:`keyring.key_id`), so a
  rotation can leave old envelopes readable until they are re-sealed.
- wrapped data key: a fresh 256-bit AES key, RSA-OAEP(SHA-256, MGF1-SHA-256).
- nonce: 96 random bits.
- ciphertext: AES-256-GCM of the secret.

Fields are unpadded base64url. The associated data is the version, the key id and
the owner (block type, block name and field), so an envelope copied to another
block, or with its header edited, fails to open.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from budcluster.crypto.errors import (
    MalformedEnvelopeError,
    TamperedCiphertextError,
    WrongKeyError,
)
from budcluster.crypto.keyring import Keyring

VERSION = "bsc1"
_OAEP = padding.OAEP(
    mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
)


@dataclass(frozen=True)
class EnvelopeHeader:
    version: str
    key_id: str


def seal(keyring: Keyring, plaintext: bytes, owner: str) -> str:
    """Encrypt ``plaintext`` for ``owner`` (e.g. ``"kubeconfig-credentials/c1/kubeconfig"``)."""
    kid = keyring.active_key_id
    data_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(12)
    ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, _aad(kid, owner))
    wrapped = keyring.active.public_key().encrypt(data_key, _OAEP)
    return ".".join([VERSION, kid, _b64(wrapped), _b64(nonce), _b64(ciphertext)])


def read_header(token: str) -> EnvelopeHeader:
    """The version and key id of an envelope, without opening it."""
    parts = _split(token)
    return EnvelopeHeader(parts[0], parts[1])


def open_envelope(keyring: Keyring, token: str, owner: str) -> bytes:
    """Decrypt an envelope sealed for ``owner``. The result must stay in memory."""
    _version, kid, wrapped_b64, nonce_b64, ciphertext_b64 = _split(token)
    private_key = keyring.private_key(kid)
    if private_key is None:
        raise WrongKeyError(
            f"the secret of {owner} was sealed with key {kid}, but the keyring in "
            f"{keyring.directory} holds {', '.join(keyring.key_ids)}. Point "
            "BUDCLUSTER_KEYS_DIR at the keys it was sealed with, or add the credential again."
        )
    try:
        data_key = private_key.decrypt(_unb64(wrapped_b64), _OAEP)
        return AESGCM(data_key).decrypt(_unb64(nonce_b64), _unb64(ciphertext_b64), _aad(kid, owner))
    except (ValueError, InvalidTag):
        # Not chained: the cause adds nothing and must never drag ciphertext into logs.
        raise TamperedCiphertextError(
            f"the secret of {owner} failed authentication: its ciphertext was altered, "
            "or it was copied from another block or field. Add the credential again."
        ) from None


def _aad(kid: str, owner: str) -> bytes:
    return f"{VERSION}|{kid}|{owner}".encode()


def _split(token: str) -> list[str]:
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 5 or parts[0] != VERSION:
        found = parts[0] if parts else type(token).__name__
        raise MalformedEnvelopeError(
            f"expected an envelope starting with '{VERSION}.' with 5 fields, found "
            f"'{found[:8]}…' with {len(parts)} fields. Was a plaintext stored in an "
            "encrypted field? Add the credential again with the `budcluster credentials` commands."
        )
    return parts


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedEnvelopeError("an envelope field is not valid base64url.") from exc
