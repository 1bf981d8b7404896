"""A hostile inventory runs nothing: each vector is live without the rules, refused with them.

Every vector makes the worker (the Ansible controller) run ``touch <canary>``. The control
test runs it through the real ``run_playbook`` with :func:`check_inventory` switched off and
shows the canary appears, so the vector is real in this ansible-core; the rule test shows the
same inventory is refused by ``run_playbook``, ``HostsTarget`` and ``from_inventory`` before
anything runs, naming the host or group and the variable.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import budcluster.adapters.ansible as adapter
from budcluster.adapters.ansible import AnsibleConfigError, AnsibleError, run_playbook
from budcluster.errors import ConfigurationError
from budcluster.inventory_rules import INVENTORY_PLUGINS, check_inventory, inventory_problems
from budcluster.targets.hosts import HostsConfigError, HostsTarget
from tests.ansible.helpers import local_inventory

REPO = Path(__file__).resolve().parents[2]
PING = "- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.ping:\n"


@dataclass(frozen=True)
class Vector:
    """One way an inventory ran code: its YAML and INI forms, given the canary and a script
    that touches it; ``where`` and ``var`` are what the refusal must name."""

    yaml: Callable[[Path, Path], str]
    ini: Callable[[Path, Path], str]
    where: str
    var: str


def _touch(canary: Path) -> str:
    return f"touch {canary}"


def _ssh_host(var: str, value: str) -> Vector:
    # A host reached over ssh on a closed port: ssh starts, runs the option, then fails.
    return Vector(
        yaml=lambda canary, script: (
            "all:\n  hosts:\n    web1:\n      ansible_host: 127.0.0.1\n      ansible_port: 9\n"
            f"      {var}: {_yaml_str(value.format(canary=canary, script=script))}\n"
        ),
        ini=lambda canary, script: (
            "[web]\nweb1 ansible_host=127.0.0.1 ansible_port=9 "
            f"{var}={_ini_str(value.format(canary=canary, script=script))}\n"
        ),
        where="host web1",
        var=var,
    )


def _local_host(var: str) -> Vector:
    return Vector(
        yaml=lambda canary, script: (
            "all:\n  children:\n    servers:\n      hosts:\n        here:\n"
            f"          ansible_connection: local\n          {var}: {script}\n"
        ),
        ini=lambda canary, script: f"[servers]\nhere ansible_connection=local {var}={script}\n",
        where="host here",
        var=var,
    )


def _yaml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ini_str(value: str) -> str:
    return "'" + value.replace("'", "\\'") + "'" if "'" not in value else '"' + value + '"'


VECTORS = {
    "jinja-ansible_host": _ssh_host("ansible_host", "{{{{ lookup('pipe', 'touch {canary}') }}}}"),
    "ssh_common_args": _ssh_host("ansible_ssh_common_args", '-o "ProxyCommand=touch {canary}"'),
    "ssh_extra_args": _ssh_host("ansible_ssh_extra_args", '-o "ProxyCommand=touch {canary}"'),
    "ssh_args": _ssh_host("ansible_ssh_args", '-o "ProxyCommand=touch {canary}"'),
    "ssh_executable": _ssh_host("ansible_ssh_executable", "{script}"),
    "python_interpreter-local": _local_host("ansible_python_interpreter"),
    "shell_executable-local": _local_host("ansible_shell_executable"),
}


@pytest.fixture
def planted(tmp_path: Path) -> tuple[Path, Path]:
    """The canary's path (absent) and an executable that creates it (a file on the worker)."""
    canary = tmp_path / "canary"
    script = tmp_path / "bin" / "evil"
    script.parent.mkdir()
    script.write_text(f"#!/bin/sh\n{_touch(canary)}\nexit 1\n")
    script.chmod(0o755)
    return canary, script


def _run(inventory: str, tmp_path: Path) -> None:
    playbook = tmp_path / "ping.yml"
    playbook.write_text(PING)
    run_playbook(str(playbook), inventory, extravars={}, timeout_s=60)


@pytest.mark.parametrize("form", ["yaml", "ini"])
@pytest.mark.parametrize("vector_id", list(VECTORS))
def test_without_the_rules_the_vector_runs_code(
    vector_id: str,
    form: str,
    planted: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The control: the checker switched off, the real run creates the canary."""
    canary, script = planted
    inventory = getattr(VECTORS[vector_id], form)(canary, script)
    monkeypatch.setattr(adapter, "check_inventory", lambda text: None)
    with contextlib.suppress(AnsibleError):  # the host is unreachable: the code ran before
        _run(inventory, tmp_path)
    assert canary.exists(), f"the {vector_id} vector did not run: this control proves nothing"


@pytest.mark.parametrize("form", ["yaml", "ini"])
@pytest.mark.parametrize("vector_id", list(VECTORS))
def test_the_rules_refuse_the_vector_before_any_run(
    vector_id: str, form: str, planted: tuple[Path, Path], tmp_path: Path
) -> None:
    canary, script = planted
    vector = VECTORS[vector_id]
    inventory = getattr(vector, form)(canary, script)
    with pytest.raises(AnsibleConfigError) as info:
        _run(inventory, tmp_path)
    message = str(info.value)
    if vector_id.startswith("jinja"):
        assert "template delimiter '{{'" in message and "line " in message
    else:
        assert vector.where in message and vector.var in message, message
        assert "remove it" in message or "must be" in message
    with pytest.raises(HostsConfigError):
        HostsTarget(inventory_text=inventory)
    assert not canary.exists()


def test_a_plugin_inventory_is_refused_and_no_run_enables_plugins(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    constructed = (
        f"plugin: constructed\nstrict: false\ncompose:\n  x: lookup('pipe', 'touch {canary}')\n"
    )
    message = "; ".join(inventory_problems(constructed))
    assert "inventory plugins (a 'plugin:' key) are not accepted" in message
    with pytest.raises(AnsibleConfigError, match="plugin"):
        _run(constructed, tmp_path)
    assert not canary.exists()
    # The run itself enables only the plugins the check parsed with.
    data_dir = tmp_path / "data"
    playbook = tmp_path / "ping.yml"
    playbook.write_text(PING)
    run_playbook(
        str(playbook), local_inventory(), extravars={}, timeout_s=60, private_data_dir=data_dir
    )
    envvars = json.loads((data_dir / "env" / "envvars").read_text())
    assert INVENTORY_PLUGINS == ("yaml", "ini")
    assert envvars["ANSIBLE_INVENTORY_ENABLED"] == "yaml,ini"


def test_inventory_text_that_names_a_file_runs_the_checked_text(
    planted: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ansible-runner reads the file when the inventory text is an existing path; the adapter
    always hands it the checked text in a file of its own."""
    canary, script = planted
    hostile = tmp_path / "hostile.ini"
    hostile.write_text(f"[s]\nh ansible_connection=local ansible_python_interpreter={script}\n")
    with pytest.raises(AnsibleError):
        _run(str(hostile), tmp_path)  # checked as INI text: a host named by a path, refused
    assert not canary.exists()
    # Even with the check off, the run reads the text it was given (written to its own
    # file), not the file that text names.
    monkeypatch.setattr(adapter, "check_inventory", lambda text: None)
    with contextlib.suppress(AnsibleError):
        _run(str(hostile), tmp_path)
    assert not canary.exists()
    # The control: handing ansible-runner the text itself reads the unchecked file.
    monkeypatch.setattr(adapter, "_write_inventory", lambda data_dir, text: text)
    with pytest.raises(AnsibleError):
        _run(str(hostile), tmp_path)
    assert canary.exists()


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (
            "all:\n  hosts:\n    w:\n      ansible_ssh_private_key_file: /etc/ssh/ssh_host_rsa_key\n",
            "ansible_ssh_private_key_file",
        ),
        ("[w]\nh ansible_private_key_file=/root/.ssh/id_rsa\n", "ansible_private_key_file"),
        ("[w]\nh ansible_become_exe=/tmp/x\n", "ansible_become_exe"),
        ("[w]\nh ansible_become_flags='-s; id'\n", "ansible_become_flags"),
        ("[w]\nh ansible_shell_type=powershell\n", "ansible_shell_type"),
        ("[w]\nh ansible_perl_interpreter=/usr/bin/perl\n", "ansible_perl_interpreter"),
        ("[w]\nh ansible_connection=paramiko\n", "ansible_connection"),
        ("[w]\nh ansible_become_method=runas\n", "ansible_become_method"),
        ("[w]\nh ansible_host=-oProxyCommand=id\n", "ansible_host"),
        ("[w]\nh ansible_user='-oProxyCommand=id'\n", "ansible_user"),
        ("[w]\nh ansible_port=0\n", "ansible_port"),
        ('all:\n  hosts:\n    "-oProxyCommand=id":\n', "'-oProxyCommand=id'"),
        (
            "[w]\nh ansible_python_interpreter='/usr/bin/python3 -c id'\n",
            "ansible_python_interpreter",
        ),
        ("[w]\nh ansible_python_interpreter=python3\n", "ansible_python_interpreter"),
        ("[w]\nh ansible_python_interpreter=/tmp/evil\n", "ansible_python_interpreter"),
        ("[w]\nh budcluster_runtime_mode=shell\n", "budcluster_runtime_mode"),
        ("[w]\nh budcluster_python='python3 -c id'\n", "budcluster_python"),
        ("[w]\nh budcluster_state_dir='$HOME/x'\n", "budcluster_state_dir"),
        ("[w]\nh container_pull_timeout_s=soon\n", "container_pull_timeout_s"),
        ("[w]\nh budcluster_anything=1\n", "budcluster_anything"),
        ("[w]\nh systemd_unit_text=x\n", "systemd_unit_text"),
        ("[w:vars]\nansible_ssh_common_args='-o ProxyCommand=id'\n[w]\nh\n", "group w"),
        ("all:\n  hosts:\n    h:\n      x: {% raw %}\n", "'{%'"),
        ("[w]\nh x='{# c #}'\n", "'{#'"),
    ],
)
def test_each_rule_names_what_to_fix(text: str, named: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        check_inventory(text)
    assert named in str(info.value)


def _project_inventories() -> dict[str, str]:
    from tests.e2e_hosts.conftest import INVENTORY as E2E_HOSTS
    from tests.security.test_canary_suite import HOSTS_INVENTORY as CANARY

    demo = (REPO / "scripts" / "demo").read_text()
    heredoc = demo.split("<<YAML\n", 1)[1].split("\nYAML\n", 1)[0]
    found = {
        "ansible/helpers local_inventory": local_inventory(),
        "ansible/helpers local_inventory auto": local_inventory("auto"),
        "e2e_hosts": E2E_HOSTS,
        "security canary suite": CANARY,
        "scripts/demo": heredoc.replace("$PWD", str(REPO)),
        "support/ssh_host": (
            "all:\n  hosts:\n    sshhost:\n      ansible_host: 127.0.0.1\n"
            "      ansible_port: 2222\n      ansible_user: bud\n"
            "      ansible_python_interpreter: /usr/bin/python3\n"
        ),
        "container_image": (
            f"[s]\nlocalhost ansible_connection=local ansible_python_interpreter={sys.executable}"
            " budcluster_runtime_mode=process container_pull_timeout_s=3\n"
        ),
    }
    for path in (REPO / "docs").glob("*.md"):
        for number, block in enumerate(
            re.findall(r"```(?:yaml|ini)\n(.*?)```", path.read_text(), re.S)
        ):
            if re.search(r"^\s*ansible_\w+\s*[:=]|\bansible_\w+=", block, re.M):
                found[f"{path.name} block {number}"] = block
    return found


@pytest.mark.parametrize("name", list(_project_inventories()))
def test_every_inventory_the_project_uses_passes(name: str) -> None:
    assert inventory_problems(_project_inventories()[name]) == []


def test_the_demo_inventory_is_one_the_tests_read() -> None:
    # If scripts/demo stops writing its inventory as a heredoc, the test above must follow.
    assert "ansible_connection: local" in _project_inventories()["scripts/demo"]


def test_every_playbook_input_is_guarded() -> None:
    """Each variable a playbook reads with a default is either a documented host var (value
    checked) or reserved, so an inventory cannot steer it where no extra var is passed."""
    from budcluster.inventory_rules import ANSIBLE_VARS, PLAYBOOK_INPUTS, PROJECT_VARS

    read = set()
    for path in (REPO / "playbooks").rglob("*.yml"):
        read |= set(re.findall(r"(?<![.\w])([a-z_]\w*)\s*\|\s*default\(", path.read_text()))
    guarded = set(ANSIBLE_VARS) | set(PROJECT_VARS) | PLAYBOOK_INPUTS
    assert read, "the pattern no longer finds the playbooks' inputs"
    assert read - guarded == set()
