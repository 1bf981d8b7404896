"""The project's credential block types, their registration, and key rotation over them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from prefect.utilities.asyncutils import run_coro_as_sync

from blocks._sealed import SealedCredentialsBlock
from blocks.cloud import AwsCredentials, AzureCredentials
from blocks.hosts import HostInventory
from blocks.kubeconfig import KubeconfigCredentials
from blocks.s3 import S3Registry
from budcluster.crypto import Keyring

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


def list_credentials() -> list[StoredCredential]:
    """Every saved credential block of the project's types, loaded (still sealed)."""
    found = []
    for block_type in CREDENTIAL_BLOCK_TYPES:
        for name in _block_names(block_type.get_block_type_slug()):
            block = cast(SealedCredentialsBlock, block_type.load(name))
            found.append(StoredCredential(block_type, name, block))
    return found


@dataclass
class RotationReport:
    resealed: list[str] = field(default_factory=list)
    already_current: list[str] = field(default_factory=list)


def reseal_all(keyring: Keyring) -> RotationReport:
    """Re-seal every credential not yet under the active key.

    Each block is saved on its own; a rerun after an interruption picks up where the
    last one stopped, because the keyring still holds the previous keys.
    """
    report = RotationReport()
    for credential in list_credentials():
        label = f"{credential.block_type.get_block_type_slug()}/{credential.name}"
        if set(credential.block.key_ids().values()) <= {keyring.active_key_id}:
            report.already_current.append(label)
            continue
        values = credential.block.resealed(keyring)
        updated = credential.block.model_copy(update=values)
        updated.save(credential.name, overwrite=True)
        report.resealed.append(label)
    return report


def key_ids_in_use() -> set[str]:
    return {kid for c in list_credentials() for kid in c.block.key_ids().values()}


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
