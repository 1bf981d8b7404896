"""Key files are refused unless private to this user, like ssh does; `keys init` says
plainly when its directory is unusable."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from budcluster.cli.app import app
from budcluster.crypto import CryptoError, Keyring, init_keys, rotate_active_key
from budcluster.crypto.keyring import PREVIOUS_DIR
from budcluster.settings import get_settings


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("template") / "crypto-keys"
    init_keys(directory)
    rotate_active_key(directory)  # so there is a previous key to check too
    return directory


@pytest.fixture
def keys(template: Path, tmp_path: Path) -> Path:
    """A private copy of the template keys, safe to chmod."""
    directory = tmp_path / "crypto-keys"
    for source in template.rglob("*"):
        target = directory / source.relative_to(template)
        if source.is_dir():
            target.mkdir(parents=True, mode=0o700, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
            target.write_bytes(source.read_bytes())
            target.chmod(0o600)
    directory.chmod(0o700)
    return directory


def _key_file(keys: Path, which: str) -> Path:
    if which == "previous":
        return next((keys / PREVIOUS_DIR).glob("rsa-private-key-*.pem"))
    return keys / which


KEY_FILES = ["rsa-private-key.pem", "symmetric-key-256", "previous"]


def test_private_copies_load(keys: Path) -> None:
    # Control: the copies themselves are fine, so the refusals below are about modes.
    assert len(Keyring.load(keys).previous) == 1


@pytest.mark.parametrize("which", KEY_FILES)
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o620])
def test_a_key_file_open_to_group_or_others_is_refused(keys: Path, which: str, mode: int) -> None:
    path = _key_file(keys, which)
    path.chmod(mode)
    with pytest.raises(CryptoError) as info:
        Keyring.load(keys)
    message = str(info.value)
    assert str(path) in message
    assert f"chmod 600 {path}" in message
    assert oct(mode)[2:] in message
    assert "\n" not in message


@pytest.mark.parametrize("which", KEY_FILES)
def test_a_key_file_owned_by_another_user_is_refused(
    keys: Path, which: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _key_file(keys, which)
    other = os.getuid() + 4242
    if os.getuid() == 0:
        os.chown(path, other, -1)  # really owned by someone else
    else:
        # Without root a file cannot be given away; pretend to be someone else instead.
        monkeypatch.setattr(os, "getuid", lambda: other)
    with pytest.raises(CryptoError) as info:
        Keyring.load(keys)
    message = str(info.value)
    assert str(path) in message and "owned by uid" in message
    assert "\n" not in message


def test_keys_init_makes_0600_files_in_a_0700_dir_whatever_the_umask(tmp_path: Path) -> None:
    target = tmp_path / "loose" / "crypto-keys"
    target.mkdir(parents=True, mode=0o777)
    target.chmod(0o777)
    previous_umask = os.umask(0)
    try:
        result = CliRunner().invoke(app, ["keys", "init", "--dir", str(target)])
    finally:
        os.umask(previous_umask)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    files = [p for p in target.iterdir()]
    assert {p.name for p in files} >= {"rsa-private-key.pem", "symmetric-key-256"}
    for path in files:
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    Keyring.load(target)  # and the strict loader accepts what init made


def test_keys_init_with_a_file_as_dir_says_so_in_one_line(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "keys.txt"
    not_a_dir.write_text("x")
    result = CliRunner().invoke(app, ["keys", "init", "--dir", str(not_a_dir)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert str(not_a_dir) in lines[0] and "not a directory" in lines[0]
    assert "Traceback" not in result.output


def test_keys_init_under_a_file_says_so_in_one_line(tmp_path: Path) -> None:
    a_file = tmp_path / "keys.txt"
    a_file.write_text("x")
    result = CliRunner().invoke(app, ["keys", "init", "--dir", str(a_file / "crypto-keys")])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "error:" in result.output


def test_the_cached_keyring_of_the_blocks_sees_a_chmod(
    keys: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from blocks.keyring_cache import load_keyring

    monkeypatch.setenv("BUDCLUSTER_KEYS_DIR", str(keys))
    get_settings.cache_clear()
    try:
        assert load_keyring() is load_keyring()  # cached while nothing changes
        (keys / "symmetric-key-256").chmod(0o644)
        with pytest.raises(CryptoError, match="chmod 600"):
            load_keyring()
    finally:
        get_settings.cache_clear()
