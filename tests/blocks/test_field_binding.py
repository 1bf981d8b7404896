"""Every field of a credential block is authenticated: an edit made through the Prefect
API without the key makes the block refuse to load, on every load path.

The attacker here has the Prefect API (UI, token, database) but not crypto-keys/: they
patch a saved block document the way the UI's edit form does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import BlockDocumentUpdate
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.utilities.asyncutils import run_coro_as_sync

from blocks._sealed import SealedCredentialsBlock
from blocks.cloud import AwsCredentials, AzureCredentials
from blocks.hosts import HostInventory
from blocks.kubeconfig import KubeconfigCredentials
from blocks.registry import list_credentials
from blocks.s3 import S3Registry
from budcluster.crypto import CryptoError, init_keys
from budcluster.settings import get_settings
from tests.support.prefect_server import PrefectServer

INVENTORY = "all:\n  hosts:\n    web1:\n      ansible_host: 10.0.0.5\n"
EVIL_INVENTORY = (
    "all:\n  hosts:\n    web1:\n      ansible_connection: local\n"
    "      ansible_host: \"{{ lookup('pipe', 'id') }}\"\n"
)
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster: {server: "https://10.0.0.1:6443"}
contexts:
- name: lab-admin
  context: {cluster: lab, user: admin}
current-context: lab-admin
users:
- name: admin
  user: {token: abc}
"""

MAKERS: dict[str, Callable[[str], SealedCredentialsBlock]] = {
    "hosts": lambda name: HostInventory.from_inventory(
        name, INVENTORY, ssh_private_key="-----BEGIN KEY-----\nk\n", become_password="pw"
    ),
    "hosts-secretless": lambda name: HostInventory.from_inventory(name, INVENTORY),
    "s3": lambda name: S3Registry.from_keys(
        name,
        bucket="llm",
        endpoint_url="https://minio.internal:9000",
        region="eu-west-1",
        access_key_id="AKIA1",
        secret_access_key="s3-secret",
    ),
    "kubeconfig": lambda name: KubeconfigCredentials.from_kubeconfig(name, KUBECONFIG),
    "aws": lambda name: AwsCredentials.from_keys(
        name, access_key_id="AKIA2", secret_access_key="aws-secret", region="eu-west-1"
    ),
    "azure": lambda name: AzureCredentials.from_secret(
        name, tenant_id="t", subscription_id="s", client_id="c", client_secret="az-secret"
    ),
}
ADD_COMMAND = {
    "hosts": "add-hosts",
    "hosts-secretless": "add-hosts",
    "s3": "add-s3",
    "kubeconfig": "add-kubeconfig",
    "aws": "add-aws",
    "azure": "add-azure",
}


@pytest.fixture(scope="module")
def keys_env(workdir: Path, prefect_server: PrefectServer) -> Iterator[Path]:
    keys = workdir / "crypto-keys"
    init_keys(keys)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BUDCLUSTER_KEYS_DIR", str(keys))
        get_settings.cache_clear()
        with temporary_settings({PREFECT_API_URL: prefect_server.api_url}):
            yield keys
    get_settings.cache_clear()


def _saved(kind: str, name: str) -> SealedCredentialsBlock:
    block = MAKERS[kind](name)
    block.save(name, overwrite=True)
    return block


def _patch(block_type: type[SealedCredentialsBlock], name: str, data: dict[str, Any]) -> None:
    """What an API user without the key can do: rewrite fields of the stored document."""

    async def patch() -> None:
        async with get_client() as client:
            document = await client.read_block_document_by_name(
                name, block_type.get_block_type_slug(), include_secrets=True
            )
            await client.update_block_document(
                document.id, BlockDocumentUpdate(data=data, merge_existing_data=True)
            )

    run_coro_as_sync(patch())


def _document_data(block_type: type[SealedCredentialsBlock], name: str) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        async with get_client() as client:
            document = await client.read_block_document_by_name(
                name, block_type.get_block_type_slug(), include_secrets=True
            )
            return dict(document.data)

    return run_coro_as_sync(read()) or {}


def _edited_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {**value, "extra": "hmac-sha256:0000000000000000"}
    if isinstance(value, str) and value.startswith("bsc1."):
        parts = value.split(".")
        return ".".join([*parts[:4], parts[4][::-1]])  # same shape, other ciphertext
    if value is None:
        return "attacker-chosen"
    return f"{value}-edited"


def _field_cases() -> list[tuple[str, str]]:
    block_types = {
        "hosts": HostInventory,
        "hosts-secretless": HostInventory,
        "s3": S3Registry,
        "kubeconfig": KubeconfigCredentials,
        "aws": AwsCredentials,
        "azure": AzureCredentials,
    }
    return [
        (kind, field_name)
        for kind, block_type in block_types.items()
        for field_name in block_type.model_fields
        if field_name != "binding"
    ]


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_an_unedited_block_loads_and_opens(keys_env: Path, kind: str) -> None:
    name = f"clean-{kind}"
    original = _saved(kind, name)
    loaded = type(original).load(name)
    for field_name in type(original).model_fields:
        assert getattr(loaded, field_name) == getattr(original, field_name)
    for field_name in type(original)._sealed_fields:
        loaded._open(field_name)  # opens without error


@pytest.mark.parametrize(("kind", "field_name"), _field_cases())
def test_editing_any_field_through_the_api_makes_load_refuse(
    keys_env: Path, kind: str, field_name: str
) -> None:
    name = f"edit-{kind}-{field_name}".replace("_", "-")
    block = _saved(kind, name)
    block_type = type(block)
    stored = _document_data(block_type, name)
    assert field_name in stored, stored.keys()
    _patch(block_type, name, {field_name: _edited_value(stored[field_name])})
    assert _document_data(block_type, name)[field_name] != stored[field_name]  # edit stored

    with pytest.raises(CryptoError) as info:
        block_type.load(name)
    message = str(info.value)
    assert name in message and field_name in message
    assert f"budcluster credentials {ADD_COMMAND[kind]}" in message
    assert "\n" not in message


def test_an_edited_inventory_is_refused_on_every_load_path(keys_env: Path) -> None:
    name = "hosts-evil"
    _saved("hosts-secretless", name)
    _patch(HostInventory, name, {"inventory": EVIL_INVENTORY})

    async def read_id() -> Any:
        async with get_client() as client:
            return (await client.read_block_document_by_name(name, "bud-host-inventory")).id

    document_id = run_coro_as_sync(read_id())
    with pytest.raises(CryptoError, match="inventory"):
        HostInventory.load(name)
    with pytest.raises(CryptoError, match="inventory"):
        asyncio.run(HostInventory.aload(name))
    with pytest.raises(CryptoError, match="inventory"):
        HostInventory.load_from_ref(document_id)
    with pytest.raises(CryptoError, match="inventory"):
        HostInventory.load(name, validate=False)


def test_endpoint_redirect_is_refused_before_any_key_is_sent(keys_env: Path) -> None:
    _saved("s3", "models-redirect")
    _patch(S3Registry, "models-redirect", {"endpoint_url": "https://attacker.example"})
    with pytest.raises(CryptoError, match="endpoint_url"):
        S3Registry.load("models-redirect")


def test_a_block_copied_under_another_name_is_refused(keys_env: Path) -> None:
    original = _saved("hosts-secretless", "copy-source")
    copy = original.model_copy()
    copy.save("copy-target", overwrite=True)
    with pytest.raises(CryptoError, match="copy-target"):
        HostInventory.load("copy-target")


def test_removing_the_binding_does_not_make_the_block_trusted(keys_env: Path) -> None:
    _saved("hosts-secretless", "unbound")
    _patch(HostInventory, "unbound", {"binding": None, "inventory": EVIL_INVENTORY})
    with pytest.raises(CryptoError) as info:
        HostInventory.load("unbound")
    message = str(info.value)
    assert "unbound" in message and "budcluster credentials add-hosts" in message
    # These keys have always bound their blocks, so rotation must not be offered as a fix:
    # it would bind the attacker's inventory.
    assert "keys rotate" not in message
    assert "\n" not in message


def test_a_block_saved_before_bindings_is_refused_with_the_fix(
    keys_env: Path, workdir: Path
) -> None:
    # A keyring from before bindings (no marker) and a block saved without one: the
    # message offers both fixes, rotation included.
    legacy_keys = workdir / "legacy-keys"
    init_keys(legacy_keys)
    (legacy_keys / "bindings-required").unlink()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BUDCLUSTER_KEYS_DIR", str(legacy_keys))
        get_settings.cache_clear()
        try:
            block = HostInventory.from_inventory("old-hosts", INVENTORY, become_password="pw")
            block.binding = None
            block.save("old-hosts", overwrite=True)
            with pytest.raises(CryptoError) as info:
                HostInventory.load("old-hosts")
        finally:
            get_settings.cache_clear()
    message = str(info.value)
    assert "old-hosts" in message and "budcluster keys rotate" in message
    assert "budcluster credentials add-hosts" in message


def test_the_generic_block_load_path_opens_no_secret_of_an_edited_block(keys_env: Path) -> None:
    # Block.load("slug/name") bypasses the typed hook; the secrets still stay shut.
    _saved("hosts", "hosts-generic")
    _patch(HostInventory, "hosts-generic", {"inventory": EVIL_INVENTORY})
    block = cast(HostInventory, Block.load("bud-host-inventory/hosts-generic"))
    with pytest.raises(CryptoError, match="inventory"):
        block.get_become_password()
    with pytest.raises(CryptoError, match="inventory"), block.ssh_key_file():
        pass


def test_a_listing_names_edited_blocks_and_shows_the_rest(keys_env: Path) -> None:
    _saved("aws", "listed-clean")
    _saved("aws", "listed-edited")
    _patch(AwsCredentials, "listed-edited", {"region": "attacker-region"})
    with pytest.raises(CryptoError):  # the first edited block on the server, whichever it is
        list_credentials()
    problems: dict[str, str] = {}
    names = {c.name for c in list_credentials(problems)}
    assert "listed-clean" in names and "listed-edited" not in names
    assert "region" in problems["bud-aws-credentials/listed-edited"]
