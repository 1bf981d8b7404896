"""The base of every credential block: fields that hold envelopes, never plaintext.

Secrets are sealed on this machine with the project key before a block is saved,
so Prefect's server, database and API only ever see ciphertext. Opening needs the
key files in ``BUDCLUSTER_KEYS_DIR`` on the machine that runs the flow.
"""

from __future__ import annotations

from typing import Any, ClassVar

from prefect.blocks.core import Block
from pydantic import Field

from budcluster.crypto import Keyring, TamperedCiphertextError, open_envelope, read_header, seal
from budcluster.settings import get_settings

# The project README documents these blocks; this is the Prefect concept page they build on.
_DOCS_URL = "https://docs.prefect.io/v3/concepts/blocks"


def load_keyring() -> Keyring:
    return Keyring.load(get_settings().keys_dir)


class SealedCredentialsBlock(Block):
    """Common behaviour of the credential blocks; not registered by itself."""

    _documentation_url = _DOCS_URL  # type: ignore[assignment]
    _sealed_fields: ClassVar[tuple[str, ...]] = ()

    sealed_for: str = Field(
        description=(
            "Name of the block the secrets are bound to; a copy under another name "
            "cannot be opened."
        ),
    )
    fingerprints: dict[str, str] = Field(
        default_factory=dict,
        description="Keyed HMAC fingerprints of each secret, to compare without revealing.",
    )

    @classmethod
    def _owner(cls, block_name: str, field_name: str) -> str:
        return f"{cls.get_block_type_slug()}/{block_name}/{field_name}"

    @classmethod
    def _sealed_values(
        cls, block_name: str, plaintexts: dict[str, str | None], keyring: Keyring | None = None
    ) -> dict[str, Any]:
        """Envelopes and fingerprints for ``plaintexts``, ready to pass to the constructor."""
        keyring = keyring or load_keyring()
        values: dict[str, Any] = {"sealed_for": block_name, "fingerprints": {}}
        for field_name, plaintext in plaintexts.items():
            if field_name not in cls._sealed_fields:
                raise ValueError(f"{cls.__name__}.{field_name} is not a sealed field")
            if plaintext is None:
                values[field_name] = None
                continue
            data = plaintext.encode()
            values[field_name] = seal(keyring, data, cls._owner(block_name, field_name))
            values["fingerprints"][field_name] = keyring.fingerprint(data)
        return values

    def _open(self, field_name: str, keyring: Keyring | None = None) -> str | None:
        """The plaintext of one sealed field. Keep the result in memory only."""
        token = getattr(self, field_name)
        if token is None:
            return None
        loaded_as = getattr(self, "_block_document_name", None)
        if loaded_as and loaded_as != self.sealed_for:
            raise TamperedCiphertextError(
                f"block '{loaded_as}' holds secrets sealed for '{self.sealed_for}'; a block "
                "cannot be copied or renamed. Add the credential again under the new name."
            )
        keyring = keyring or load_keyring()
        owner = self._owner(self.sealed_for, field_name)
        return open_envelope(keyring, token, owner).decode()

    def key_ids(self) -> dict[str, str]:
        """Which key sealed each secret field (for listing and rotation)."""
        return {
            name: read_header(getattr(self, name)).key_id
            for name in self._sealed_fields
            if getattr(self, name) is not None
        }

    def resealed(self, keyring: Keyring) -> dict[str, Any]:
        """Field values re-sealed under the keyring's active key, with fresh data keys."""
        plaintexts = {name: self._open(name, keyring) for name in self._sealed_fields}
        return self._sealed_values(self.sealed_for, plaintexts, keyring)
