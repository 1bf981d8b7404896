"""An inventory that could run code on the worker is refused when its block is added."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from blocks.hosts import HostInventory
from budcluster.cli.app import app
from budcluster.errors import ConfigurationError

HOSTILE = {
    "jinja": "all:\n  hosts:\n    web1:\n      ansible_host: \"{{ lookup('pipe', 'id') }}\"\n",
    "proxy command": "[web]\nweb1 ansible_ssh_common_args='-o ProxyCommand=id'\n",
    "plugin": "plugin: constructed\ncompose:\n  x: lookup('pipe', 'id')\n",
    "key file": "all:\n  hosts:\n    web1:\n      ansible_ssh_private_key_file: /etc/ssh/key\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_from_inventory_refuses_it(keys: Path, name: str) -> None:
    with pytest.raises(ConfigurationError, match="inventory"):
        HostInventory.from_inventory("hosts1", HOSTILE[name], ssh_private_key="k")


def test_the_cli_names_the_host_and_the_variable_in_one_line(keys: Path, tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(HOSTILE["proxy command"])
    result = CliRunner().invoke(app, ["credentials", "add-hosts", "h", str(inventory)])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "host web1" in lines[0] and "ansible_ssh_common_args" in lines[0]
    assert "remove it" in lines[0]
