"""Binding a stored record's fields to its owner, so an edit made without the key shows.

A binding is one envelope (see :mod:`budcluster.crypto.envelope`) sealed for the owner
``<block type>/<block name>/binding``. Its plaintext holds, per field, an HMAC-SHA256 of
the owner, the field name and the field's canonical JSON, under a key derived from the
symmetric key. Forging or editing one therefore needs both the RSA key (to seal the
envelope) and the symmetric key (to compute the MACs), and because each field has its own
MAC, a failed check can name exactly which fields changed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from pydantic_core import to_jsonable_python

from budcluster.crypto.envelope import open_envelope, seal
from budcluster.crypto.errors import MalformedEnvelopeError
from budcluster.crypto.keyring import Keyring

_FORMAT = 1
# Domain separation: the fingerprints of `credentials list` use the symmetric key as is.
_MAC_KEY_LABEL = b"budcluster field binding v1"

_NO_DEFAULT = object()


def canonical(value: Any) -> str:
    """The one JSON text of a value that the MAC covers (sorted keys, no spaces)."""
    return json.dumps(
        to_jsonable_python(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )


def bind_fields(keyring: Keyring, owner: str, fields: Mapping[str, Any]) -> str:
    """An envelope sealed for ``owner`` that authenticates every one of ``fields``."""
    key = _mac_key(keyring)
    macs = {name: _mac(key, owner, name, value) for name, value in fields.items()}
    plaintext = json.dumps({"v": _FORMAT, "fields": macs}, sort_keys=True).encode()
    return seal(keyring, plaintext, owner)


def changed_fields(
    keyring: Keyring,
    token: str,
    owner: str,
    fields: Mapping[str, Any],
    defaults: Mapping[str, Any] | None = None,
) -> list[str]:
    """The names of ``fields`` that differ from what ``token`` bound, sorted; [] if none.

    A field the binding does not know (added to the block type after it was bound) is
    accepted only while it holds its default from ``defaults``. Raises the envelope's
    errors (wrong key, tampered, malformed) when the binding itself does not open.
    """
    recorded = _recorded_macs(keyring, token, owner)
    key = _mac_key(keyring)
    defaults = defaults or {}
    changed = []
    for name, value in fields.items():
        mac = recorded.get(name)
        if mac is None:
            default = defaults.get(name, _NO_DEFAULT)
            if default is _NO_DEFAULT or canonical(default) != canonical(value):
                changed.append(name)
        elif not hmac.compare_digest(mac, _mac(key, owner, name, value)):
            changed.append(name)
    changed.extend(name for name in recorded if name not in fields)
    return sorted(changed)


def _recorded_macs(keyring: Keyring, token: str, owner: str) -> dict[str, str]:
    content = open_envelope(keyring, token, owner)
    try:
        document = json.loads(content)
        macs = document["fields"]
        if document.get("v") != _FORMAT or not isinstance(macs, dict):
            raise ValueError("unknown binding format")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        # Authenticated content we cannot read: written by a newer build, not an attacker.
        raise MalformedEnvelopeError(
            f"the binding of {owner} has a format this version cannot read; upgrade "
            "budcluster, or add the credential again."
        ) from exc
    return {str(name): str(mac) for name, mac in macs.items()}


def _mac_key(keyring: Keyring) -> bytes:
    return hmac.new(keyring.symmetric_key, _MAC_KEY_LABEL, hashlib.sha256).digest()


def _mac(key: bytes, owner: str, name: str, value: Any) -> str:
    message = json.dumps([owner, name, canonical(value)]).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()
