"""The Ansible adapter: results from events, errors, secrets kept off disk and out of events."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from budcluster.adapters.ansible import (
    AnsibleConfigError,
    PlaybookFailed,
    parse_events,
    run_playbook,
)
from budcluster.errors import PermanentError, TemporaryError
from tests.ansible.helpers import local_inventory

PLAYBOOK = str(Path(__file__).parent / "files" / "secret_echo.yml")
SECRET = "s3cr3t-do-not-leak-7f1c"


def _leftover_dirs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("budcluster-ansible-*"))


def test_result_published_secret_hidden_and_private_dir_removed() -> None:
    before = _leftover_dirs()
    result = run_playbook(
        PLAYBOOK,
        local_inventory(),
        extravars={"label": "x"},
        secret_extravars={"secret_token": SECRET},
        timeout_s=60,
    )
    assert result.result("localhost", "echo") == {"length": len(SECRET), "label": "x"}
    assert result.changed == 0 and result.failures == []
    assert SECRET not in repr(result)
    assert _leftover_dirs() == before  # the 0700 private data dir (extravars on disk) is gone


def test_a_failed_task_names_task_host_and_message() -> None:
    with pytest.raises(PlaybookFailed) as caught:
        run_playbook(
            PLAYBOOK,
            local_inventory(),
            extravars={"label": "x", "fail": True},
            secret_extravars={"secret_token": SECRET},
            timeout_s=60,
        )
    failure = caught.value.failure
    assert (failure.host, failure.task) == ("localhost", "Fail on request")
    assert "disk on fire" in failure.msg
    assert isinstance(caught.value, PermanentError)
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value.result)


def test_a_kept_private_dir_holds_no_secret_in_its_events(tmp_path: Path) -> None:
    data_dir = tmp_path / "pd"
    run_playbook(
        PLAYBOOK,
        local_inventory(),
        extravars={"label": "x"},
        secret_extravars={"secret_token": SECRET},
        timeout_s=60,
        private_data_dir=data_dir,
    )
    assert data_dir.stat().st_mode & 0o077 == 0
    leaks = [p.relative_to(data_dir) for p in data_dir.rglob("*") if p.is_file()
             and SECRET in p.read_text(errors="replace")]  # fmt: skip
    # ansible-runner keeps extravars and the command's env on disk: only there, nowhere else.
    assert leaks and {str(p).split("/")[0] for p in leaks} <= {"env", "artifacts"}
    assert all(p.name in ("extravars", "command") for p in leaks), leaks


def test_unreachable_and_missing_playbook() -> None:
    with pytest.raises(AnsibleConfigError, match="does not exist"):
        run_playbook("no_such.yml", local_inventory(), extravars={}, timeout_s=10)
    events = [
        {"event": "runner_on_unreachable", "event_data": {"host": "h1", "task": "t",
                                                           "res": {"msg": "ssh: refused"}}},
        {"event": "runner_on_ok", "event_data": {"host": "h2", "task": "c",
                                                  "res": {"changed": True}}},
        {"event": "runner_on_failed", "event_data": {"host": "h2", "task": "ign",
                                                      "ignore_errors": True, "res": {}}},
    ]  # fmt: skip
    result = parse_events("p", "failed", 4, events)
    assert result.hosts["h1"].unreachable and result.failures[0].msg == "ssh: refused"
    assert result.changed == 1 and result.changed_tasks == [("h2", "c")]
    assert len(result.failures) == 1  # the ignored failure does not count
    from budcluster.adapters.ansible import HostUnreachable

    assert issubclass(HostUnreachable, TemporaryError)
