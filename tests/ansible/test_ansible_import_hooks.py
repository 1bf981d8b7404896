"""ansible-core imports after Prefect's docket has put beartype's import hook in place.

py-key-value-aio (imported by Prefect's docket during a flow run) calls
``beartype_this_package()``, which inserts a second ``FileFinder`` path hook; ansible-core's
collection finder then refuses to import. ``./scripts/demo`` died on it in register-cluster.
Each case runs in a fresh interpreter: this test process may have imported ansible already.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

INVENTORY = "[servers]\nlocalhost ansible_connection=local\n"


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_without_the_guard_beartypes_hook_stops_ansible_core() -> None:
    # The control: the failure is real in this environment, so the next test can fail.
    pytest.importorskip("key_value.aio")
    done = _run("import key_value.aio\nimport ansible.inventory.data\n")
    assert done.returncode != 0
    assert "need exactly one FileFinder import hook (found 2)" in done.stderr


def test_inventory_checks_and_host_connections_import_ansible_core_behind_the_hook() -> None:
    pytest.importorskip("key_value.aio")
    done = _run(
        "import sys\n"
        "import key_value.aio\n"
        "hooks = list(sys.path_hooks)\n"
        "from budcluster.inventory_rules import check_inventory\n"
        "from budcluster.adapters.ansible import host_connections\n"
        f"check_inventory({INVENTORY!r})\n"
        f"print(host_connections({INVENTORY!r}, ['localhost', 'other']))\n"
        "assert all(any(h is k for k in sys.path_hooks) for h in hooks), 'a hook was lost'\n"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "{'localhost': 'local', 'other': 'ssh'}" in done.stdout
