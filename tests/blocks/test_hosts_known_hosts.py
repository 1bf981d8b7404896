"""The hosts block's known_hosts: checked when added, bound like every field, handed to
ssh as a 0600 file that is gone after use."""

from __future__ import annotations

from pathlib import Path

import pytest

from blocks.hosts import HostInventory, check_known_hosts
from budcluster.crypto.errors import BindingError

INVENTORY = "all:\n  hosts:\n    web1:\n      ansible_host: 10.0.0.5\n      ansible_user: bud\n"
KNOWN = "10.0.0.5 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOdc\n"


def test_known_hosts_reach_ssh_as_a_private_file_that_is_removed(keys: Path) -> None:
    block = HostInventory.from_inventory("lab", INVENTORY, known_hosts="  " + KNOWN)
    with block.known_hosts_file() as path:
        assert path is not None
        assert path.read_text() == KNOWN
        assert path.stat().st_mode & 0o777 == 0o600
    assert not path.exists()


def test_without_known_hosts_no_file_is_made(keys: Path) -> None:
    block = HostInventory.from_inventory("lab", INVENTORY)
    with block.known_hosts_file() as path:
        assert path is None


def test_known_hosts_are_bound_to_the_block(keys: Path) -> None:
    block = HostInventory.from_inventory("lab", INVENTORY, known_hosts=KNOWN)
    block.known_hosts = "10.0.0.5 ssh-ed25519 AAAAattackerskey\n"
    with pytest.raises(BindingError, match="known_hosts"):
        block.verify_binding("lab")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "known_hosts is empty"),
        ("# only a comment\n", "known_hosts is empty"),
        ("10.0.0.5 ssh-ed25519 AAAA\nnot a key line\n", "known_hosts line 2 is not"),
        ("10.0.0.5 AAAAC3NzaC1lZDI1NTE5\n", "known_hosts line 1 is not"),
    ],
)
def test_lines_that_are_not_host_keys_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_known_hosts(text)


def test_markers_hashed_names_and_comments_are_accepted() -> None:
    text = (
        "# lab\n"
        "|1|c2FsdA==|aGFzaA== ecdsa-sha2-nistp256 AAAAE2Vj\n"
        "@cert-authority *.lab ssh-ed25519 AAAAC3Nz\n"
        "[10.0.0.5]:2222 ssh-rsa AAAAB3Nz\n"
    )
    assert check_known_hosts(text) == text
