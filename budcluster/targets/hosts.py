"""The ``hosts`` cluster target: bare-metal or VM servers reached through an Ansible inventory.

Every operation runs one playbook from ``playbooks/`` through :mod:`budcluster.adapters.ansible`.
This module computes everything a playbook needs in Python (the runtime's argv with real
executable and model paths, the container command line, the systemd unit text, a spec hash
for idempotency), so the playbooks stay generic and the rendering is tested without hosts.

Node names are inventory host names: the collector runs with ``NODE_NAME`` set to the
inventory name, so a plan's placement names the host to deploy on.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import sys
import tempfile
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from budcluster.adapters.ansible import (
    AnsibleConfigError,
    AnsibleError,
    AnsibleTimeout,
    HostUnreachable,
    PlaybookFailed,
    PlaybookResult,
    run_playbook,
)
from budcluster.endpoints import EndpointCheck, wait_until_ready
from budcluster.errors import ConfigurationError, PermanentError, TemporaryError
from budcluster.hardware.inventory import NodeInventory
from budcluster.planning.models import RuntimePlan
from budcluster.targets.base import (
    AccessReport,
    ModelSourceSpec,
    NodeHealth,
    ProgressCallback,
    RolloutSpec,
    RuntimeFailed,
    RuntimeState,
    RuntimeStatus,
    StagedModel,
    TargetError,
    TransferProgress,
    check_safe_name,
)

RUN_DIR_TOKEN = "@RUN_DIR@"
"""Stands for the host's absolute run directory in the unit text; the playbook substitutes it."""

# An Ansible status run takes seconds; between them the endpoint is polled directly.
_LIVENESS_INTERVAL_S = 5.0
_MODEL_FLAGS = {"llama.cpp": ("-m", "--model"), "vllm": ("--model",)}
"""Where each engine takes its model; vLLM's host command also has python's own ``-m``."""


class HostsTargetError(TargetError):
    """Base class of the hosts target's errors."""


class HostsConfigError(HostsTargetError, ConfigurationError):
    """A name, the inventory or an input is unusable; the message says which and how to fix it."""


class HostsOperationFailed(HostsTargetError, PermanentError):
    """A playbook task failed on a host (the message names the task, the host and why)."""


class HostsUnavailable(HostsTargetError, TemporaryError):
    """A host was unreachable or the playbook ran out of time; retrying may help."""


@dataclass(frozen=True)
class HostsTimeouts:
    """Seconds each operation's playbook run may take, in all."""

    verify_s: float = 60.0
    detect_s: float = 300.0
    stage_s: float = 6 * 3600.0
    roll_out_s: float = 600.0
    status_s: float = 60.0
    delete_s: float = 180.0


@dataclass(frozen=True)
class RestartPolicy:
    """How the supervisor (process mode), systemd and the container engine restart a runtime."""

    max_restarts: int = 3
    backoff_s: float = 2.0
    backoff_max_s: float = 30.0
    stable_s: float = 60.0
    """A run that stayed up this long resets the restart count (process mode)."""
    stop_timeout_s: float = 15.0


def check_name(value: str, field_name: str) -> str:
    """Names become file, unit and container names on hosts: keep them plain."""
    return check_safe_name(value, field_name, HostsConfigError)


def _flag_value_index(argv: Sequence[str], flags: Sequence[str]) -> int | None:
    for index, arg in enumerate(argv[:-1]):
        if arg in flags:
            return index + 1
    return None


def host_argv(
    plan: RuntimePlan, model_path: str, executables: Mapping[str, str], port: int
) -> list[str]:
    """``plan.host_command`` with the executable, the model path and the port made real.

    The planner wrote the controller's view of the model (a directory for vLLM, a GGUF file
    for llama.cpp); on the host the model lives in ``model_path``, where stage_model put it.
    """
    argv = list(plan.host_command)
    if not argv:
        raise HostsConfigError("the plan's host_command is empty: re-plan the deployment")
    argv[0] = executables.get(argv[0], argv[0])
    model_at = _flag_value_index(argv, _MODEL_FLAGS[plan.engine])
    if model_at is not None:
        if plan.engine == "llama.cpp":
            argv[model_at] = f"{model_path.rstrip('/')}/{Path(argv[model_at]).name}"
        else:
            argv[model_at] = model_path
    port_at = _flag_value_index(argv, ("--port",))
    if port_at is not None:
        argv[port_at] = str(port)
    return argv


def container_run_argv(
    engine: str,
    container_name: str,
    plan: RuntimePlan,
    model_path: str,
    port: int,
    spec_sha256: str,
    restart: RestartPolicy,
) -> list[str]:
    """The exact ``docker run`` / ``podman run`` command line for the plan's image and args."""
    args = list(plan.args)
    model_at = _flag_value_index(args, _MODEL_FLAGS[plan.engine])
    if model_at is None:
        raise HostsConfigError("the plan's container args name no model (--model/-m): re-plan")
    in_container = args[model_at]
    # llama.cpp is given a GGUF file inside the mount, vLLM the model directory itself.
    mount = str(Path(in_container).parent) if plan.engine == "llama.cpp" else in_container
    port_at = _flag_value_index(args, ("--port",))
    container_port = args[port_at] if port_at is not None else str(port)
    argv = [
        engine, "run", "-d",
        "--name", container_name,
        "--label", f"budcluster.spec={spec_sha256}",
        "--restart", f"on-failure:{restart.max_restarts}",
        "-p", f"{port}:{container_port}",
        "-v", f"{model_path}:{mount}:ro",
    ]  # fmt: skip
    devices = [i for p in plan.placements[:1] for i in p.device_indices]
    if plan.device_kind == "cuda" and devices:
        listed = ",".join(str(i) for i in devices)
        if engine == "docker":
            argv += ["--gpus", f'"device={listed}"']
        else:
            argv += [arg for i in devices for arg in ("--device", f"nvidia.com/gpu={i}")]
    elif plan.device_kind == "hpu":
        argv += ["--runtime", "habana", "--cap-add", "sys_nice", "--ipc", "host"]
    for key, value in sorted(plan.env.items()):
        argv += ["--env", f"{key}={value}"]
    return [*argv, plan.image, *args]


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_./:=,@+%$-]+")
_EXEC_PREFIXES = "@-:+!|"
"""Leading characters that change how systemd runs ExecStart= (ignore failure, privileges)."""


def _c_escaped(value: str) -> str:
    """``value`` for a double-quoted systemd word: quotes, backslashes and every character
    that could end or fold a line (control, line and paragraph separators) as C escapes."""
    out = []
    for char in value:
        if char in '\\"':
            out.append("\\" + char)
        elif char == " " or char.isprintable():
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def _systemd_word(value: str, field_name: str, *, exec_line: bool) -> str:
    """One ExecStart= or Environment= word that systemd reads back as exactly ``value``.

    ``%`` is doubled everywhere (specifiers); ``$`` only in ExecStart=, where systemd
    substitutes variables (in Environment= it has no special meaning).
    """
    if "\0" in value:
        raise HostsConfigError(
            f"{field_name} holds a NUL character, which no argument or variable can carry: "
            "remove it"
        )
    escaped = value.replace("%", "%%")
    if exec_line:
        escaped = escaped.replace("$", "$$")
    return escaped if _PLAIN_WORD.fullmatch(escaped) else _c_escaped(escaped)


def _systemd_text(value: str) -> str:
    """Free text for Description=: shown, never obeyed (no line breaks, no specifiers)."""
    shown = "".join(
        c if c == " " or c.isprintable() else c.encode("unicode_escape").decode() for c in value
    )
    return shown.replace("%", "%%")


def _exec_start(argv: Sequence[str]) -> str:
    if not argv or argv[0][:1] in _EXEC_PREFIXES:  # "" is in every string
        raise HostsConfigError(
            f"the runtime's executable {argv[0] if argv else ''!r} cannot start a systemd "
            f"ExecStart= (empty, or starting with one of {_EXEC_PREFIXES}): map it to an "
            "absolute path in the target's executables"
        )
    return " ".join(
        _systemd_word(arg, f"the runtime's argument {i}", exec_line=True)
        for i, arg in enumerate(argv)
    )


def _environment_line(name: str, value: str) -> str:
    if not _ENV_NAME.match(name):
        raise HostsConfigError(
            f"the runtime's environment variable name {name!r} is not valid: use letters, "
            "digits and '_', not starting with a digit"
        )
    field_name = f"the runtime's environment variable {name}"
    return f"Environment={_systemd_word(f'{name}={value}', field_name, exec_line=False)}"


def systemd_unit_text(
    deployment_name: str,
    plan: RuntimePlan,
    argv: Sequence[str],
    env: Mapping[str, str],
    restart: RestartPolicy,
    run_dir: str = RUN_DIR_TOKEN,
) -> str:
    """The unit file for running ``argv`` as a system service that logs into the run directory.

    Every value is quoted so that systemd reads back exactly what was given: a model name
    (from a GGUF's metadata) or an engine argument cannot add a directive.
    """
    description = _systemd_text(
        f"budcluster runtime {deployment_name} ({plan.engine}, {plan.model_name})"
    )
    lines = [
        "[Unit]",
        f"Description={description}",
        "After=network-online.target",
        "Wants=network-online.target",
        f"StartLimitBurst={restart.max_restarts + 1}",
        f"StartLimitIntervalSec={int(restart.stable_s)}",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={_exec_start(argv)}",
        *(_environment_line(k, v) for k, v in sorted(env.items())),
        "Restart=on-failure",
        f"RestartSec={restart.backoff_s:g}",
        f"TimeoutStopSec={restart.stop_timeout_s:g}",
        "KillMode=control-group",
        f"StandardOutput=append:{run_dir}/runtime.log",
        f"StandardError=append:{run_dir}/runtime.log",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


def runtime_spec(
    argv: Sequence[str], env: Mapping[str, str], port: int, restart: RestartPolicy
) -> dict[str, Any]:
    """What the supervisor runs, with the sha256 that decides whether a redeploy restarts."""
    spec: dict[str, Any] = {
        "argv": list(argv),
        "env": dict(sorted(env.items())),
        "port": port,
        "restart": "on-failure",
        "max_restarts": restart.max_restarts,
        "backoff_s": restart.backoff_s,
        "backoff_max_s": restart.backoff_max_s,
        "stable_s": restart.stable_s,
        "stop_timeout_s": restart.stop_timeout_s,
    }
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    spec["spec_sha256"] = hashlib.sha256(canonical.encode()).hexdigest()
    return spec


def build_collector_zip(dest: Path) -> Path:
    """Zip the stdlib-only collector (budcluster/__init__.py and budcluster/hardware/*.py).

    Python imports straight from a zip on PYTHONPATH, so one file travels to each host.
    """
    package = Path(__file__).resolve().parents[1]
    sources = [package / "__init__.py", *sorted((package / "hardware").glob("*.py"))]
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as archive:
        for source in sources:
            # A fixed timestamp keeps the archive byte-identical between runs.
            info = zipfile.ZipInfo(str(source.relative_to(package.parent)), (1980, 1, 1, 0, 0, 0))
            archive.writestr(info, source.read_bytes())
    return dest


def _status_from_result(node: str, data: Mapping[str, Any], port: int | None) -> RuntimeStatus:
    state = RuntimeState(str(data.get("state", "absent")))
    address = str(data.get("address") or node)
    if address == "localhost":
        address = "127.0.0.1"  # servers bound to 0.0.0.0 do not answer on ::1
    port = port or (int(data["port"]) if data.get("port") else None)
    endpoint = (
        f"http://{address}:{port}"
        if port and state in (RuntimeState.RUNNING, RuntimeState.STARTING)
        else None
    )
    log_tail = [str(line) for line in data.get("log_tail") or []]
    reason = data.get("reason")
    if state is RuntimeState.FAILED and log_tail:
        reason = f"{reason or 'failed'}; last log lines:\n" + "\n".join(log_tail[-20:])
    detail = {"node": node}
    for key in ("mode", "pid", "supervisor_pid", "restarts", "unit", "container", "spec_sha256"):
        if data.get(key) is not None:
            detail[key] = str(data[key])
    return RuntimeStatus(state, endpoint, reason, log_tail, detail)


_STATE_RANK = {
    RuntimeState.RUNNING: 0,
    RuntimeState.STARTING: 1,
    RuntimeState.FAILED: 2,
    RuntimeState.ABSENT: 3,
}


@dataclass
class HostsTarget:
    """A ClusterTarget for servers in an Ansible inventory (text, INI or YAML).

    ``executables`` maps the plan's command names to paths on the hosts, e.g.
    ``{"llama-server": "/root/.cache/budcluster/llama.cpp/0.3.36/bin/llama-server"}``.
    ``state_dir`` is each host's directory for models (``models/<name>``), runtimes
    (``runtimes/<deployment>``: spec, pidfiles, log) and the supervisor (``bin/``).
    ``runtime_mode`` forces docker, podman, systemd or process instead of detecting.
    """

    inventory_text: str
    ssh_key_file: Path | None = None
    become_password: str | None = field(default=None, repr=False)
    executables: dict[str, str] = field(default_factory=dict)
    state_dir: str = "~/.budcluster"
    timeouts: HostsTimeouts = field(default_factory=HostsTimeouts)
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    runtime_mode: str = "auto"
    log_lines: int = 40
    last_result: PlaybookResult | None = field(default=None, init=False, repr=False)
    """The last playbook run's result (changed counts, per-host summaries), for callers and tests."""

    def __post_init__(self) -> None:
        if not self.inventory_text.strip():
            raise HostsConfigError("inventory_text is empty: give an Ansible inventory (INI/YAML)")
        if not self.state_dir or "$" in self.state_dir or not self.state_dir.isprintable():
            # Ansible's file modules expand $VARS in paths: the directory would move.
            raise HostsConfigError(
                f"state_dir {self.state_dir!r} is not usable: give a path without '$' or "
                "control characters (a leading ~ is fine)"
            )
        if self.runtime_mode not in ("auto", "docker", "podman", "systemd", "process"):
            raise HostsConfigError(
                f"runtime_mode {self.runtime_mode!r} is unknown: use auto, docker, podman, "
                "systemd or process"
            )

    # --- plumbing -----------------------------------------------------------------------

    def _run(
        self,
        playbook: str,
        extravars: Mapping[str, Any],
        timeout_s: float,
        *,
        limit: str | None = None,
        secret_extravars: Mapping[str, Any] | None = None,
        check: bool = False,
    ) -> PlaybookResult:
        common = {
            "budcluster_state_dir": self.state_dir,
            "controller_python": sys.executable,
            "log_lines": self.log_lines,
        }
        try:
            self.last_result = run_playbook(
                playbook,
                self.inventory_text,
                extravars={**common, **extravars},
                secret_extravars=secret_extravars,
                limit=limit,
                check=check,
                timeout_s=timeout_s,
                ssh_key_file=self.ssh_key_file,
                become_password=self.become_password,
            )
            return self.last_result
        except PlaybookFailed as exc:
            raise HostsOperationFailed(f"{playbook}: {exc}") from exc
        except (HostUnreachable, AnsibleTimeout) as exc:
            raise HostsUnavailable(f"{playbook}: {exc}") from exc
        except AnsibleConfigError as exc:
            raise HostsConfigError(f"{playbook}: {exc}") from exc
        except AnsibleError as exc:
            raise HostsOperationFailed(f"{playbook}: {exc}") from exc

    # --- ClusterTarget --------------------------------------------------------------------

    def verify_access(self) -> AccessReport:
        result = self._run("verify_access.yml", {}, self.timeouts.verify_s)
        nodes = sorted(result.results)
        pythons = {n: result.result(n, "access").get("python", "?") for n in nodes}
        return AccessReport(
            kind="hosts",
            nodes=nodes,
            detail=", ".join(f"{n}: python {v}" for n, v in pythons.items()),
        )

    def node_health(self) -> dict[str, NodeHealth]:
        """Hosts that answer are ready; servers have no scheduler, taints or pressure."""
        return {
            name: NodeHealth(name, ready=True, schedulable=True, taints=[], pressure=[])
            for name in self.verify_access().nodes
        }

    def detect_nodes(self) -> list[NodeInventory]:
        with tempfile.TemporaryDirectory(prefix="budcluster-collector-") as tmp:
            archive = build_collector_zip(Path(tmp) / "budcluster_collector.zip")
            result = self._run(
                "collect_node_info.yml", {"collector_zip": str(archive)}, self.timeouts.detect_s
            )
        return [
            NodeInventory.from_fragment(result.result(host, "inventory"))
            for host in sorted(result.results)
        ]

    def stage_model(
        self,
        source: ModelSourceSpec,
        model_name: str,
        nodes: Sequence[str],
        progress: ProgressCallback | None = None,
    ) -> StagedModel:
        """Copy the model onto ``nodes``; ``progress`` hears once, when every host is done."""
        check_name(model_name, "model_name")
        if not nodes:
            raise HostsConfigError("stage_model needs at least one node (inventory host name)")
        result = self._run(
            "stage_model.yml",
            {"model_name": model_name, "source_uri": source.uri},
            self.timeouts.stage_s,
            limit=",".join(nodes),
            secret_extravars={"transfer_env": dict(source.credentials_env)},
        )
        reports = {node: result.result(node, "transfer") for node in nodes}
        paths = {str(r["path"]) for r in reports.values()}
        digests = {_manifest_digest(r) for r in reports.values()}
        if len(paths) != 1 or len(digests) != 1:
            raise HostsOperationFailed(
                f"the hosts disagree on the staged model: paths {sorted(paths)}, manifests "
                f"{sorted(digests)}; give every host the same state_dir and rerun"
            )
        first = next(iter(reports.values()))
        files = int(first.get("files", 0))
        total = int(first.get("bytes_total", first.get("bytes", 0)))
        staged = StagedModel(
            model_name=model_name,
            path=paths.pop(),
            nodes=list(nodes),
            files=files,
            bytes=total,
            bytes_copied=sum(int(r.get("bytes_copied", 0)) for r in reports.values()),
            seconds=max(float(r.get("seconds", 0.0)) for r in reports.values()),
            manifest_sha256=digests.pop(),
        )
        if progress is not None:
            progress(TransferProgress(files, files, total, total, staged.seconds))
        return staged

    def render(self, spec: RolloutSpec) -> dict[str, Any]:
        """The deploy playbook's extravars for ``spec`` (every runtime form, rendered)."""
        name = check_name(spec.deployment_name, "deployment_name")
        plan = spec.plan
        argv = host_argv(plan, spec.model_path, self.executables, spec.port)
        runtime = runtime_spec(argv, plan.host_env, spec.port, self.restart)
        container_name = f"budcluster-{name}"
        return {
            "deployment_name": name,
            "runtime_mode": self.runtime_mode,
            "runtime_spec": runtime,
            "container_name": container_name,
            "container_argv": {
                engine: container_run_argv(
                    engine,
                    container_name,
                    plan,
                    spec.model_path,
                    spec.port,
                    runtime["spec_sha256"],
                    self.restart,
                )
                for engine in ("docker", "podman")
            },
            "systemd_unit_name": f"budcluster-{name}.service",
            "systemd_unit_text": systemd_unit_text(name, plan, argv, plan.host_env, self.restart),
        }

    def node_for(self, plan: RuntimePlan) -> str:
        if not plan.placements:
            raise HostsConfigError("the plan has no placement: re-plan with detected nodes")
        return plan.placements[0].node_name

    def roll_out(self, spec: RolloutSpec, *, check: bool = False) -> RuntimeStatus:
        """Start or update the runtime on the plan's node; returns without waiting for health.

        On hosts one replica runs, on the plan's first placement.
        """
        node = self.node_for(spec.plan)
        result = self._run(
            "deploy_runtime.yml",
            self.render(spec),
            self.timeouts.roll_out_s,
            limit=node,
            check=check,
        )
        return _status_from_result(node, result.result(node, "status"), spec.port)

    def status(self, deployment_name: str) -> RuntimeStatus:
        check_name(deployment_name, "deployment_name")
        result = self._run(
            "runtime_status.yml", {"deployment_name": deployment_name}, self.timeouts.status_s
        )
        statuses = [
            _status_from_result(node, result.result(node, "status"), None)
            for node in sorted(result.results)
        ]
        if not statuses:
            return RuntimeStatus(RuntimeState.ABSENT, reason="the inventory has no hosts")
        return min(statuses, key=lambda s: _STATE_RANK[s.state])

    def verify_endpoint(
        self, deployment_name: str, served_model_name: str, timeout_s: float
    ) -> EndpointCheck:
        """Poll the endpoint directly; the runtime's state is checked every few seconds so
        a crash fails at once with its last log lines instead of after the timeout."""
        status = self.status(deployment_name)
        if status.state in (RuntimeState.FAILED, RuntimeState.ABSENT) or not status.endpoint_url:
            raise RuntimeFailed.from_status(deployment_name, status)
        last_check = [time.monotonic()]

        def still_alive() -> None:
            if time.monotonic() - last_check[0] < _LIVENESS_INTERVAL_S:
                return
            last_check[0] = time.monotonic()
            current = self.status(deployment_name)
            if current.state in (RuntimeState.FAILED, RuntimeState.ABSENT):
                raise RuntimeFailed.from_status(deployment_name, current)

        return wait_until_ready(
            status.endpoint_url, served_model_name, timeout_s=timeout_s, still_alive=still_alive
        )

    def undo_rollout(
        self, deployment_name: str, previous: Sequence[Mapping[str, Any]] | None
    ) -> RuntimeStatus:
        """Hosts keep no object revisions: a failed rollout's runtime is removed."""
        self.delete(deployment_name)
        return self.status(deployment_name)

    def delete(self, deployment_name: str, *, remove_log: bool = False) -> None:
        check_name(deployment_name, "deployment_name")
        self._run(
            "delete_runtime.yml",
            {"deployment_name": deployment_name, "remove_log": remove_log},
            self.timeouts.delete_s,
        )

    def describe_command(self, spec: RolloutSpec) -> str:
        """The process-mode command line, for logs and plan artifacts."""
        argv = host_argv(spec.plan, spec.model_path, self.executables, spec.port)
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(spec.plan.host_env.items()))
        return (env + " " if env else "") + shlex.join(argv)


def _manifest_digest(report: Mapping[str, Any]) -> str:
    for key in ("manifest_sha256",):
        if report.get(key):
            return str(report[key])
    manifest = report.get("manifest")
    if isinstance(manifest, Mapping) and manifest.get("sha256"):
        return str(manifest["sha256"])
    return str(report.get("manifest_file_sha256", ""))
