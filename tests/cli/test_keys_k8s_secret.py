"""`budcluster keys k8s-secret` without a cluster: the manifest on stdout or in a 0600 file,
exactly one destination, names checked, and missing keys refused before anything is written.
(--apply, create and replace, runs against the emulator in
tests/kubernetes/test_worker_keys_on_emulator.py.)"""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from budcluster.cli.app import app
from budcluster.crypto import init_keys


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("k8s-secret") / "crypto-keys"
    init_keys(directory)
    return directory


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["keys", "k8s-secret", *args])
    return result.exit_code, result.stdout, result.stderr


def test_yaml_on_stdout_is_an_applicable_secret_of_the_key_files(keys: Path) -> None:
    code, out, _ = _run("-n", "budcluster", "-o", "yaml", "--dir", str(keys))
    assert code == 0
    manifest = yaml.safe_load(out)
    assert manifest["kind"] == "Secret" and manifest["apiVersion"] == "v1"
    assert manifest["metadata"]["name"] == "budcluster-crypto-keys"
    assert manifest["metadata"]["namespace"] == "budcluster"
    data = manifest["data"]
    assert (
        base64.b64decode(data["rsa-private-key.pem"]) == (keys / "rsa-private-key.pem").read_bytes()
    )
    assert base64.b64decode(data["symmetric-key-256"]) == (keys / "symmetric-key-256").read_bytes()
    code, out, _ = _run("-n", "budcluster", "-o", "json", "--name", "k", "--dir", str(keys))
    assert code == 0 and json.loads(out)["metadata"]["name"] == "k"


def test_file_is_created_private_and_only_a_summary_is_printed(keys: Path, tmp_path: Path) -> None:
    target = tmp_path / "secret.yaml"
    code, out, _ = _run("-n", "budcluster", "--file", str(target), "--dir", str(keys))
    assert code == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert yaml.safe_load(target.read_text())["data"]["rsa-private-key.pem"]
    assert out.startswith("wrote Secret budcluster/budcluster-crypto-keys: rsa-private-key.pem, ")
    assert "PRIVATE KEY" not in out and "LS0t" not in out  # neither PEM nor its base64


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "choose exactly one of -o yaml|json (stdout), --file PATH (mode 0600) or --apply"),
        (("-o", "yaml", "--apply"), "got -o, --apply"),
        (("-o", "xml"), "-o/--output: 'xml' is not yaml or json"),
    ],
)
def test_exactly_one_destination(keys: Path, args: tuple[str, ...], message: str) -> None:
    code, out, err = _run("-n", "budcluster", "--dir", str(keys), *args)
    assert code == 2 and message in err and out == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-n", "Bud_NS"), "--namespace: 'Bud_NS' is not a namespace name"),
        (("-n", "ns", "--name", "a/b"), "--name: 'a/b' is not a valid Secret name"),
    ],
)
def test_names_are_checked(keys: Path, args: tuple[str, ...], message: str) -> None:
    code, out, err = _run(*args, "-o", "yaml", "--dir", str(keys))
    assert code == 2 and message in err and out == ""


def test_missing_keys_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    target = tmp_path / "secret.yaml"
    code, _, err = _run("-n", "ns", "--file", str(target), "--dir", str(tmp_path / "none"))
    assert code == 1 and "rsa-private-key.pem is missing" in err
    assert not target.exists()
