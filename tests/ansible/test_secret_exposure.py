"""Secrets stay out of other processes' reach: no argv, no environment, no leftover file.

- S3 keys for staging travel on the transfer's stdin, not in an ``environment:`` that
  becomes ``sh -c 'AWS_SECRET_ACCESS_KEY=...'`` on the host;
- ansible-runner's private data directory (extra vars, become password) lives under the
  per-process secrets directory, so a ``kill -9`` leaves it for the next sweep only;
- the worker's own environment (API keys, database URL) reaches neither Ansible's modules
  nor the model server the supervisor starts.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from budcluster.adapters.ansible import run_playbook
from budcluster.secretfiles import sweep_stale_secret_dirs
from budcluster.targets.base import ModelSourceSpec, RolloutSpec
from budcluster.targets.hosts import HostsTarget
from budcluster.transfer.console import THROTTLE_ENV
from tests.ansible.helpers import free_port, local_inventory, plan
from tests.k8s_emulator.waiting import eventually

FILES = Path(__file__).parent / "files"
SUPERVISE = Path(__file__).parents[2] / "playbooks" / "files" / "budcluster_supervise.py"
ENV_ECHO = "import time; print('up', flush=True); time.sleep(120)"


def _canary() -> str:
    return f"canary-{uuid.uuid4().hex}"


def _proc_read(pid: str, name: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return b""


def _processes_holding(secret: str) -> list[str]:
    """Every process whose argv or environment holds ``secret``."""
    needle = secret.encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or entry.name == str(os.getpid()):
            continue
        for name in ("cmdline", "environ"):
            if needle in _proc_read(entry.name, name):
                argv = _proc_read(entry.name, "cmdline").replace(b"\0", b" ")
                found.append(f"{entry.name} ({name}): {argv[:200]!r}")
    return found


def _files_holding(secret: str, root: Path, skip: Path | None = None) -> list[Path]:
    needle = secret.encode()
    found = []
    for directory, dirs, names in os.walk(root):
        if skip is not None and Path(directory) == skip:
            dirs.clear()
            continue
        for name in names:
            path = Path(directory) / name
            try:
                info = path.lstat()
                if not path.is_file() or path.is_symlink() or info.st_size > 4 << 20:
                    continue
                if needle in path.read_bytes():
                    found.append(path)
            except OSError:
                continue
    return found


def _environ_of(pid: int) -> dict[str, str]:
    pairs = _proc_read(str(pid), "environ").decode(errors="replace").split("\0")
    return dict(pair.split("=", 1) for pair in pairs if "=" in pair)


# --- staging credentials ---------------------------------------------------------------


def test_staging_credentials_are_in_no_process_argv_or_environment(
    target: HostsTarget, tmp_path: Path
) -> None:
    secret = _canary()
    source = tmp_path / "src"
    source.mkdir()
    for index in range(4):
        (source / f"part-{index}.bin").write_bytes(os.urandom(400_000))
    credentials = {
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": secret,
        THROTTLE_ENV: "400000",  # about four seconds of copying to watch
    }
    outcome: dict[str, object] = {}

    def stage() -> None:
        try:
            outcome["staged"] = target.stage_model(
                ModelSourceSpec(str(source), credentials), "tiny", ["localhost"]
            )
        except Exception as exc:  # reported by the assertion below
            outcome["error"] = exc

    worker = threading.Thread(target=stage)
    worker.start()
    leaks: list[str] = []
    transfers_seen = 0
    remote_tmp = Path.home() / ".ansible" / "tmp"
    while worker.is_alive():
        leaks += _processes_holding(secret)
        if remote_tmp.is_dir():
            leaks += [str(p) for p in _files_holding(secret, remote_tmp)]
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and b"budcluster.transfer" in _proc_read(entry.name, "cmdline"):
                transfers_seen += 1
        time.sleep(0.05)
    worker.join()
    assert "error" not in outcome, outcome.get("error")
    assert transfers_seen > 10, "the transfer ran too briefly to be watched"
    assert leaks == []
    staged = outcome["staged"]
    assert staged.files == 4  # type: ignore[attr-defined]


# --- the private data directory after kill -9 -------------------------------------------

_CHILD = """
import sys
from budcluster.adapters.ansible import run_playbook
from tests.ansible.helpers import local_inventory
run_playbook(sys.argv[1], local_inventory(), extravars={"started_file": sys.argv[2]},
             secret_extravars={"secret_token": sys.argv[3]}, timeout_s=120)
"""


def _kill_runs_under(marker: str) -> None:
    """Stop the ansible-playbook the killed child left behind (its argv names ``marker``)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and marker.encode() in _proc_read(entry.name, "cmdline"):
            pid = int(entry.name)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                # pexpect made it a group leader: its group holds the tasks it started.
                if os.getpgid(pid) == pid:
                    os.killpg(pid, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)


def test_kill_9_leaves_the_private_data_dir_only_under_the_secrets_root(
    tmp_path: Path,
) -> None:
    secret = _canary()
    secrets_root = tmp_path / "secrets"
    started = tmp_path / "started"
    env = {**os.environ, "BUDCLUSTER_SECRETS_DIR": str(secrets_root)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(FILES / "slow_secret.yml"), str(started), secret],
        env=env,
        cwd=Path(__file__).parents[2],
    )
    try:
        eventually(started.exists, timeout=60, what="the playbook to start")
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        outside = _files_holding(secret, Path("/tmp"), skip=secrets_root)
        outside += _files_holding(secret, Path.home() / ".ansible")
        assert outside == []
        assert _files_holding(secret, secrets_root)  # the run's files are there, 0700
        assert secrets_root.stat().st_mode & 0o077 == 0
    finally:
        if child.poll() is None:
            child.kill()
        _kill_runs_under(str(secrets_root))
    removed = sweep_stale_secret_dirs(secrets_root)
    assert removed and _files_holding(secret, secrets_root) == []


# --- the worker's environment ---------------------------------------------------------


@pytest.fixture
def worker_secrets(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "PREFECT_API_AUTH_STRING": _canary(),
        "BUDCLUSTER_DATABASE_URL": "postgresql://u:" + _canary() + "@db/x",
        "AWS_SECRET_ACCESS_KEY": _canary(),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("LC_TIME", "C")
    return values


def test_modules_and_lookups_do_not_see_the_worker_environment(
    worker_secrets: dict[str, str],
) -> None:
    result = run_playbook(
        str(FILES / "show_env.yml"),
        local_inventory(),
        extravars={"probe": "PREFECT_API_AUTH_STRING"},
        timeout_s=60,
    )
    seen = result.result("localhost", "env")
    module_env = dict(line.split("=", 1) for line in seen["module"] if "=" in line)
    assert not set(worker_secrets) & set(module_env), sorted(module_env)
    assert not any(v in line for v in worker_secrets.values() for line in seen["module"])
    assert seen["lookup"] == ""
    # What a host command legitimately needs is still there.
    assert module_env["HTTPS_PROXY"] == "http://proxy.example:3128"
    assert module_env["LC_TIME"] == "C"
    assert module_env["HOME"] == os.environ["HOME"] and "PATH" in module_env


@pytest.fixture
def deployed_target(target: HostsTarget) -> Iterator[HostsTarget]:
    yield target
    target.delete("envcheck", remove_log=True)


def test_the_model_server_does_not_inherit_the_worker_environment(
    worker_secrets: dict[str, str], deployed_target: HostsTarget, tmp_path: Path
) -> None:
    runtime = plan(
        host_command=["python", "-c", ENV_ECHO, "--model", "/c/tiny", "--port", "8000"],
        host_env={"RUNTIME_SETTING": "kept"},
    )
    deployed_target.roll_out(RolloutSpec("envcheck", runtime, str(tmp_path), port=free_port()))
    run_dir = Path(deployed_target.state_dir) / "runtimes" / "envcheck"
    child = eventually(
        lambda: (run_dir / "child.pid").exists() and int((run_dir / "child.pid").read_text()),
        timeout=30,
        what="the runtime to start",
    )
    supervisor = int((run_dir / "supervisor.pid").read_text())
    for pid in (child, supervisor):
        environ = _environ_of(pid)
        assert not set(worker_secrets) & set(environ), (pid, sorted(environ))
    assert _environ_of(child)["RUNTIME_SETTING"] == "kept"


def test_the_supervisor_passes_only_an_allow_list_and_the_spec_env(tmp_path: Path) -> None:
    """Whatever environment the supervisor was started with (an ssh session's, say)."""
    secret = _canary()
    (tmp_path / "spec.json").write_text(
        json.dumps({"argv": [sys.executable, "-c", ENV_ECHO], "env": {"FROM_SPEC": "yes"}})
    )
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "NO_PROXY": "localhost",
        "SSH_AUTH_SOCK": "/tmp/agent.sock",
        "DATABASE_PASSWORD": secret,
        "SSH_CONNECTION": "10.0.0.1 22 10.0.0.2 5555",
    }
    supervise = [sys.executable, str(SUPERVISE)]
    subprocess.run([*supervise, "start", "--dir", str(tmp_path)], env=env, check=True)
    try:
        child = eventually(
            lambda: (tmp_path / "child.pid").exists() and int((tmp_path / "child.pid").read_text()),
            timeout=30,
            what="the runtime to start",
        )
        environ = _environ_of(child)
        assert secret not in "".join(environ.values())
        assert environ == {
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "LANG": "C.UTF-8",
            "NO_PROXY": "localhost",
            "SSH_AUTH_SOCK": "/tmp/agent.sock",
            "FROM_SPEC": "yes",
        }
    finally:
        subprocess.run([*supervise, "stop", "--dir", str(tmp_path)], env=env, check=False)


# --- the transfer's credentials on stdin ------------------------------------------------


def test_the_transfer_reads_its_keys_from_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from budcluster.transfer.__main__ import main

    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    keys = {
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": _canary(),
        "BUDCLUSTER_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens
    }
    argv = ["s3://bucket/model", str(tmp_path / "dest"), "--json", "--credentials-stdin"]
    # The keys were found (no "set AWS_ACCESS_KEY_ID" refusal): the endpoint was tried.
    assert main(argv, stdin=io.StringIO(json.dumps(keys))) == 75
    out = json.loads(capsys.readouterr().out)
    assert out["error"] == "S3Unavailable" and keys["AWS_SECRET_ACCESS_KEY"] not in str(out)


@pytest.mark.parametrize(
    "text", ["not json {secret}", '["{secret}"]', '{{"A": 1, "B": "{secret}"}}']
)
def test_bad_credentials_on_stdin_get_one_line_that_does_not_repeat_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    from budcluster.transfer.__main__ import main

    secret = _canary()
    argv = [str(tmp_path), str(tmp_path / "dest"), "--json", "--credentials-stdin"]
    assert main(argv, stdin=io.StringIO(text.format(secret=secret))) == 2
    captured = capsys.readouterr()
    assert secret not in captured.out + captured.err
    assert captured.err.count("\n") == 1 and "--credentials-stdin" in captured.err
    assert json.loads(captured.out)["retryable"] is False
