"""The suite's parallel run keeps each group (a module, or a whole e2e package) on one worker.

A module's tests share module-scoped fixtures (an emulator, a registered cluster, a deployed
runtime) and later tests rely on earlier ones; split over workers, each worker builds its own
fixture and the later tests fail.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.conftest import xdist_group_of


def _marker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The base temp's parent is one directory for the whole run, shared by its workers.
    return tmp_path_factory.getbasetemp().parent / "xdist-group-check.pid"


def test_first_of_the_module_records_its_process(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    _marker(tmp_path_factory).write_text(str(os.getpid()))


def test_second_of_the_module_runs_in_the_same_process(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    names = {item.name for item in request.session.items}
    if "test_first_of_the_module_records_its_process" not in names:
        pytest.skip("selected without the first test of this module")
    marker = _marker(tmp_path_factory)
    # Split over workers, the first test may still be running elsewhere: wait for it, so
    # a split shows as a different process rather than as a skip.
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists(), "the first test of this module never ran"
    assert int(marker.read_text()) == os.getpid()


@pytest.mark.parametrize(
    ("nodeid", "group"),
    [
        ("tests/e2e_hosts/test_deploy_model_llama_cpp.py::test_x", "e2e_hosts"),
        ("tests/e2e_ssh/test_deploy_over_ssh.py::test_y[a::b]", "e2e_ssh"),
        (
            "tests/e2e_kubernetes/test_flows_on_emulator.py::test_y[a::b]",
            "tests/e2e_kubernetes/test_flows_on_emulator.py",
        ),
        ("tests/e2e_image/test_image.py::test_v", "e2e_image"),
        ("tests/bench/test_client.py::TestA::test_z", "tests/bench/test_client.py"),
        ("tests/test_error_tree.py::test_w", "tests/test_error_tree.py"),
    ],
)
def test_groups_are_modules_or_whole_e2e_packages(nodeid: str, group: str) -> None:
    assert xdist_group_of(nodeid) == group
