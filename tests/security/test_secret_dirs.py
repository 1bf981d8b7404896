"""Secrets a tool needs as a file live in a private directory per process; what a process
killed with SIGKILL leaves there is removed by the next process that needs one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from budcluster import secretfiles
from budcluster.secretfiles import (
    UnsafeSecretsDir,
    process_secret_dir,
    sweep_stale_secret_dirs,
    temporary_secret_file,
)

HOLD_A_SECRET = """
import sys, time
from budcluster.secretfiles import temporary_secret_file
with temporary_secret_file(sys.argv[1], name="id_ssh") as path:
    print(path, flush=True)
    time.sleep(60)
"""


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "secrets"
    monkeypatch.setenv("BUDCLUSTER_SECRETS_DIR", str(root))
    # Forget this process's directory from earlier tests, so it is made under ``root``.
    monkeypatch.setattr(secretfiles, "_process_dir", None)
    return root


def _holder(root: Path, secret: str) -> tuple[subprocess.Popen[str], Path]:
    env = dict(os.environ, BUDCLUSTER_SECRETS_DIR=str(root))
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_A_SECRET, secret], env=env, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    return child, Path(child.stdout.readline().strip())


def test_a_secret_file_is_private_and_removed_after_use(root: Path) -> None:
    with temporary_secret_file("s3cret", name="key") as path:
        assert path.read_text() == "s3cret"
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.parent.stat().st_mode & 0o777 == 0o700
        assert root in path.parents
        assert root.stat().st_mode & 0o777 == 0o700
    assert not path.exists() and not path.parent.exists()


def test_a_killed_process_leaves_its_secret_until_the_next_process_sweeps_it(
    root: Path,
) -> None:
    child, path = _holder(root, "left-behind")
    assert path.read_text() == "left-behind"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    assert path.exists(), "SIGKILL gives no chance to clean up: the sweep is what removes it"
    fresh = process_secret_dir()
    assert not path.exists() and not path.parent.parent.exists()
    assert fresh.parent == root


def test_the_sweep_leaves_live_processes_alone(root: Path) -> None:
    child, path = _holder(root, "in-use")
    try:
        assert sweep_stale_secret_dirs(root) == []
        assert path.read_text() == "in-use"
    finally:
        child.kill()
        child.wait(timeout=10)
    assert sweep_stale_secret_dirs(root) == [path.parent.parent]


def test_a_reused_pid_does_not_keep_a_dead_process_directory(root: Path) -> None:
    root.mkdir(mode=0o700)
    # Our own pid with another start time: the process that made it is gone.
    stale = root / f"{os.getpid()}-1"
    stale.mkdir()
    (stale / "key").write_text("old")
    assert sweep_stale_secret_dirs(root) == [stale]


def test_the_cli_sweeps(root: Path) -> None:
    child, path = _holder(root, "cli")
    child.kill()
    child.wait(timeout=10)
    budcluster = str(Path(sys.executable).with_name("budcluster"))
    done = subprocess.run(
        [budcluster, "secrets", "sweep"],
        env=dict(os.environ, BUDCLUSTER_SECRETS_DIR=str(root)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "removed 1 stale directory" in done.stdout
    assert not path.exists()


def test_a_symlinked_root_is_refused(tmp_path: Path, root: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    root.symlink_to(elsewhere)
    with pytest.raises(UnsafeSecretsDir, match="symlink"):
        process_secret_dir()
    assert list(elsewhere.iterdir()) == []


def test_a_root_owned_by_another_user_is_refused(root: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root to make a directory owned by another user")
    root.mkdir(mode=0o700)
    os.chown(root, 65534, 65534)
    with pytest.raises(UnsafeSecretsDir, match="belongs to uid 65534"):
        process_secret_dir()


def test_a_loose_root_is_tightened(root: Path) -> None:
    root.mkdir(mode=0o755)
    root.chmod(0o755)
    process_secret_dir()
    assert root.stat().st_mode & 0o777 == 0o700


def test_process_directories_are_named_for_pid_and_start_time(root: Path) -> None:
    directory = process_secret_dir()
    pid, _, started = directory.name.partition("-")
    assert int(pid) == os.getpid() and started.isdigit()
