#!/usr/bin/env python3
"""Keep one runtime process alive on a host without systemd or a container engine.

Standard library only: deploy_runtime.yml copies this file to the host and runs it with
the host's python3. Everything lives in one run directory:

    spec.json       {"argv": [...], "env": {...}, "max_restarts": 3, "backoff_s": 1, ...}
    supervisor.pid  the supervisor's pid while it runs
    child.pid       the runtime's pid (also its process group) while it runs
    state.json      starting / running / restarting / failed / exited / stopped, with reason
    runtime.log     the runtime's stdout and stderr plus the supervisor's own lines

Commands (each prints one JSON object):

    start  --dir D   start the supervisor detached (own session) unless it already runs
    stop   --dir D [--forget [--remove-log]]
                     stop the runtime (process tree, systemd unit or container); --forget
                     also removes the run directory's files, the log only with --remove-log
    status --dir D [--port P] [--lines N]
                     state of the runtime whichever way it runs (spec.json "mode": process,
                     systemd, docker or podman), with the last log lines
    run    --dir D   the supervisor loop itself (start runs this in the background)

The runtime runs in its own process group, so stopping kills its whole tree (vLLM forks
workers). It is restarted on failure with exponential backoff, at most max_restarts times
in a row; a run that stayed up stable_s seconds resets the count.

The runtime's environment is the spec's "env" over an allow-list of this process's own
(PATH, HOME, locale, proxies: INHERITED_ENV), never all of it: whoever started the
supervisor (an ssh session, a worker on a local connection) may hold secrets there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DEFAULTS: dict[str, Any] = {
    "env": {},
    "cwd": None,
    "max_restarts": 3,
    "backoff_s": 1.0,
    "backoff_max_s": 30.0,
    "stable_s": 30.0,
    "stop_timeout_s": 10.0,
    "restart": "on-failure",
}
TAG = "[budcluster-supervise]"
INHERITED_ENV = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR", "SSH_AUTH_SOCK",
        "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
        "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
        "HF_HOME", "HF_HUB_CACHE",
    }
)  # fmt: skip
"""Variables of the supervisor's own environment the runtime may inherit (and LC_*)."""


def runtime_env(inherited: dict[str, str], spec_env: dict[str, Any]) -> dict[str, str]:
    """The allow-listed part of ``inherited``, with the spec's variables over it."""
    kept = {k: v for k, v in inherited.items() if k in INHERITED_ENV or k.startswith("LC_")}
    return {**kept, **{str(k): str(v) for k, v in spec_env.items()}}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive for our purposes.
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        if fields and fields[0] == "Z":
            return False
    return True


def _is_our_supervisor(pid: int | None, run_dir: Path) -> bool:
    """Guard against pid reuse: the pid must be this script supervising this directory."""
    if not _alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc (not Linux): trust the pidfile
    args = [part.decode(errors="replace") for part in cmdline]
    return any(a.endswith("budcluster_supervise.py") for a in args) and str(run_dir) in args


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, sort_keys=True))
    tmp.replace(path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _log_tail(path: Path, lines: int) -> list[str]:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:] if lines > 0 else []


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class Supervisor:
    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir
        self.spec = {**DEFAULTS, **_read_json(run_dir / "spec.json")}
        if not self.spec.get("argv"):
            raise SystemExit(f"{run_dir}/spec.json has no argv: nothing to run")
        self.log = (run_dir / "runtime.log").open("ab", buffering=0)
        self.stopping = False
        self.child: subprocess.Popen[bytes] | None = None

    def say(self, text: str) -> None:
        self.log.write(f"{_now()} {TAG} {text}\n".encode())

    def state(self, state: str, **extra: Any) -> None:
        _write_json(
            self.dir / "state.json",
            {"state": state, "at": _now(), "spec_sha256": self.spec.get("spec_sha256"), **extra},
        )

    def on_signal(self, signum: int, _frame: Any) -> None:
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            _kill_group(self.child.pid, signal.SIGTERM)

    def spawn(self) -> subprocess.Popen[bytes] | None:
        env = runtime_env(dict(os.environ), self.spec["env"])
        try:
            return subprocess.Popen(
                [str(a) for a in self.spec["argv"]],
                env=env,
                cwd=self.spec["cwd"] or None,
                stdin=subprocess.DEVNULL,
                stdout=self.log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop kills the whole tree
            )
        except OSError as exc:
            self.say(f"cannot start {self.spec['argv'][0]}: {exc}")
            return None

    def sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        (self.dir / "supervisor.pid").write_text(str(os.getpid()))
        failures = 0
        try:
            while not self.stopping:
                self.say(f"starting (restart {failures}): {json.dumps(self.spec['argv'])}")
                started = time.monotonic()
                self.child = self.spawn()
                if self.child is None:
                    code: int = 127
                else:
                    (self.dir / "child.pid").write_text(str(self.child.pid))
                    self.state("running", child_pid=self.child.pid, restarts=failures)
                    code = self.child.wait()
                    # Leftover grandchildren would hold the port of the next attempt.
                    _kill_group(self.child.pid, signal.SIGKILL)
                    with contextlib.suppress(OSError):
                        (self.dir / "child.pid").unlink()
                if self.stopping:
                    break
                self.say(f"runtime exited with code {code}")
                if time.monotonic() - started >= float(self.spec["stable_s"]):
                    failures = 0
                if code == 0 and self.spec["restart"] == "on-failure":
                    self.state("exited", exit_code=0, reason="the runtime exited with code 0")
                    return 0
                if failures >= int(self.spec["max_restarts"]):
                    reason = (
                        f"the runtime exited with code {code}; gave up after {failures} restarts"
                    )
                    self.say(reason)
                    self.state("failed", exit_code=code, restarts=failures, reason=reason)
                    return 1
                failures += 1
                delay = min(
                    float(self.spec["backoff_max_s"]),
                    float(self.spec["backoff_s"]) * 2 ** (failures - 1),
                )
                self.state("restarting", exit_code=code, restarts=failures, retry_in_s=delay)
                self.sleep(delay)
            self.say("stopped on request")
            self.state("stopped", reason="stopped on request")
            return 0
        finally:
            with contextlib.suppress(OSError):
                (self.dir / "supervisor.pid").unlink()


def cmd_run(run_dir: Path) -> int:
    # A runtime ignoring SIGTERM keeps run() waiting; ``stop`` then kills both after its timeout.
    return Supervisor(run_dir).run()


def cmd_start(run_dir: Path) -> dict[str, Any]:
    pid = _read_pid(run_dir / "supervisor.pid")
    if _is_our_supervisor(pid, run_dir):
        return {"started": False, "supervisor_pid": pid}
    for stale in ("supervisor.pid", "child.pid", "state.json"):
        with contextlib.suppress(OSError):
            (run_dir / stale).unlink()
    _write_json(run_dir / "state.json", {"state": "starting", "at": _now()})
    with (run_dir / "runtime.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "run", "--dir", str(run_dir)],
            env=runtime_env(dict(os.environ), {}),  # it outlives the session that started it
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            close_fds=True,
            start_new_session=True,  # setsid: outlives the ansible task that started it
        )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (run_dir / "supervisor.pid").exists():
        if process.poll() is not None:
            break
        time.sleep(0.02)
    return {"started": True, "supervisor_pid": process.pid}


def cmd_stop(
    run_dir: Path, timeout_s: float, *, forget_files: bool, remove_log: bool
) -> dict[str, Any]:
    if not run_dir.is_dir():
        return {"stopped": False, "removed": []}
    stopped = stop_other(_read_json(run_dir / "spec.json"))
    pid = _read_pid(run_dir / "supervisor.pid")
    if _is_our_supervisor(pid, run_dir):
        assert pid is not None
        os.kill(pid, signal.SIGTERM)
        stopped = True
        deadline = time.monotonic() + timeout_s + 5
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    child = _read_pid(run_dir / "child.pid")
    if child and _alive(child):
        # The supervisor died without cleaning up (kill -9): kill the runtime's tree.
        _kill_group(child, signal.SIGKILL)
        stopped = True
    for name in ("supervisor.pid", "child.pid"):
        with contextlib.suppress(OSError):
            (run_dir / name).unlink()
    removed = forget(run_dir, remove_log) if forget_files else []
    return {"stopped": stopped, "removed": removed}


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


UNIT_DIR = Path("/etc/systemd/system")
RUN_FILES = ("spec.json", "state.json", "supervisor.pid", "child.pid")


def _run(argv: list[str], timeout_s: float = 30.0) -> tuple[int, str]:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, str(exc)
    return done.returncode, (done.stdout + done.stderr).strip()


def _listening_state(port: int | None) -> tuple[str, str | None]:
    if port is None or _port_open(port):
        return "running", None
    return "starting", f"the runtime runs but nothing listens on port {port} yet"


def status_systemd(
    run_dir: Path, spec: dict[str, Any], port: int | None, lines: int
) -> dict[str, Any]:
    unit = str(spec["unit_name"])
    _rc, out = _run(
        ["systemctl", "show", unit, "--property=ActiveState,SubState,MainPID,Result,NRestarts"]
    )
    props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    active = props.get("ActiveState", "unknown")
    status: dict[str, Any] = {
        "unit": unit,
        "pid": int(props.get("MainPID", "0") or 0) or None,
        "restarts": int(props.get("NRestarts", "0") or 0),
        "log_tail": _log_tail(run_dir / "runtime.log", lines),
    }
    if active == "active":
        status["state"], status["reason"] = _listening_state(port)
    elif active in ("activating", "reloading"):
        status["state"], status["reason"] = "starting", f"unit {unit} is {active}"
    elif active == "failed":
        status["state"] = "failed"
        status["reason"] = f"unit {unit} failed ({props.get('Result', 'unknown')})"
    elif (UNIT_DIR / unit).exists():
        status["state"], status["reason"] = "failed", f"unit {unit} is {active}"
    else:
        status["state"], status["reason"] = "absent", f"unit {unit} is not installed"
    return status


def status_container(spec: dict[str, Any], port: int | None, lines: int) -> dict[str, Any]:
    engine, name = str(spec["mode"]), str(spec["container_name"])
    rc, out = _run([engine, "inspect", name])
    if rc != 0:
        return {"state": "absent", "reason": f"no container {name}", "log_tail": []}
    state = (json.loads(out) or [{}])[0].get("State", {})
    _rc, logs = _run([engine, "logs", "--tail", str(lines), name])
    status: dict[str, Any] = {
        "container": name,
        "pid": state.get("Pid") or None,
        "log_tail": logs.splitlines()[-lines:] if lines > 0 else [],
    }
    if state.get("Running"):
        status["state"], status["reason"] = _listening_state(port)
    elif state.get("Restarting") or state.get("Status") == "created":
        status["state"], status["reason"] = "starting", f"container {name} is {state.get('Status')}"
    else:
        status["state"] = "failed"
        status["reason"] = f"container {name} exited with code {state.get('ExitCode')}"
    return status


def stop_other(spec: dict[str, Any]) -> bool:
    """Stop and remove a systemd unit or a container; True when something was there."""
    mode = spec.get("mode")
    if mode == "systemd":
        unit = str(spec["unit_name"])
        unit_file = UNIT_DIR / unit
        present = unit_file.exists()
        _run(["systemctl", "disable", "--now", unit])
        with contextlib.suppress(OSError):
            unit_file.unlink()
        _run(["systemctl", "daemon-reload"])
        return present
    if mode in ("docker", "podman"):
        rc, _out = _run([str(mode), "rm", "-f", str(spec["container_name"])])
        return rc == 0
    return False


def forget(run_dir: Path, remove_log: bool) -> list[str]:
    removed = []
    names = [*RUN_FILES, "runtime.log"] if remove_log else list(RUN_FILES)
    for name in names:
        path = run_dir / name
        if path.exists():
            path.unlink()
            removed.append(name)
    if remove_log:
        with contextlib.suppress(OSError):
            run_dir.rmdir()
    return removed


def cmd_status(run_dir: Path, port: int | None, lines: int) -> dict[str, Any]:
    """The runtime's state, with the port it serves on so the controller can build the URL."""
    status = _runtime_status(run_dir, port, lines)
    spec_port = _read_json(run_dir / "spec.json").get("port") if run_dir.is_dir() else None
    if port or spec_port:
        status["port"] = int(port or spec_port)
    return status


def _runtime_status(run_dir: Path, port: int | None, lines: int) -> dict[str, Any]:
    if not run_dir.is_dir():
        return {"state": "absent", "reason": "nothing is deployed here", "log_tail": []}
    spec = _read_json(run_dir / "spec.json")
    if port is None and spec.get("port"):
        port = int(spec["port"])
    if spec.get("mode") == "systemd":
        return {"mode": "systemd", **status_systemd(run_dir, spec, port, lines)}
    if spec.get("mode") in ("docker", "podman"):
        return {"mode": spec["mode"], **status_container(spec, port, lines)}
    recorded = _read_json(run_dir / "state.json")
    supervisor_pid = _read_pid(run_dir / "supervisor.pid")
    child_pid = _read_pid(run_dir / "child.pid")
    supervisor_alive = _is_our_supervisor(supervisor_pid, run_dir)
    child_alive = _alive(child_pid)
    status: dict[str, Any] = {
        "mode": "process",
        "supervisor_alive": supervisor_alive,
        "supervisor_pid": supervisor_pid if supervisor_alive else None,
        "pid": child_pid if child_alive else None,
        "restarts": recorded.get("restarts", 0),
        "spec_sha256": spec.get("spec_sha256"),
        "log_tail": _log_tail(run_dir / "runtime.log", lines),
    }
    kind = recorded.get("state")
    if supervisor_alive and child_alive:
        status["state"], reason = _listening_state(port)
        if reason:
            status["reason"] = reason
    elif supervisor_alive:
        status["state"] = "starting"
        status["reason"] = (
            f"restarting after exit code {recorded.get('exit_code')}"
            if kind == "restarting"
            else "the supervisor is starting the runtime"
        )
    elif kind in ("failed", "exited"):
        status["state"] = "failed"
        status["reason"] = recorded.get("reason") or kind
    elif kind == "stopped" or not spec:
        status["state"] = "absent"
        status["reason"] = "stopped"
    else:
        status["state"] = "failed"
        status["reason"] = "the supervisor is not running (killed?)"
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Supervise one runtime process.")
    parser.add_argument("command", choices=["start", "stop", "status", "run"])
    parser.add_argument("--dir", required=True, help="the run directory (holds spec.json)")
    parser.add_argument("--port", type=int, default=None, help="status: port the runtime serves")
    parser.add_argument("--lines", type=int, default=40, help="status: log lines to include")
    parser.add_argument("--timeout", type=float, default=10.0, help="stop: seconds to wait")
    parser.add_argument("--forget", action="store_true", help="stop: remove the run files too")
    parser.add_argument("--remove-log", action="store_true", help="stop --forget: and the log")
    args = parser.parse_args(argv)
    run_dir = Path(args.dir).expanduser().resolve()
    if args.command == "run":
        return cmd_run(run_dir)
    if args.command == "start":
        result = cmd_start(run_dir)
    elif args.command == "stop":
        result = cmd_stop(
            run_dir, args.timeout, forget_files=args.forget, remove_log=args.remove_log
        )
    else:
        result = cmd_status(run_dir, args.port, args.lines)
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
