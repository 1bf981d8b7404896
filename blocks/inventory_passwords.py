"""Finding passwords written into an Ansible inventory, which a block stores as plain text.

Connection and become passwords have sealed homes (``--become-password``, ``--ssh-key``);
one in the inventory text would sit unencrypted in the Prefect database, so an inventory
that sets any of them is refused before anything is sealed or saved.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml

from budcluster.errors import ConfigurationError

# ansible_password, ansible_ssh_pass, ansible_become_password, ansible_sudo_pass,
# ansible_su_password, ansible_httpapi_pass, ansible_winrm_password, ... and passphrases.
_PASSWORD_VAR = re.compile(r"ansible_\w*pass(?:word|phrase)?", re.IGNORECASE)
# A variable assignment in INI (`name=value`, `name = value`) or YAML-like text
# (`name: value`) that YAML could not read (e.g. vault tags); quotes around the name allowed.
_ASSIGNMENT = re.compile(
    r"""(?:^|[\s{,])["']?(ansible_\w*pass(?:word|phrase)?)["']?\s*[=:]""", re.I
)


def refuse_inventory_passwords(inventory_text: str) -> None:
    """Raise ConfigurationError naming the first password variable in the inventory."""
    found = next(_password_vars(inventory_text), None)
    if found is None:
        return
    name, where = found
    raise ConfigurationError(
        f"inventory: {name} ({where}) would be stored unencrypted; remove it and give the "
        "become password with --become-password (it is sealed) and log in with an SSH key "
        "(--ssh-key) instead of a password."
    )


def _password_vars(text: str) -> Iterator[tuple[str, str]]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None  # INI, or YAML with tags such as !vault: read it as text
    if isinstance(data, dict):
        yield from _mapping_keys(data, "")
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith(("#", ";")):
            continue
        match = _ASSIGNMENT.search(line)
        if match:
            yield match.group(1), f"line {number}"


def _mapping_keys(node: Any, path: str) -> Iterator[tuple[str, str]]:
    # Every key at any depth: host vars, group vars and children's vars all count, and a
    # host or group merely named like a password variable is refused too (harmless).
    if isinstance(node, dict):
        for key, value in node.items():
            name = str(key)
            where = f"{path}.{name}" if path else name
            if _PASSWORD_VAR.fullmatch(name):
                yield name, f"at {where}"
            yield from _mapping_keys(value, where)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _mapping_keys(item, f"{path}[{index}]")
