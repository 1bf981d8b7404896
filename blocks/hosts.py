"""An Ansible inventory of servers, with its SSH key and become password sealed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from blocks._sealed import SealedCredentialsBlock
from blocks.inventory_passwords import refuse_inventory_passwords
from budcluster.inventory_rules import check_inventory
from budcluster.secretfiles import temporary_secret_file


class HostInventory(SealedCredentialsBlock):
    """Servers reached through Ansible: bare metal, VMs, or this machine.

    The inventory itself is not secret and is stored as text, bound (like every field)
    so that an edit made without the key makes the block refuse to load; the SSH
    private key and the become password are sealed with the project key. Passwords
    written into the inventory are refused: they would be stored in the clear; so is an
    inventory that breaks :mod:`budcluster.inventory_rules` (templates, ssh options,
    executables, inventory plugins), which could run code on the worker.

    Example:
        Store an inventory with the CLI, then use it in a flow:
        ```bash
        budcluster credentials add-hosts gpu-hosts inventory.yml --ssh-key ~/.ssh/id_ed25519 \
            --known-hosts known_hosts
        ```
        ```python
        from blocks.hosts import HostInventory

        hosts = HostInventory.load("BLOCK_NAME")
        with hosts.ssh_key_file() as key_path, hosts.known_hosts_file() as known:
            ...  # key_path: the only key ssh offers; known: the only host keys it accepts
        ```
    """

    _block_type_name = "Bud Host Inventory"
    _logo_url = "https://cdn.sanity.io/images/3ugk85nk/production/fb3f4debabcda1c5a3aeea4f5b3f94c28845e23e-250x250.png"  # type: ignore[assignment]
    _sealed_fields: ClassVar[tuple[str, ...]] = ("ssh_private_key", "become_password")
    _add_command: ClassVar[str] = "budcluster credentials add-hosts"

    inventory: str = Field(description="Ansible inventory, YAML or INI text.")
    ssh_private_key: str | None = Field(
        default=None, description="SSH private key, sealed (bsc1 envelope), if any."
    )
    become_password: str | None = Field(
        default=None, description="Become (sudo) password, sealed (bsc1 envelope), if any."
    )
    known_hosts: str | None = Field(
        default=None,
        description=(
            "known_hosts lines of the hosts' SSH keys. When set, ssh accepts only these keys "
            "(strict checking; ~/.ssh/known_hosts is not read). Not secret, bound to the block."
        ),
    )

    @classmethod
    def from_inventory(
        cls,
        block_name: str,
        inventory_text: str,
        ssh_private_key: str | None = None,
        become_password: str | None = None,
        known_hosts: str | None = None,
    ) -> HostInventory:
        if not inventory_text.strip():
            raise ValueError("the inventory is empty; list at least one host.")
        refuse_inventory_passwords(inventory_text)
        check_inventory(inventory_text)
        if known_hosts is not None:
            known_hosts = check_known_hosts(known_hosts)
        return cls._build(
            block_name,
            {"ssh_private_key": ssh_private_key, "become_password": become_password},
            inventory=inventory_text,
            known_hosts=known_hosts,
        )

    def get_become_password(self) -> str | None:
        return self._open("become_password")

    @contextmanager
    def ssh_key_file(self) -> Iterator[Path | None]:
        """The SSH key as a 0600 file for the duration of the block, or None."""
        key = self._open("ssh_private_key")
        if key is None:
            yield None
            return
        with temporary_secret_file(key, name="id_ssh") as path:
            yield path

    @contextmanager
    def known_hosts_file(self) -> Iterator[Path | None]:
        """The block's known_hosts as a 0600 file for the duration of the block, or None."""
        if self.known_hosts is None:
            yield None
            return
        with temporary_secret_file(self.known_hosts, name="known_hosts") as path:
            yield path


def check_known_hosts(text: str) -> str:
    """``text`` if every line is a known_hosts entry (or a comment), else ValueError naming
    the line: a stray line would make ssh refuse every host with a confusing message."""
    lines = [line.strip() for line in text.splitlines()]
    entries = [line for line in lines if line and not line.startswith("#")]
    if not entries:
        raise ValueError("known_hosts is empty; give ssh-keyscan's output for the hosts.")
    for number, line in enumerate(lines, start=1):
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if fields[0].startswith("@"):  # @cert-authority / @revoked markers
            fields = fields[1:]
        if len(fields) < 3 or not (fields[1].startswith(("ssh-", "ecdsa-", "sk-"))):
            raise ValueError(
                f"known_hosts line {number} is not '<hosts> <key type> <base64 key>'; give "
                "lines as ssh-keyscan prints them."
            )
    return "\n".join(lines).strip() + "\n"
