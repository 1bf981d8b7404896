"""Rules an Ansible inventory must meet before any playbook runs with it.

An inventory is user-supplied text (``budcluster credentials add-hosts``), and Ansible gives
an inventory a lot of power over the worker: it templates inventory values (a
``{{ lookup('pipe', ...) }}`` runs on the controller), hands ``ansible_ssh_common_args`` and
friends to ssh (``-o ProxyCommand=...`` runs a command here), runs whatever
``ansible_ssh_executable`` or ``ansible_shell_executable`` names, and a YAML inventory with a
``plugin:`` key selects an inventory plugin (``constructed`` evaluates Jinja). So the
inventory is parsed with Ansible's own ``yaml`` and ``ini`` inventory plugins only (the same
two, in the same order, that :data:`INVENTORY_PLUGINS` enables for every run) and refused
unless:

* no Jinja delimiter (``{{``, ``{%``, ``{#``) appears anywhere in the text;
* every host name is a plain host name (not starting with ``-``: ssh's argument);
* every ``ansible_*`` variable is on :data:`ANSIBLE_VARS` and its value has the expected shape;
* the project's own host vars (:data:`PROJECT_VARS`) have valid values, other
  ``budcluster_*`` names and the playbooks' inputs (:data:`PLAYBOOK_INPUTS`) are not set;
* every other variable has an identifier name and plain data (str, number, bool, null,
  lists and mappings of them).

The module is pure: it reads ansible-core's parsers, never runs anything.
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from budcluster.errors import ConfigurationError

INVENTORY_PLUGINS = ("yaml", "ini")
"""The only inventory plugins a run enables (``ANSIBLE_INVENTORY_ENABLED``), in Ansible's
default order: ``auto``, ``script``, ``host_list`` and every plugin a ``plugin:`` key could
name stay off."""

_JINJA = ("{{", "{%", "{#")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HOST = re.compile(r"[A-Za-z0-9_.:%\[\]][A-Za-z0-9_.:%\[\]-]*")
_USER = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]*")
_PYTHON_NAME = r"python(?:\d+(?:\.\d+)?)?"
_PYTHON_PATH = re.compile(rf"/(?:[A-Za-z0-9_.+-]+/)*{_PYTHON_NAME}")
_PYTHON_COMMAND = re.compile(rf"{_PYTHON_NAME}|/(?:[A-Za-z0-9_.+-]+/)*{_PYTHON_NAME}")
_TRUTHY = {"true", "false", "yes", "no", "on", "off", "1", "0"}


def _choice(*allowed: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, str) and value in allowed:
            return None
        return f"must be one of {', '.join(allowed)}"

    return check


def _matching(pattern: re.Pattern[str], what: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, str) and pattern.fullmatch(value) and "/../" not in f"{value}/":
            return None
        return f"must be {what}"

    return check


def _boolean(value: Any) -> str | None:
    if isinstance(value, bool) or (isinstance(value, str) and value.lower() in _TRUTHY):
        return None
    return "must be true or false"


def _integer(low: int, high: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        number = value if isinstance(value, int) and not isinstance(value, bool) else None
        if isinstance(value, str) and value.isascii() and value.isdigit():
            number = int(value)
        if number is not None and low <= number <= high:
            return None
        return f"must be a whole number from {low} to {high}"

    return check


def _interpreter(value: Any) -> str | None:
    if value in ("auto", "auto_silent"):
        return None
    return _matching(
        _PYTHON_PATH, "an absolute path to a python executable (e.g. /usr/bin/python3), or auto"
    )(value)


def _state_dir(value: Any) -> str | None:
    if isinstance(value, str) and value and "$" not in value and value.isprintable():
        return None
    return "must be a path without '$' or control characters (a leading ~ is fine)"


_Rule = Callable[[Any], str | None]

ANSIBLE_VARS: Mapping[str, _Rule] = {
    "ansible_host": _matching(_HOST, "a host name or an IP address (not starting with '-')"),
    "ansible_port": _integer(1, 65535),
    "ansible_user": _matching(_USER, "a user name (letters, digits, '.', '_', '-')"),
    "ansible_connection": _choice("ssh", "local"),
    "ansible_become": _boolean,
    "ansible_become_user": _matching(_USER, "a user name (letters, digits, '.', '_', '-')"),
    "ansible_become_method": _choice("sudo", "su", "doas"),
    # Only a python interpreter, named by absolute path: with a local connection it runs on
    # the worker, but what it runs is the module Ansible sends, never user text, and a file
    # named python* planted on the worker would mean the worker is already taken.
    "ansible_python_interpreter": _interpreter,
    "ansible_pipelining": _boolean,
    "ansible_ssh_pipelining": _boolean,
}
"""The ``ansible_*`` variables an inventory may set, each with the check of its value."""

PROJECT_VARS: Mapping[str, _Rule] = {
    "budcluster_runtime_mode": _choice("auto", "docker", "podman", "systemd", "process"),
    "budcluster_python": _matching(
        _PYTHON_COMMAND, "python3 or an absolute path to a python executable"
    ),
    "budcluster_host_python": _matching(
        _PYTHON_COMMAND, "python3 or an absolute path to a python executable"
    ),
    "budcluster_state_dir": _state_dir,
    "container_pull_timeout_s": _integer(1, 86400),
}
"""The project's own host vars (docs/hosts.md), each with the check of its value: they reach
argv and paths on the hosts."""

PLAYBOOK_INPUTS = frozenset(
    {
        "checksum", "collector_timeout_s", "container_name", "container_start_timeout_s",
        "controller_python", "log_lines", "remove_log", "runtime_install", "runtime_mode",
        "runtime_spec_secret", "stop_timeout_s", "systemd_unit_name", "systemd_unit_text",
        "transfer_env", "transfer_timeout_s", "inventory_file", "inventory_dir",
        "inventory_hostname", "inventory_hostname_short", "hostvars", "groups", "group_names",
        "omit", "playbook_dir", "role_path", "environment",
    }
)  # fmt: skip
"""Names the playbooks read as their inputs (``| default(...)``) or Ansible sets itself: an
inventory that set one would steer a playbook where its extra vars are not passed."""


def inventory_problems(inventory_text: str) -> list[str]:
    """Every rule the inventory breaks, one message per problem (empty when it is usable)."""
    problems = [
        f"the inventory contains the template delimiter '{mark}' (line {number}): inventory "
        "text is never templated here; write the literal value instead"
        for number, line in enumerate(inventory_text.splitlines(), start=1)
        for mark in _JINJA
        if mark in line
    ]
    if problems:
        return problems  # parsing would already template nothing, but say what to fix first
    try:
        groups, hosts = _parse(inventory_text)
    except ConfigurationError as exc:
        return [str(exc)]
    problems.extend(
        f"inventory host {name!r} is not a usable host name: use letters, digits, '.', '_', "
        "':' and '-' (not first); it is what ssh connects to when ansible_host is unset"
        for name in hosts
        if not _HOST.fullmatch(name)
    )
    for kind, entries in (("group", groups), ("host", hosts)):
        for name, variables in entries.items():
            where = f"{kind} {name}"
            problems.extend(
                f"inventory {where}: {message}" for message in _variable_problems(variables)
            )
    return problems


def check_inventory(inventory_text: str) -> None:
    """Raise ConfigurationError listing every rule the inventory breaks, with its fix."""
    problems = inventory_problems(inventory_text)
    if problems:
        raise ConfigurationError("; ".join(problems))


def _variable_problems(variables: Mapping[str, Any]) -> Iterator[str]:
    for name, value in variables.items():
        if name in ("inventory_file", "inventory_dir") and value is None:
            continue  # set by Ansible's parser itself for every host
        if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
            yield f"variable {name!r} is not a valid name: use letters, digits and '_'"
            continue
        rule = ANSIBLE_VARS.get(name) or PROJECT_VARS.get(name)
        if rule is not None:
            problem = rule(value)
            if problem is not None:
                yield f"{name} {problem} (got {value!r})"
        elif name.lower().startswith("ansible_"):
            yield (
                f"{name} is not accepted: an inventory may set only "
                f"{', '.join(sorted(ANSIBLE_VARS))}; remove it (the SSH key comes from the "
                "block's --ssh-key, ssh options from the worker's ANSIBLE_SSH_ARGS)"
            )
        elif name.lower().startswith("budcluster_") or name in PLAYBOOK_INPUTS:
            yield (
                f"{name} is reserved for the project's playbooks: remove it (host vars are "
                f"{', '.join(sorted(PROJECT_VARS))})"
            )
        else:
            problem = _plain_problem(value, name)
            if problem is not None:
                yield problem


def _plain_problem(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, (str, bool, int, float)):
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where} has a {type(key).__name__} key {key!r}: use string keys"
            problem = _plain_problem(item, f"{where}.{key}")
            if problem is not None:
                return problem
        return None
    if isinstance(value, list):
        for index, item in enumerate(value):
            problem = _plain_problem(item, f"{where}[{index}]")
            if problem is not None:
                return problem
        return None
    return (
        f"{where} is a {type(value).__name__}: use strings, numbers, booleans, lists or "
        "mappings of them"
    )


def import_ansible_core() -> None:
    """Import ansible-core's collection finder with one ``FileFinder`` path hook in sight.

    The finder's class body refuses to load when ``sys.path_hooks`` holds more than one hook
    whose repr names ``FileFinder``. beartype's import hook is a second one, and it appears
    mid-run: py-key-value-aio calls ``beartype_this_package()`` when Prefect's docket first
    imports it, so a flow that reads an inventory after that died with "need exactly one
    FileFinder import hook (found 2)". The others are hidden for the import alone (the
    stdlib's hook is the last one; beartype inserts before it) and put back where they were.
    """
    if "ansible.utils.collection_loader._collection_finder" in sys.modules:
        return
    saved = list(sys.path_hooks)
    finders = [hook for hook in saved if "FileFinder" in repr(hook)]
    hidden = finders[:-1]
    sys.path_hooks[:] = [hook for hook in saved if not any(hook is h for h in hidden)]
    try:
        import ansible.utils.collection_loader._collection_finder  # noqa: F401
    finally:
        for index, hook in enumerate(saved):
            if any(hook is h for h in hidden):
                sys.path_hooks.insert(min(index, len(sys.path_hooks)), hook)


def _parse(inventory_text: str) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The inventory's groups and hosts with their own variables, as Ansible's ``yaml`` and
    ``ini`` plugins (tried in :data:`INVENTORY_PLUGINS` order, first to parse wins) read it."""
    import_ansible_core()
    from ansible.errors import AnsibleError as AnsibleCoreError
    from ansible.inventory.data import InventoryData
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import inventory_loader

    reasons = []
    with tempfile.TemporaryDirectory(prefix="budcluster-inventory-") as directory:
        # Named as ansible-runner names it (no suffix), so each plugin accepts or declines
        # it exactly as it will in the run.
        path = Path(directory) / "hosts"
        path.write_text(inventory_text, encoding="utf-8")
        path.chmod(0o600)
        for name in INVENTORY_PLUGINS:
            plugin = inventory_loader.get(name)
            data = InventoryData()
            try:
                if plugin is None or not plugin.verify_file(str(path)):
                    continue
                plugin.parse(data, DataLoader(), str(path), cache=False)
            except AnsibleCoreError as exc:
                reasons.append(f"{name}: {str(exc).splitlines()[0]}")
                continue
            groups = {group: dict(found.vars) for group, found in data.groups.items()}
            hosts = {host: dict(found.vars) for host, found in data.hosts.items()}
            return groups, hosts
    raise ConfigurationError(
        "the inventory is neither a YAML nor an INI inventory ("
        + "; ".join(reasons)
        + "): give hosts and groups in one of those formats; inventory plugins "
        "(a 'plugin:' key) are not accepted"
    )
