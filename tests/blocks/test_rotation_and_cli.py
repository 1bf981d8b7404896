"""Key rotation that survives interruption, and the credentials commands end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.blocks.core import Block
from prefect.settings import PREFECT_API_URL, temporary_settings
from typer.testing import CliRunner

from blocks.cloud import AwsCredentials, AzureCredentials
from blocks.hosts import HostInventory
from blocks.s3 import S3Registry
from budcluster.cli.app import app
from budcluster.crypto import Keyring
from budcluster.settings import get_settings
from tests.support.prefect_server import PrefectServer

BUDCLUSTER = str(Path(sys.executable).with_name("budcluster"))
INVENTORY = "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"


@pytest.fixture(scope="module")
def keys_env(workdir: Path, prefect_server: PrefectServer) -> Iterator[Path]:
    """One keyring for the module: rotation re-seals every block on the server."""
    keys = workdir / "crypto-keys"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BUDCLUSTER_KEYS_DIR", str(keys))
        get_settings.cache_clear()
        with temporary_settings({PREFECT_API_URL: prefect_server.api_url}):
            assert invoke("keys", "init").exit_code == 0
            yield keys
    get_settings.cache_clear()


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    return result


def test_s3_aws_azure_hosts_are_sealed_and_listed(keys_env: Path, tmp_path: Path) -> None:
    env = {"AWS_ACCESS_KEY_ID": "AKIA-EXAMPLE-ID", "AWS_SECRET_ACCESS_KEY": "s3-secret-value"}
    result = invoke(
        "credentials",
        "add-s3",
        "models",
        "--endpoint",
        "http://127.0.0.1:9",
        "--bucket",
        "llm",
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert invoke("credentials", "add-aws", "aws1", "--region", "eu-west-1", env=env).exit_code == 0
    azure_env = {
        "AZURE_TENANT_ID": "t",
        "AZURE_SUBSCRIPTION_ID": "s",
        "AZURE_CLIENT_ID": "c",
        "AZURE_CLIENT_SECRET": "azure-secret-value",
    }
    assert invoke("credentials", "add-azure", "az1", env=azure_env).exit_code == 0
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(INVENTORY)
    key = tmp_path / "id_test"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nssh-key-material\n")
    assert (
        invoke("credentials", "add-hosts", "local", str(inventory), "--ssh-key", str(key)).exit_code
        == 0
    )

    listing = invoke("credentials", "list").output
    for name in ("models", "aws1", "az1", "local"):
        assert name in listing
    for secret in ("AKIA-EXAMPLE-ID", "s3-secret-value", "azure-secret-value", "ssh-key-material"):
        assert secret not in listing

    s3 = S3Registry.load("models")
    assert "s3-secret-value" not in s3.model_dump_json()
    assert s3.get_client().meta.endpoint_url == "http://127.0.0.1:9"
    assert (
        AwsCredentials.load("aws1").as_environment()["AWS_SECRET_ACCESS_KEY"] == "s3-secret-value"
    )
    assert (
        AzureCredentials.load("az1").as_environment()["ARM_CLIENT_SECRET"] == "azure-secret-value"
    )
    hosts = HostInventory.load("local")
    with hosts.ssh_key_file() as path:
        assert path is not None and path.read_text().endswith("ssh-key-material\n")
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        kept = path
    assert not kept.exists()


def test_secret_is_never_taken_from_argv(keys_env: Path) -> None:
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run(
        [BUDCLUSTER, "credentials", "add-s3", "x", "--endpoint", "http://h", "--bucket", "b"],
        env=clean_env | {"PREFECT_API_URL": "http://127.0.0.1:9/api"},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert done.returncode == 2
    assert "set AWS_ACCESS_KEY_ID" in done.stderr
    assert "--secret" not in invoke("credentials", "add-s3", "--help").output


def test_duplicate_name_needs_overwrite(keys_env: Path, tmp_path: Path) -> None:
    inventory = tmp_path / "inv.yml"
    inventory.write_text(INVENTORY)
    assert invoke("credentials", "add-hosts", "dup", str(inventory)).exit_code == 0
    again = invoke("credentials", "add-hosts", "dup", str(inventory))
    assert again.exit_code == 1 and "--overwrite" in again.output
    assert invoke("credentials", "add-hosts", "dup", str(inventory), "--overwrite").exit_code == 0


def test_add_hosts_keeps_the_known_hosts_file_and_refuses_a_bad_line(
    keys_env: Path, tmp_path: Path
) -> None:
    inventory = tmp_path / "inv.yml"
    inventory.write_text(INVENTORY)
    known = tmp_path / "known_hosts"
    known.write_text("[10.0.0.5]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOdc\n")
    added = invoke("credentials", "add-hosts", "kh", str(inventory), "--known-hosts", str(known))
    assert added.exit_code == 0, added.output
    with HostInventory.load("kh").known_hosts_file() as path:
        assert path is not None and path.read_text() == known.read_text()
    known.write_text("10.0.0.5 ssh-ed25519 AAAA\nssh-rsa\n")
    refused = invoke("credentials", "add-hosts", "kh2", str(inventory), "--known-hosts", str(known))
    assert refused.exit_code != 0
    assert "known_hosts line 2 is not" in refused.output


def test_rotation_interrupted_midway_loses_nothing_and_resumes(
    keys_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets_by_block = {f"rot{i}": f"secret-number-{i}" for i in range(4)}
    for name, secret in secrets_by_block.items():
        env = {"AWS_ACCESS_KEY_ID": f"id-{name}", "AWS_SECRET_ACCESS_KEY": secret}
        assert invoke("credentials", "add-aws", name, env=env).exit_code == 0
    first_key = Keyring.load(keys_env).active_key_id

    original_save = Block.save
    saved_before_crash: list[str] = []

    def crash_before_rot2(self: Block, *args: Any, **kwargs: Any) -> Any:
        name = args[0] if args else kwargs.get("name")
        if name == "rot2":
            raise KeyboardInterrupt("simulated crash during rotation")
        saved_before_crash.append(str(name))
        return original_save(self, *args, **kwargs)  # type: ignore[call-arg]

    monkeypatch.setattr(Block, "save", crash_before_rot2)
    interrupted = invoke("keys", "rotate")  # click turns the interrupt into an abort
    assert interrupted.exit_code != 0 and "rot1" in saved_before_crash
    monkeypatch.setattr(Block, "save", original_save)

    # Mid-rotation: some blocks on the new key, some on the old; all still open.
    keyring = Keyring.load(keys_env)
    assert first_key in keyring.previous
    on_keys = {
        name: AwsCredentials.load(name).key_ids()["access_key_id"] for name in secrets_by_block
    }
    assert on_keys["rot0"] != on_keys["rot2"], (
        on_keys
    )  # the crash really happened midway  # the crash really happened midway
    for name, secret in secrets_by_block.items():
        assert AwsCredentials.load(name).as_environment()["AWS_SECRET_ACCESS_KEY"] == secret

    result = invoke("keys", "rotate")
    assert result.exit_code == 0, result.output
    final = Keyring.load(keys_env)
    assert final.previous == {}  # old keys retired only after everything was re-sealed
    for name, secret in secrets_by_block.items():
        block = AwsCredentials.load(name)
        assert set(block.key_ids().values()) == {final.active_key_id}
        assert block.as_environment()["AWS_SECRET_ACCESS_KEY"] == secret
