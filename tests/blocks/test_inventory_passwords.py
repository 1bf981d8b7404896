"""A password written into an inventory would be stored in the clear: it is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from blocks.hosts import HostInventory
from budcluster.cli.app import app
from budcluster.errors import ConfigurationError

PASSWORD_VARS = [
    "ansible_password",
    "ansible_ssh_pass",
    "ansible_ssh_password",
    "ansible_become_password",
    "ansible_become_pass",
    "ansible_sudo_pass",
    "ansible_sudo_password",
    "ansible_su_pass",
]

INVENTORIES = {
    "yaml host vars": "all:\n  hosts:\n    web1:\n      ansible_host: 10.0.0.5\n      {var}: hunter2\n",
    "yaml group vars": "all:\n  vars:\n    {var}: hunter2\n  hosts:\n    web1:\n",
    "yaml child group vars": (
        "all:\n  children:\n    gpu:\n      hosts:\n        g1:\n      vars:\n        {var}: 'hunter2'\n"
    ),
    "yaml quoted key": 'all:\n  hosts:\n    web1:\n      "{var}": hunter2\n',
    "yaml anchor merged": (
        "all:\n  vars:\n    defaults: &d\n      {var}: hunter2\n  hosts:\n    web1:\n      <<: *d\n"
    ),
    "ini host line": "[web]\nweb1 ansible_host=10.0.0.5 {var}=hunter2\n",
    "ini ungrouped host": "web1 {var}='hunter 2'\n",
    "ini group vars": "[web]\nweb1\n\n[web:vars]\n{var}=hunter2\n",
    "ini all vars spaced": "[all:vars]\n{var} = hunter2\n[web]\nweb1\n",
    "yaml vault value": "all:\n  vars:\n    {var}: !vault |\n      $ANSIBLE_VAULT;1.1;AES256\n      6162\n",
}


@pytest.mark.parametrize("var", PASSWORD_VARS)
@pytest.mark.parametrize("layout", sorted(INVENTORIES))
def test_a_password_in_the_inventory_is_refused(keys: Path, layout: str, var: str) -> None:
    text = INVENTORIES[layout].format(var=var)
    with pytest.raises(ConfigurationError) as info:
        HostInventory.from_inventory("hosts1", text, ssh_private_key="k")
    message = str(info.value)
    assert var in message
    assert "--become-password" in message and "--ssh-key" in message
    assert "hunter" not in message  # the message never repeats the password
    assert "\n" not in message


@pytest.mark.parametrize(
    "text",
    [
        "all:\n  hosts:\n    web1:\n      ansible_become: true\n      ansible_user: ubuntu\n",
        "[web]\nweb1 ansible_user=ubuntu ansible_become=true\n[web:vars]\npassword_hint=ask-ops\n",
    ],
)
def test_an_inventory_without_passwords_is_accepted(keys: Path, text: str) -> None:
    block = HostInventory.from_inventory("hosts1", text, become_password="sealed-pw")
    assert block.inventory == text
    assert "sealed-pw" not in block.model_dump_json()


def test_the_cli_says_so_in_one_line(keys: Path, tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("[web]\nweb1 ansible_become_pass=hunter2\n")
    result = CliRunner().invoke(app, ["credentials", "add-hosts", "h", str(inventory)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "ansible_become_pass" in lines[0], result.output
    assert "hunter2" not in result.output
