"""Envelope encryption: round trip, binding, and the distinct failure modes."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from budcluster.crypto import (
    KeyFileExistsError,
    Keyring,
    MalformedEnvelopeError,
    MissingKeyError,
    TamperedCiphertextError,
    WrongKeyError,
    init_keys,
    open_envelope,
    read_header,
    rotate_active_key,
    seal,
)
from budcluster.crypto.keyring import retire_previous_keys

OWNER = "kubeconfig-credentials/c1/kubeconfig"


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("keys") / "crypto-keys"
    init_keys(directory)
    return directory


@pytest.fixture(scope="module")
def keyring(keys_dir: Path) -> Keyring:
    return Keyring.load(keys_dir)


def test_round_trip_and_fresh_data_key_per_secret(keyring: Keyring) -> None:
    first = seal(keyring, b"s3cret", OWNER)
    second = seal(keyring, b"s3cret", OWNER)
    assert first != second  # new data key and nonce every time
    assert b"s3cret" not in first.encode()
    assert open_envelope(keyring, first, OWNER) == b"s3cret"
    assert open_envelope(keyring, second, OWNER) == b"s3cret"


def test_header_names_version_and_key(keyring: Keyring) -> None:
    header = read_header(seal(keyring, b"x", OWNER))
    assert header.version == "bsc1"
    assert header.key_id == keyring.active_key_id
    assert len(header.key_id) == 16


def test_key_files_are_private_and_shaped_like_the_original(keys_dir: Path) -> None:
    rsa_path = keys_dir / "rsa-private-key.pem"
    sym_path = keys_dir / "symmetric-key-256"
    assert stat.S_IMODE(rsa_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(sym_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700
    assert rsa_path.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert len(bytes.fromhex(sym_path.read_text())) == 32
    assert Keyring.load(keys_dir).active.key_size == 4096


def test_init_refuses_to_overwrite(keys_dir: Path) -> None:
    with pytest.raises(KeyFileExistsError, match="--force"):
        init_keys(keys_dir)


def test_binding_to_owner(keyring: Keyring) -> None:
    token = seal(keyring, b"s3cret", OWNER)
    with pytest.raises(TamperedCiphertextError, match="copied from another block"):
        open_envelope(keyring, token, "kubeconfig-credentials/other/kubeconfig")


@pytest.mark.parametrize("field_index", [2, 3, 4])
def test_tampering_any_field_is_detected(keyring: Keyring, field_index: int) -> None:
    parts = seal(keyring, b"s3cret", OWNER).split(".")
    flipped = "A" if parts[field_index][5] != "A" else "B"
    parts[field_index] = parts[field_index][:5] + flipped + parts[field_index][6:]
    with pytest.raises(TamperedCiphertextError):
        open_envelope(keyring, ".".join(parts), OWNER)


def test_wrong_key_is_a_distinct_error(keyring: Keyring, tmp_path: Path) -> None:
    token = seal(keyring, b"s3cret", OWNER)
    other = init_keys(tmp_path / "other-keys")
    with pytest.raises(WrongKeyError, match=keyring.active_key_id) as info:
        open_envelope(other, token, OWNER)
    assert "BUDCLUSTER_KEYS_DIR" in str(info.value)


def test_missing_key_file_is_a_distinct_error(tmp_path: Path) -> None:
    with pytest.raises(MissingKeyError, match="budcluster keys init"):
        Keyring.load(tmp_path / "nowhere")


def test_plaintext_in_an_encrypted_field_is_malformed(keyring: Keyring) -> None:
    with pytest.raises(MalformedEnvelopeError, match="bsc1"):
        open_envelope(keyring, "apiVersion: v1\nkind: Config", OWNER)


def test_rotation_keeps_old_envelopes_readable_until_retired(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    keyring = init_keys(directory)
    old_token = seal(keyring, b"before", OWNER)
    old_id, new_id = rotate_active_key(directory)
    assert old_id == keyring.active_key_id and new_id != old_id
    rotated = Keyring.load(directory)
    assert rotated.active_key_id == new_id
    assert open_envelope(rotated, old_token, OWNER) == b"before"
    assert read_header(seal(rotated, b"after", OWNER)).key_id == new_id
    # A previous key that a stored secret still needs is kept...
    assert retire_previous_keys(directory, still_needed={old_id}) == []
    # ...and removed once nothing needs it.
    assert retire_previous_keys(directory, still_needed=set()) == [old_id]
    with pytest.raises(WrongKeyError):
        open_envelope(Keyring.load(directory), old_token, OWNER)


def test_fingerprint_is_keyed_and_stable(keyring: Keyring, tmp_path: Path) -> None:
    assert keyring.fingerprint(b"abc") == keyring.fingerprint(b"abc")
    assert keyring.fingerprint(b"abc") != keyring.fingerprint(b"abd")
    other = init_keys(tmp_path / "k2")
    assert other.fingerprint(b"abc") != keyring.fingerprint(b"abc")
