"""What the adapter tells ssh, and which hosts it treats as remote.

The options are checked where they leave the adapter (the environment ansible-playbook and
its modules get); that ssh obeys them is checked against a real sshd in tests/e2e_ssh.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from budcluster.adapters.ansible import (
    SSH_BASE_ARGS,
    AnsibleConfigError,
    host_connections,
    run_playbook,
    ssh_args,
)
from tests.ansible.helpers import local_inventory

FILES = Path(__file__).parent / "files"


def test_without_a_key_or_known_hosts_ssh_keeps_ansibles_defaults() -> None:
    assert ssh_args(None, None) == list(SSH_BASE_ARGS)
    assert ssh_args(None, None) == shlex.split("-C -o ControlMaster=auto -o ControlPersist=60s")


def test_without_a_shared_connection_each_task_logs_in_itself() -> None:
    assert ssh_args(None, None, shared=False) == ["-C", "-o", "ControlMaster=no"]


def test_a_key_is_the_only_identity_offered() -> None:
    args = ssh_args(Path("/s/id_ssh"), None)
    assert args[: len(SSH_BASE_ARGS)] == list(SSH_BASE_ARGS)
    assert args[len(SSH_BASE_ARGS) :] == ["-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none"]


def test_known_hosts_are_the_only_host_keys_accepted() -> None:
    args = ssh_args(None, Path("/s/known hosts"))
    assert args[len(SSH_BASE_ARGS) :] == [
        "-o", "UserKnownHostsFile=/s/known hosts",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=yes",
    ]  # fmt: skip


def test_ansible_playbook_gets_the_options_and_the_key_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "id_ssh"
    key.write_text("not used on a local connection\n")
    known = tmp_path / "known hosts"
    known.write_text("host ssh-ed25519 AAAA\n")
    monkeypatch.setenv("ANSIBLE_SSH_ARGS", "-o ProxyJump=bastion -o ControlPersist=600s")
    result = run_playbook(
        str(FILES / "show_env.yml"),
        local_inventory(),
        extravars={"probe": "HOME"},
        timeout_s=60,
        ssh_key_file=key,
        known_hosts_file=known,
    )
    seen = result.result("localhost", "env")["module"]
    env = dict(line.split("=", 1) for line in seen if "=" in line)
    # Ours first (ssh keeps the first value of an option), the operator's after them.
    assert shlex.split(env["ANSIBLE_SSH_ARGS"]) == [
        *ssh_args(key, known),
        *["-o", "ProxyJump=bastion", "-o", "ControlPersist=600s"],
    ]
    assert env["ANSIBLE_PRIVATE_KEY_FILE"] == str(key)
    assert env["ANSIBLE_HOST_KEY_CHECKING"] == "true"
    # The run's own control sockets, in its private directory, gone after the run.
    control_dir = Path(env["ANSIBLE_SSH_CONTROL_PATH_DIR"])
    assert control_dir.name == "cp" and control_dir.parent.name.startswith("ansible-")
    assert not control_dir.parent.exists()


def test_a_control_path_too_long_for_a_socket_turns_sharing_off(tmp_path: Path) -> None:
    data_dir = tmp_path / ("d" * 80)
    result = run_playbook(
        str(FILES / "show_env.yml"),
        local_inventory(),
        extravars={"probe": "HOME"},
        timeout_s=60,
        private_data_dir=data_dir,
    )
    seen = result.result("localhost", "env")["module"]
    env = dict(line.split("=", 1) for line in seen if "=" in line)
    assert shlex.split(env["ANSIBLE_SSH_ARGS"]) == ssh_args(None, None, shared=False)


def test_a_missing_known_hosts_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(AnsibleConfigError, match=r"known_hosts_file .* does not exist"):
        run_playbook(
            str(FILES / "show_env.yml"),
            local_inventory(),
            extravars={"probe": "HOME"},
            timeout_s=60,
            known_hosts_file=tmp_path / "absent",
        )


def test_host_connections_read_host_and_group_vars() -> None:
    inventory = (
        "all:\n"
        "  hosts:\n"
        "    here:\n      ansible_connection: local\n"
        "    there:\n      ansible_host: 10.0.0.2\n"
        "  children:\n"
        "    locals:\n"
        "      vars:\n        ansible_connection: local\n"
        "      hosts:\n        also-here:\n"
    )
    found = host_connections(inventory, ["here", "there", "also-here", "unlisted", "localhost"])
    # An unlisted host is reached with ssh; the implicit localhost is local, as in ansible.
    assert found == {
        "here": "local",
        "there": "ssh",
        "also-here": "local",
        "unlisted": "ssh",
        "localhost": "local",
    }


def test_host_connections_read_ini_too() -> None:
    inventory = "[web]\nw1 ansible_connection=local\nw2 ansible_host=10.0.0.3\n"
    assert host_connections(inventory, ["w1", "w2"]) == {"w1": "local", "w2": "ssh"}
