"""What is sent to hosts, computed in Python: the runtime's argv with real executable and
model paths, the container command line, the systemd unit text and the runtime spec with
its hash for idempotency. Pure: the playbooks stay generic and this is tested without hosts.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from budcluster.errors import ConfigurationError
from budcluster.planning.lora import ADAPTER_MOUNT, relocate_adapters
from budcluster.planning.models import RuntimePlan
from budcluster.targets.base import check_safe_name
from budcluster.targets.hosts.errors import HostsConfigError

RUN_DIR_TOKEN = "@RUN_DIR@"
"""Stands for the host's absolute run directory in the unit text; the playbook substitutes it."""

_MODEL_FLAGS = {"llama.cpp": ("-m", "--model"), "vllm": ("--model",)}
"""Where each engine takes its model; vLLM's host command also has python's own ``-m``."""


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


def _staged_adapters(plan: RuntimePlan, argv: list[str], paths: Mapping[str, str]) -> list[str]:
    try:
        return relocate_adapters(argv, plan, paths)
    except ConfigurationError as exc:
        raise HostsConfigError(str(exc)) from exc


def host_argv(
    plan: RuntimePlan,
    model_path: str,
    executables: Mapping[str, str],
    port: int,
    adapter_paths: Mapping[str, str] | None = None,
) -> list[str]:
    """``plan.host_command`` with the executable, the model path, the adapters' paths and
    the port made real.

    The planner wrote the controller's view of the model (a directory for vLLM, a GGUF file
    for llama.cpp) and of its adapters; on the host the model lives in ``model_path`` and
    each adapter in ``adapter_paths[name]``, where stage_model put them.
    """
    argv = list(plan.host_command)
    if not argv:
        raise HostsConfigError("the plan's host_command is empty: re-plan the deployment")
    argv = _staged_adapters(plan, argv, adapter_paths or {})
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
    adapter_paths: Mapping[str, str] | None = None,
) -> list[str]:
    """The exact ``docker run`` / ``podman run`` command line for the plan's image and args.

    Each LoRA adapter's staged directory is mounted at ``/adapters/<name>``, where the
    plan's container args load it from.
    """
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
    for adapter in plan.adapters:
        staged = (adapter_paths or {}).get(adapter.name)
        if staged is None:
            raise HostsConfigError(
                f"adapter {adapter.name!r} has no staged directory: stage it with the model"
            )
        argv += ["-v", f"{staged}:{ADAPTER_MOUNT}/{adapter.name}:ro"]
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
