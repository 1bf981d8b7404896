"""The project's credential block types, their registration, and key rotation over them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, cast

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import BlockDocument
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from prefect.utilities.asyncutils import run_coro_as_sync

from blocks._sealed import SealedCredentialsBlock, accepting_unbound_blocks
from blocks.cloud import AwsCredentials, AzureCredentials
from blocks.hosts import HostInventory
from blocks.kubeconfig import KubeconfigCredentials
from blocks.s3 import S3Registry
from budcluster.crypto import Keyring
from budcluster.errors import BudClusterError, TemporaryError

CREDENTIAL_BLOCK_TYPES: tuple[type[SealedCredentialsBlock], ...] = (
    KubeconfigCredentials,
    HostInventory,
    S3Registry,
    AwsCredentials,
    AzureCredentials,
)


def register_block_types() -> list[str]:
    """Register (or update) every block type and schema. Returns their slugs."""
    slugs = []
    for block_type in CREDENTIAL_BLOCK_TYPES:
        block_type.register_type_and_schema()
        slugs.append(block_type.get_block_type_slug())
    return slugs


@dataclass(frozen=True)
class StoredCredential:
    block_type: type[SealedCredentialsBlock]
    name: str
    block: SealedCredentialsBlock


def list_credentials(problems: dict[str, str] | None = None) -> list[StoredCredential]:
    """Every saved credential block of the project's types, loaded (still sealed).

    Loading checks each block's binding: a block edited without the key raises
    BindingError, naming it; or, when ``problems`` is given, is left out of the result
    and recorded there (label -> the one-line reason), so a listing can show the rest.
    """
    found = []
    for block_type in CREDENTIAL_BLOCK_TYPES:
        for name in _block_names(block_type.get_block_type_slug()):
            try:
                block = cast(SealedCredentialsBlock, block_type.load(name))
            except BudClusterError as exc:
                if problems is None:
                    raise
                problems[f"{block_type.get_block_type_slug()}/{name}"] = str(exc)
                continue
            found.append(StoredCredential(block_type, name, block))
    return found


@dataclass
class RotationReport:
    resealed: list[str] = field(default_factory=list)
    already_current: list[str] = field(default_factory=list)
    # Saved before bindings existed: bound now, with their fields as they were found.
    bound: list[str] = field(default_factory=list)
    # label -> why it could not be re-sealed; while any is here no key may be retired.
    failed: dict[str, str] = field(default_factory=dict)


def reseal_all(keyring: Keyring, *, accept_unbound: bool = False) -> RotationReport:
    """Re-seal and re-bind every credential not yet wholly under the active key.

    Each block is saved on its own; a rerun after an interruption picks up where the
    last one stopped, because the keyring still holds the previous keys. A block that
    cannot be re-sealed (edited without the key, unreadable) is reported and skipped, so
    one bad block neither stops the others nor lets its key be retired. Blocks without a
    binding are read as they are only with ``accept_unbound``.
    """
    report = RotationReport()
    for block_type in CREDENTIAL_BLOCK_TYPES:
        for name in _block_names(block_type.get_block_type_slug()):
            label = f"{block_type.get_block_type_slug()}/{name}"
            try:
                with accepting_unbound_blocks() if accept_unbound else nullcontext():
                    block = cast(SealedCredentialsBlock, block_type.load(name))
                    unbound = block.binding is None
                    if not unbound and set(block.key_ids().values()) <= {keyring.active_key_id}:
                        report.already_current.append(label)
                        continue
                    block.resealed(keyring).save(name, overwrite=True)
            except BudClusterError as exc:
                report.failed[label] = str(exc)
                continue
            (report.bound if unbound else report.resealed).append(label)
    return report


def verify_all(keyring: Keyring) -> dict[str, str]:
    """Problems of the stored credentials under the active key alone; {} when all is well.

    Each block is loaded (its binding checked) and each secret opened with a keyring that
    holds no previous key, so success means nothing still depends on an old one.
    """
    active_only = keyring.only_active()
    problems: dict[str, str] = {}
    for block_type in CREDENTIAL_BLOCK_TYPES:
        for name in _block_names(block_type.get_block_type_slug()):
            label = f"{block_type.get_block_type_slug()}/{name}"
            try:
                block = cast(SealedCredentialsBlock, block_type.load(name))
                block.verify_binding(name, active_only)
                for field_name in block._sealed_fields:
                    block._open(field_name, active_only)
                stale = set(block.key_ids().values()) - {keyring.active_key_id}
            except BudClusterError as exc:
                problems[label] = str(exc)
                continue
            if stale:
                problems[label] = f"still sealed with key(s) {', '.join(sorted(stale))}"
    return problems


def key_ids_referenced() -> dict[str, list[str]]:
    """Every key id any block document on the API names in an envelope -> those blocks.

    Reads every document, of any type (also types this project does not list, and
    anonymous ones): a previous key must stay while anything sealed with it is stored.
    """

    async def read() -> dict[str, list[str]]:
        found: dict[str, set[str]] = {}
        async with get_client() as client:
            everything = {"block_documents": {"is_anonymous": None}}
            expected = (
                await client.request("POST", "/block_documents/count", json=everything)
            ).json()
            seen = 0
            while True:
                page = await client.request(
                    "POST",
                    "/block_documents/filter",
                    json={
                        **everything,
                        # Secret fields too: a sealed field may be declared SecretStr.
                        "include_secrets": True,
                        "sort": "BLOCK_TYPE_AND_NAME_ASC",
                        "offset": seen,
                        "limit": _PAGE,
                    },
                )
                documents = BlockDocument.model_validate_list(page.json())
                for document in documents:
                    slug = document.block_type.slug if document.block_type else "?"
                    label = f"{slug}/{document.name or document.id}"
                    for kid in _envelope_key_ids(document.data):
                        found.setdefault(kid, set()).add(label)
                seen += len(documents)
                if len(documents) < _PAGE:
                    break
        if seen != expected:
            raise TemporaryError(
                f"the Prefect API listed {seen} block documents but counts {expected}: blocks "
                "were added or removed during the scan. Rerun the command."
            )
        return {kid: sorted(labels) for kid, labels in found.items()}

    return run_coro_as_sync(read()) or {}


def key_ids_in_use() -> set[str]:
    return set(key_ids_referenced())


_PAGE = 200
_ENVELOPE = re.compile(r"bsc1\.([0-9a-f]{16})\.")


def _envelope_key_ids(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        match = _ENVELOPE.match(value)
        if match:
            yield match.group(1)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _envelope_key_ids(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _envelope_key_ids(item)


def _block_names(slug: str) -> list[str]:
    async def read() -> list[str]:
        async with get_client() as client:
            try:
                documents = await client.read_block_documents_by_type(slug, include_secrets=False)
            except ObjectNotFound:
                return []
            except PrefectHTTPStatusError as exc:
                if exc.response.status_code == 404:  # a type never registered has no blocks
                    return []
                raise
            return [d.name for d in documents if d.name and not d.is_anonymous]

    return run_coro_as_sync(read()) or []
