"""`keys rotate` keeps a previous key while anything stored still needs it.

Cases where the old rotation retired (deleted) a key that sealed blocks still needed,
which made them unreadable for good: a block of a type rotation does not list, blocks
on another Prefect API that shares the key directory; and a block that cannot be
re-sealed used to stop the rotation of every block after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, cast

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import BlockDocumentUpdate
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.utilities.asyncutils import run_coro_as_sync
from pydantic import Field
from typer.testing import CliRunner

from blocks._sealed import SealedCredentialsBlock
from blocks.cloud import AwsCredentials
from blocks.hosts import HostInventory
from budcluster.cli.app import app
from budcluster.crypto import CryptoError, Keyring, init_keys
from budcluster.settings import get_settings
from tests.support.prefect_server import PrefectServer, running_prefect_server

INVENTORY = "all:\n  hosts:\n    web1:\n"


class ProbeToken(SealedCredentialsBlock):
    """A credential type of some other package, built on the same sealed base.

    Example:
        ```python
        from tests.blocks.test_rotation_keeps_needed_keys import ProbeToken

        token = ProbeToken.load("BLOCK_NAME")
        ```
    """

    _block_type_name = "Probe Token"
    _sealed_fields: ClassVar[tuple[str, ...]] = ("token",)

    token: str = Field(description="A token, sealed (bsc1 envelope).")

    @classmethod
    def make(cls, name: str, token: str) -> ProbeToken:
        return cls._build(name, {"token": token})


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def keys(tmp_path: Path, prefect_server: PrefectServer) -> Iterator[Path]:
    """A fresh key directory per test; the module's Prefect server as the API."""
    directory = tmp_path / "crypto-keys"
    init_keys(directory)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BUDCLUSTER_KEYS_DIR", str(directory))
        get_settings.cache_clear()
        with temporary_settings({PREFECT_API_URL: prefect_server.api_url}):
            yield directory
            _delete_all_blocks()
    get_settings.cache_clear()


def _delete_all_blocks() -> None:
    async def delete() -> None:
        async with get_client() as client:
            for document in await client.read_block_documents():
                await client.delete_block_document(document.id)

    run_coro_as_sync(delete())


def _aws(name: str, secret: str) -> AwsCredentials:
    block = AwsCredentials.from_keys(name, access_key_id=f"id-{name}", secret_access_key=secret)
    block.save(name, overwrite=True)
    return block


def _secret(name: str) -> str:
    return cast(AwsCredentials, AwsCredentials.load(name)).as_environment()["AWS_SECRET_ACCESS_KEY"]


def test_a_key_still_used_by_an_unlisted_block_type_is_kept(keys: Path) -> None:
    first = Keyring.load(keys).active_key_id
    _aws("listed", "listed-secret")
    ProbeToken.make("probe", "probe-token").save("probe", overwrite=True)

    result = invoke("keys", "rotate")
    assert result.exit_code == 0, result.output
    assert first in Keyring.load(keys).previous, result.output
    assert "probe-token/probe" in result.output  # named as what still needs the key
    probe = cast(ProbeToken, ProbeToken.load("probe"))
    assert probe._open("token") == "probe-token"
    assert _secret("listed") == "listed-secret"


def test_a_key_still_used_on_another_prefect_api_is_kept(keys: Path, tmp_path: Path) -> None:
    first = Keyring.load(keys).active_key_id
    _aws("here", "secret-here")
    with running_prefect_server(tmp_path / "other-prefect") as other:
        with temporary_settings({PREFECT_API_URL: other.api_url}):
            _aws("there", "secret-there")

        result = invoke("keys", "rotate")  # against the module's server only
        assert result.exit_code == 0, result.output
        assert first in Keyring.load(keys).previous, result.output
        assert other.api_url.rstrip("/") in result.output
        assert _secret("here") == "secret-here"

        with temporary_settings({PREFECT_API_URL: other.api_url}):
            assert _secret("there") == "secret-there"  # still opens: its key was kept
            # Re-sealing that API too, under the same new key, frees the old one.
            finish = invoke("keys", "reseal")
            assert finish.exit_code == 0, finish.output
            assert _secret("there") == "secret-there"
            there_keys = set(AwsCredentials.load("there").key_ids().values())
    final = Keyring.load(keys)
    assert final.previous == {}, finish.output
    assert there_keys == {final.active_key_id}
    assert _secret("here") == "secret-here"


def test_a_block_that_cannot_be_resealed_stops_nothing_else_and_keeps_the_key(
    keys: Path,
) -> None:
    first = Keyring.load(keys).active_key_id
    for name in ("a-good", "b-bad", "c-good"):
        _aws(name, f"secret-{name}")
    _patch(AwsCredentials, "b-bad", {"region": "attacker-region"})

    result = invoke("keys", "rotate")
    assert result.exit_code == 1
    assert "b-bad" in result.output and "region" in result.output
    keyring = Keyring.load(keys)
    assert first in keyring.previous  # nothing retired while a block is unresolved
    for name in ("a-good", "c-good"):  # both sides of the bad block were re-sealed
        assert set(AwsCredentials.load(name).key_ids().values()) == {keyring.active_key_id}
        assert _secret(name) == f"secret-{name}"


def test_rotation_does_not_bind_a_block_whose_binding_was_stripped(keys: Path) -> None:
    HostInventory.from_inventory("stripped", INVENTORY).save("stripped", overwrite=True)
    _patch(HostInventory, "stripped", {"binding": None, "inventory": "evil: {}\n"})

    result = invoke("keys", "rotate")
    assert result.exit_code == 1
    assert "stripped" in result.output
    with pytest.raises(CryptoError):
        HostInventory.load("stripped")  # still refused: rotation did not launder it

    trusted = invoke("keys", "reseal", "--trust-unbound")  # the operator's explicit choice
    assert trusted.exit_code == 0, trusted.output
    assert "bud-host-inventory/stripped" in trusted.output
    assert HostInventory.load("stripped").inventory == "evil: {}\n"


def test_rotation_binds_blocks_saved_before_bindings_once(keys: Path) -> None:
    (keys / "bindings-required").unlink()  # keys from before bindings existed
    get_settings.cache_clear()
    block = HostInventory.from_inventory("legacy", INVENTORY, become_password="pw")
    block.binding = None
    block.save("legacy", overwrite=True)
    with pytest.raises(CryptoError, match="keys rotate"):
        HostInventory.load("legacy")

    result = invoke("keys", "rotate")
    assert result.exit_code == 0, result.output
    assert "bud-host-inventory/legacy" in result.output
    loaded = cast(HostInventory, HostInventory.load("legacy"))
    assert loaded.get_become_password() == "pw"
    assert Keyring.load(keys).bindings_required  # from now on an unbound block is refused


def _patch(block_type: type[SealedCredentialsBlock], name: str, data: dict[str, Any]) -> None:
    async def patch() -> None:
        async with get_client() as client:
            document = await client.read_block_document_by_name(
                name, block_type.get_block_type_slug()
            )
            await client.update_block_document(
                document.id, BlockDocumentUpdate(data=data, merge_existing_data=True)
            )

    run_coro_as_sync(patch())
