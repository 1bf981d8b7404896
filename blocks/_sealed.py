"""The base of every credential block: fields that hold envelopes, never plaintext, and a
binding that authenticates every other field.

Secrets are sealed on this machine with the project key before a block is saved,
so Prefect's server, database and API only ever see ciphertext. Opening needs the
key files in ``BUDCLUSTER_KEYS_DIR`` on the machine that runs the flow.

The plain fields (an inventory, an endpoint, a region...) cannot be hidden, but they
cannot be changed either: ``binding`` authenticates all of them and the block's name (see
:mod:`budcluster.crypto.binding`), and loading a block checks it, so a block edited
through the Prefect API or UI without the key refuses to load.
"""

from __future__ import annotations

import contextvars
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Self

from prefect.blocks.core import Block
from prefect.client.schemas.objects import BlockDocument
from pydantic import Field, PrivateAttr, ValidationError
from pydantic_core import PydanticUndefined

from blocks.keyring_cache import load_keyring
from blocks.workspace import record_sealing
from budcluster.crypto import (
    Keyring,
    MalformedEnvelopeError,
    TamperedCiphertextError,
    open_envelope,
    read_header,
    seal,
)
from budcluster.crypto.binding import bind_fields, canonical, changed_fields
from budcluster.crypto.errors import BindingError, UnboundCredentialError

# docs/credentials.md documents these blocks; this is the Prefect concept page they build on.
_DOCS_URL = "https://docs.prefect.io/v3/concepts/blocks"
# Keys Prefect itself may put in a block's data; they never reach our code.
_PREFECT_KEYS = frozenset({"block_type_slug"})
# Set only by key rotation, an operator action: blocks saved without a binding are read
# as they are, so that rotation can bind them.
_accept_unbound: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "accept_unbound", default=False
)


@contextmanager
def accepting_unbound_blocks() -> Iterator[None]:
    """Within the block, blocks without a binding load as they are (for `keys rotate`)."""
    token = _accept_unbound.set(True)
    try:
        yield
    finally:
        _accept_unbound.reset(token)


class SealedCredentialsBlock(Block):
    """Common behaviour of the credential blocks; not registered by itself."""

    _documentation_url = _DOCS_URL  # type: ignore[assignment]
    _sealed_fields: ClassVar[tuple[str, ...]] = ()
    # The command that adds this kind of block; error messages quote it as the fix.
    _add_command: ClassVar[str] = "budcluster credentials add-..."

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
    binding: str | None = Field(
        default=None,
        description=(
            "Sealed (bsc1 envelope) MACs of every other field and of the block name; a "
            "block edited without the key refuses to load."
        ),
    )

    # A digest of the name and fields as last verified: re-checked only when they change.
    _verified_digest: str | None = PrivateAttr(None)

    @classmethod
    def _owner(cls, block_name: str, field_name: str) -> str:
        return f"{cls.get_block_type_slug()}/{block_name}/{field_name}"

    @classmethod
    def _build(
        cls,
        block_name: str,
        plaintexts: dict[str, str | None],
        *,
        keyring: Keyring | None = None,
        **fields: Any,
    ) -> Self:
        """A new block named ``block_name``: ``plaintexts`` sealed, every field bound."""
        keyring = keyring or load_keyring()
        block = cls(**fields, **cls._sealed_values(block_name, plaintexts, keyring))
        block._bind(keyring)
        return block

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

    # -- the binding ------------------------------------------------------------------------

    def _bound_fields(self) -> dict[str, Any]:
        """Everything the binding covers: every field but itself, and any extra key."""
        fields = {name: getattr(self, name) for name in type(self).model_fields}
        fields.pop("binding")
        for name, value in (self.model_extra or {}).items():
            if name not in _PREFECT_KEYS:
                fields[name] = value
        return fields

    def _fields_digest(self, name: str | None) -> str:
        return hashlib.sha256(canonical([name, self._bound_fields()]).encode()).hexdigest()

    def _bind(self, keyring: Keyring) -> None:
        self.binding = bind_fields(
            keyring, self._owner(self.sealed_for, "binding"), self._bound_fields()
        )
        self._verified_digest = self._fields_digest(self.sealed_for)
        record_sealing(keyring)

    def _label(self, name: str | None) -> str:
        return f"{self.get_block_type_slug()}/{name or self.sealed_for}"

    def _fix(self, name: str | None) -> str:
        return f"`{self._add_command} {name or self.sealed_for} … --overwrite`"

    def verify_binding(self, loaded_as: str | None, keyring: Keyring | None = None) -> None:
        """Raise BindingError unless every field is as the key holder saved it, for this name."""
        if self._verified_digest == self._fields_digest(loaded_as or self.sealed_for):
            return
        keyring = keyring or load_keyring()
        label, fix = self._label(loaded_as), self._fix(loaded_as)
        if self.binding is None:
            if _accept_unbound.get():
                return
            raise UnboundCredentialError(self._unbound_message(label, fix, keyring))
        if loaded_as is not None and loaded_as != self.sealed_for:
            raise BindingError(
                f"block '{label}' is bound to the name '{self.sealed_for}' (field sealed_for): "
                "it was copied, renamed or edited without the key, so it is refused. Add the "
                f"credential again under this name with {fix}."
            )
        defaults = {
            name: info.default
            for name, info in type(self).model_fields.items()
            if info.default is not PydanticUndefined
        }
        try:
            changed = changed_fields(
                keyring,
                self.binding,
                self._owner(self.sealed_for, "binding"),
                self._bound_fields(),
                defaults,
            )
        except (TamperedCiphertextError, MalformedEnvelopeError):
            # Not chained: the cause says the same, and names no field.
            raise BindingError(
                f"block '{label}': its binding (field binding) does not open for this block; "
                f"it was edited or copied without the key, so it is refused. Add the "
                f"credential again with {fix}."
            ) from None
        if changed:
            raise BindingError(
                f"block '{label}': field(s) {', '.join(changed)} changed since it was saved "
                "with the key (edited through the Prefect API or UI?), so it is refused. If "
                f"the change was yours, add the credential again with {fix}."
            )
        self._verified_digest = self._fields_digest(loaded_as or self.sealed_for)

    @staticmethod
    def _unbound_message(label: str, fix: str, keyring: Keyring) -> str:
        if keyring.bindings_required:
            return (
                f"block '{label}' has no binding (field binding), although these keys bind "
                "every block they seal: it was edited through the Prefect API or UI, so none "
                f"of its fields can be trusted. Check them, then add the credential again with "
                f"{fix}."
            )
        return (
            f"block '{label}' was saved before blocks were bound to their fields (no "
            "binding), so its fields cannot be trusted. Check them, then run `budcluster "
            "keys rotate` (it re-seals and binds every stored credential as it is) or add "
            f"the credential again with {fix}."
        )

    # -- loading ----------------------------------------------------------------------------

    @classmethod
    def _from_block_document(cls, block_document: BlockDocument) -> Self:
        # Every typed load path (load, aload, load_from_ref, aload_from_ref) ends here.
        block = super()._from_block_document(block_document)
        block.verify_binding(block_document.name)
        return block

    @classmethod
    def _load_from_block_document(
        cls, block_document: BlockDocument, validate: bool = True
    ) -> Self:
        # Prefect's validate=False builds the block with model_construct, around the
        # binding check; a credential block is loaded whole and checked, or not at all.
        try:
            return cls._from_block_document(block_document)
        except ValidationError as exc:
            fields = sorted({str(error["loc"][0]) for error in exc.errors() if error["loc"]})
            name = block_document.name
            raise BindingError(
                f"block '{cls.get_block_type_slug()}/{name}' cannot be read as a "
                f"{cls.get_block_type_name()}: field(s) {', '.join(fields)} are invalid "
                "(edited through the Prefect API, or saved by another version). Add the "
                f"credential again with `{cls._add_command} {name} … --overwrite`."
            ) from exc

    # -- secrets ----------------------------------------------------------------------------

    def _open(self, field_name: str, keyring: Keyring | None = None) -> str | None:
        """The plaintext of one sealed field. Keep the result in memory only."""
        loaded_as = getattr(self, "_block_document_name", None)
        if loaded_as is not None:
            # Loaded through a path that skipped the check (Block.load("slug/name")), or
            # changed since: no secret leaves a block whose fields are not verified.
            keyring = keyring or load_keyring()
            self.verify_binding(loaded_as, keyring)
        token = getattr(self, field_name)
        if token is None:
            return None
        if loaded_as and loaded_as != self.sealed_for:
            raise TamperedCiphertextError(
                f"block '{loaded_as}' holds secrets sealed for '{self.sealed_for}'; a block "
                "cannot be copied or renamed. Add the credential again under the new name."
            )
        owner = self._owner(self.sealed_for, field_name)
        return open_envelope(keyring or load_keyring(), token, owner).decode()

    def key_ids(self) -> dict[str, str]:
        """Which key sealed each secret field and the binding (for listing and rotation)."""
        return {
            name: read_header(getattr(self, name)).key_id
            for name in (*self._sealed_fields, "binding")
            if getattr(self, name) is not None
        }

    def resealed(self, keyring: Keyring) -> Self:
        """A copy under the keyring's active key: fresh data keys, bound anew."""
        plaintexts = {name: self._open(name, keyring) for name in self._sealed_fields}
        values = self._sealed_values(self.sealed_for, plaintexts, keyring)
        copy = self.model_copy(update=values)
        copy._bind(keyring)
        return copy
