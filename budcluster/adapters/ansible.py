"""The Ansible adapter: the one place that runs playbooks (through ansible-runner).

Results are read from the task events that ansible-runner streams, never from the fact
cache (``get_fact_cache`` returns ``{}`` with ansible-core 2.19). A task whose name starts
with ``result:`` publishes its result under the rest of its name, per host: a playbook task
``name: "result: inventory"`` of the ``debug`` action with ``msg: "{{ x | from_json }}"``
lands in ``PlaybookResult.results[host]["inventory"]`` as that ``msg``.

Untrusted values: ansible-core (2.19 included) treats extra vars as trusted templates, so a
``{{ lookup('pipe', ...) }}`` in an engine argument or a model name would run on the worker.
The adapter writes the extra vars file itself as one mapping tagged ``!unsafe``: Ansible
then passes every value and key through verbatim and never templates it.

Secrets: ansible-runner writes extravars, envvars and the process environment into its
private data directory (``env/extravars``, ``artifacts/<id>/command``). Unless the caller
passes its own ``private_data_dir``, every run gets a fresh ``0700`` directory under this
process's secrets directory (:mod:`budcluster.secretfiles`), removed when the run ends and
swept by the next process if this one is killed. Secrets go in ``secret_extravars`` (read
by ansible-playbook from that file, never put on a command line) and the playbooks mark the
tasks that use them ``no_log: true``, so they appear in no event and no log.

Environment: ansible-runner starts ansible-playbook with a copy of this process's whole
environment, which modules on a local connection inherit. The adapter keeps only an
allow-list (``ALLOWED_ENV``, locale and ``ANSIBLE_*`` settings) plus what it and
ansible-runner set, so the worker's API keys and database URL reach no playbook.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from ansible_runner.exceptions import AnsibleRunnerException
from ansible_runner.interface import init_runner
from ansible_runner.utils import signal_handler

from budcluster.errors import BudClusterError, ConfigurationError, PermanentError, TemporaryError
from budcluster.inventory_rules import INVENTORY_PLUGINS, check_inventory, import_ansible_core
from budcluster.secretfiles import private_tempdir

RESULT_PREFIX = "result:"
"""Tasks named ``result: <key>`` publish their result as ``results[host][<key>]``."""

PLAYBOOKS_DIR = Path(__file__).resolve().parents[2] / "playbooks"
"""The project's playbooks (``playbooks/`` next to the ``budcluster`` package)."""


ALLOWED_ENV = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR", "SSH_AUTH_SOCK",
        "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
        # Paths, not secrets: a proxy's CA bundle, and where hf:// sources are cached.
        "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
        "HF_HOME", "HF_HUB_CACHE",
    }
)  # fmt: skip
"""Variables of this process that ansible-playbook (and so local modules) may inherit."""

ALLOWED_ENV_PREFIXES = ("LC_", "ANSIBLE_")
"""Locale settings, and Ansible's own configuration (ssh arguments, config file...)."""

SSH_BASE_ARGS = ("-C", "-o", "ControlMaster=auto", "-o", "ControlPersist=60s")
"""ansible-core's default ``ssh_args``: one ssh connection per host, shared by a run's tasks."""

SSH_NO_MASTER_ARGS = ("-C", "-o", "ControlMaster=no")
"""Where the run's control socket path would be too long for a unix socket."""

_CONTROL_SOCKET_MAX = 104 - 11 - 17
"""A sun_path holds 104-108 bytes; ansible adds ``/`` and 10 hex digits, ssh a ``.`` and 16
random characters while it creates the socket: the control directory gets the rest."""


def ssh_args(
    ssh_key_file: Path | None, known_hosts_file: Path | None, *, shared: bool = True
) -> list[str]:
    """The ``ssh`` options for a run: only the given key, and only the given host keys.

    With a key file, ssh offers that key alone: no agent (``IdentityAgent=none``) and no
    default ``~/.ssh/id_*`` (``IdentitiesOnly``), so a run never logs in with a credential
    that is not in its block. With a known_hosts file, the host must present a key listed
    there (``StrictHostKeyChecking=yes``), and the user's and the system's known_hosts are
    not read. ``shared`` keeps one connection per host for the run's tasks (its control
    socket is the run's own: see :func:`run_playbook`).
    """
    args = list(SSH_BASE_ARGS if shared else SSH_NO_MASTER_ARGS)
    if ssh_key_file is not None:
        args += ["-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none"]
    if known_hosts_file is not None:
        args += [
            "-o", f"UserKnownHostsFile={known_hosts_file}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes",
        ]  # fmt: skip
    return args


def _close_ssh_masters(control_dir: Path) -> None:
    """Ask each ssh master the run left (ControlPersist) to exit now, rather than idle on
    with an authenticated connection after its key file is gone."""
    if not control_dir.is_dir() or shutil.which("ssh") is None:
        return
    for socket_path in control_dir.iterdir():
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                ["ssh", "-O", "exit", "-o", f"ControlPath={socket_path}", "budcluster-master"],
                capture_output=True,
                timeout=10,
                check=False,
            )


class AnsibleError(BudClusterError):
    """Base class of this adapter's errors."""


class AnsibleConfigError(AnsibleError, ConfigurationError):
    """The playbook, the inventory or an argument is unusable."""


@dataclass(frozen=True)
class TaskFailure:
    host: str
    task: str
    msg: str
    unreachable: bool = False


class PlaybookFailed(AnsibleError, PermanentError):
    """A task failed on a host; rerunning the same playbook will fail the same way."""

    def __init__(self, failure: TaskFailure, result: PlaybookResult) -> None:
        super().__init__(f"task '{failure.task}' failed on {failure.host}: {failure.msg}")
        self.failure = failure
        self.result = result


class HostUnreachable(AnsibleError, TemporaryError):
    """A host could not be reached (ssh down, DNS, refused); it may come back."""

    def __init__(self, failure: TaskFailure, result: PlaybookResult) -> None:
        super().__init__(f"host {failure.host} is unreachable: {failure.msg}")
        self.failure = failure
        self.result = result


class AnsibleTimeout(AnsibleError, TemporaryError):
    """The whole playbook run exceeded its timeout and was stopped."""


@dataclass
class HostSummary:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    skipped: int = 0
    unreachable: bool = False


@dataclass(frozen=True)
class PlaybookResult:
    playbook: str
    status: str
    """ansible-runner's status: successful, failed, timeout, canceled."""
    rc: int
    hosts: dict[str, HostSummary]
    failures: list[TaskFailure]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per host, the result of each ``result: <key>`` task."""
    changed_tasks: list[tuple[str, str]] = field(default_factory=list)
    """(host, task name) of every task that reported a change."""

    @property
    def changed(self) -> int:
        return sum(summary.changed for summary in self.hosts.values())

    def result(self, host: str, key: str) -> Any:
        """The published result ``key`` of ``host``; KeyError names what was published."""
        try:
            return self.results[host][key]
        except KeyError:
            published = {h: sorted(r) for h, r in self.results.items()}
            raise KeyError(f"no result '{key}' for host {host}; published: {published}") from None


def _failure_message(res: Mapping[str, Any]) -> str:
    """The most useful words of a failed task result: msg, then the tail of stderr/stdout."""
    parts: list[str] = []
    msg = res.get("msg")
    if msg:
        parts.append(str(msg))
    for stream in ("stderr", "stdout"):
        text = res.get(stream)
        if isinstance(text, str) and text.strip():
            parts.append(f"{stream}: " + "\n".join(text.strip().splitlines()[-20:]))
            break
    if res.get("rc") not in (None, 0) and not parts:
        parts.append(f"exit code {res.get('rc')}")
    return "; ".join(parts) or "no message"


def parse_events(
    playbook: str, status: str, rc: int, events: list[dict[str, Any]]
) -> PlaybookResult:
    """Build a PlaybookResult from ansible-runner's event dicts."""
    hosts: dict[str, HostSummary] = {}
    failures: list[TaskFailure] = []
    results: dict[str, dict[str, Any]] = {}
    changed_tasks: list[tuple[str, str]] = []
    for event in events:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        host = data.get("host")
        if not host or not kind.startswith("runner_on_"):
            continue
        summary = hosts.setdefault(host, HostSummary())
        task = str(data.get("task") or "")
        res: dict[str, Any] = data.get("res") or {}
        if kind == "runner_on_ok":
            summary.ok += 1
            if res.get("changed"):
                summary.changed += 1
                changed_tasks.append((host, task))
            if task.startswith(RESULT_PREFIX):
                key = task[len(RESULT_PREFIX) :].strip()
                value = res["msg"] if data.get("task_action", "").endswith("debug") else res
                results.setdefault(host, {})[key] = value
        elif kind == "runner_on_failed":
            if data.get("ignore_errors"):
                continue
            summary.failed += 1
            failures.append(TaskFailure(host, task, _failure_message(res)))
        elif kind == "runner_on_unreachable":
            summary.unreachable = True
            failures.append(TaskFailure(host, task, _failure_message(res), unreachable=True))
        elif kind == "runner_on_skipped":
            summary.skipped += 1
    return PlaybookResult(playbook, status, rc, hosts, failures, results, changed_tasks)


def _playbook_path(playbook: str) -> Path:
    path = Path(playbook)
    if not path.is_absolute():
        path = PLAYBOOKS_DIR / path
    if not path.is_file():
        raise AnsibleConfigError(
            f"playbook {path} does not exist: pass a path or a name from {PLAYBOOKS_DIR}"
        )
    return path


def _search_path() -> str:
    """PATH with this interpreter's bin directory first, where ansible-playbook lives."""
    # Tests and services often run .venv/bin/python without the venv on PATH.
    bin_dir = Path(sys.executable).parent
    path = os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")])
    if shutil.which("ansible-playbook", path=path) is None:
        raise AnsibleConfigError(
            "ansible-playbook was not found next to the Python interpreter nor on PATH: "
            "install ansible-core in this environment"
        )
    return path


def env_allowed(name: str) -> bool:
    """Whether the worker's variable ``name`` may reach ansible-playbook and its modules."""
    return name in ALLOWED_ENV or name.startswith(ALLOWED_ENV_PREFIXES)


def _child_env(prepared: Mapping[str, str], ours: Mapping[str, str]) -> dict[str, str]:
    """ansible-runner's environment for ansible-playbook, less what it copied from ours.

    ansible-runner starts from ``os.environ.copy()`` and adds its own settings (callback
    plugin, artifact directory); anything it set or changed is kept, as is ``ours``.
    """
    return {
        name: value
        for name, value in prepared.items()
        if name in ours or env_allowed(name) or os.environ.get(name) != value
    }


class _Untrusted(dict[str, Any]):
    """The extra vars document: dumped as one mapping tagged ``!unsafe``."""


class _ExtravarsDumper(yaml.SafeDumper):
    """Strings always double-quoted (so always strings), no anchors or aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')


def _represent_untrusted(dumper: yaml.SafeDumper, value: _Untrusted) -> yaml.MappingNode:
    return dumper.represent_mapping("!unsafe", value)


# ansible-core 2.19 constructs everything under an ``!unsafe`` node (keys included) as
# untrusted, so it is never templated. The tag goes on the root mapping only: on a scalar
# it would re-resolve "400000" or "true" as a number or a boolean, while quoted strings
# below it stay strings.
_ExtravarsDumper.add_representer(str, _represent_str)
_ExtravarsDumper.add_representer(_Untrusted, _represent_untrusted)


def _plain(value: Any, where: str) -> Any:
    """``value`` as YAML-ready data (dicts, lists, str, int, float, bool, None), or refuse."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Mapping):
        plain: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise AnsibleConfigError(
                    f"extra var {where} has a {type(key).__name__} key {key!r}: use str keys"
                )
            plain[key] = _plain(item, f"{where}.{key}")
        return plain
    if isinstance(value, (list, tuple)):
        return [_plain(item, f"{where}[{index}]") for index, item in enumerate(value)]
    raise AnsibleConfigError(
        f"extra var {where} is a {type(value).__name__}: pass str, int, float, bool, None, "
        "lists or mappings (convert paths with str())"
    )


def unsafe_extravars_yaml(extravars: Mapping[str, Any]) -> str:
    """``extravars`` as an extra vars file whose every value and key Ansible takes verbatim."""
    data = _Untrusted({key: _plain(value, key) for key, value in extravars.items()})
    return yaml.dump(
        data, Dumper=_ExtravarsDumper, allow_unicode=True, width=2**31 - 1, sort_keys=True
    )


def _write_extravars(data_dir: Path, extravars: Mapping[str, Any]) -> None:
    """Write ``env/extravars`` (0600) where ansible-runner finds it and passes ``-e @file``."""
    env_dir = data_dir / "env"
    env_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = env_dir / "extravars"
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a reused private_data_dir: never run with the last run's vars
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(unsafe_extravars_yaml(extravars))


@contextlib.contextmanager
def _data_dir(given: Path | None) -> Iterator[Path]:
    if given is None:
        # Under this process's secrets directory: a kill -9 leaves it to the next sweep.
        with private_tempdir(prefix="ansible-") as directory:
            yield directory
        return
    given.mkdir(mode=0o700, parents=True, exist_ok=True)
    yield given


def run_playbook(
    playbook: str,
    inventory: str | Path,
    *,
    extravars: Mapping[str, Any],
    timeout_s: float,
    secret_extravars: Mapping[str, Any] | None = None,
    limit: str | None = None,
    check: bool = False,
    diff: bool = False,
    private_data_dir: Path | None = None,
    ssh_key_file: Path | None = None,
    known_hosts_file: Path | None = None,
    become_password: str | None = None,
    forks: int = 10,
    cancel: Callable[[], bool] | None = None,
) -> PlaybookResult:
    """Run ``playbook`` (a name under ``playbooks/`` or a path) and return what it did.

    ``inventory`` is inventory text (INI or YAML) or a path to an inventory file.
    Every string in ``extravars`` and ``secret_extravars`` reaches the playbook verbatim and
    is never templated. ``secret_extravars`` and ``become_password`` are handed to
    ansible-playbook through the run's private data directory only; playbooks must use them
    under ``no_log``.
    ``ssh_key_file`` is the only key ssh offers (no agent); ``known_hosts_file``, where
    given, holds the only host keys ssh accepts (:func:`ssh_args`).
    ``cancel`` is asked every moment whether to stop the run (it then ends ``canceled``);
    without it, a run started from the main thread is stopped by SIGINT and SIGTERM.
    Raises PlaybookFailed (a task failed), HostUnreachable, AnsibleTimeout or
    AnsibleConfigError; returns the result when every host succeeded.
    """
    if timeout_s <= 0:
        raise AnsibleConfigError(f"timeout_s must be positive, got {timeout_s}")
    playbook_path = _playbook_path(playbook)
    search_path = _search_path()
    inventory_text = _checked_inventory_text(inventory)
    if ssh_key_file is not None and not Path(ssh_key_file).is_file():
        raise AnsibleConfigError(f"ssh_key_file {ssh_key_file} does not exist")
    if known_hosts_file is not None and not Path(known_hosts_file).is_file():
        raise AnsibleConfigError(f"known_hosts_file {known_hosts_file} does not exist")
    all_vars: dict[str, Any] = {**extravars, **(secret_extravars or {})}
    if become_password is not None:
        all_vars["ansible_become_password"] = become_password
    cmdline = " ".join(flag for flag, on in (("--check", check), ("--diff", diff)) if on)
    events: list[dict[str, Any]] = []

    def keep_event(event: dict[str, Any]) -> bool:
        events.append(event)
        return False  # nothing needs the per-event files on disk

    with _data_dir(private_data_dir) as data_dir:
        _write_extravars(data_dir, all_vars)
        inventory_path = _write_inventory(data_dir, inventory_text)
        envvars = {
            "PATH": search_path,
            "ANSIBLE_RETRY_FILES_ENABLED": "false",
            "ANSIBLE_NOCOLOR": "true",
            "ANSIBLE_DEPRECATION_WARNINGS": "false",
            "ANSIBLE_LOCALHOST_WARNING": "false",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
            # Only the plugins check_inventory parsed it with: no `plugin:` file, no script.
            "ANSIBLE_INVENTORY_ENABLED": ",".join(INVENTORY_PLUGINS),
            # Keep ansible's own local temp files inside the private directory.
            "ANSIBLE_LOCAL_TEMP": str(data_dir / "tmp"),
            # One ssh round trip per task instead of three or four (no module file is put
            # on the host first); an operator's own setting wins.
            "ANSIBLE_PIPELINING": os.environ.get("ANSIBLE_PIPELINING", "true"),
        }
        if ssh_key_file is not None:
            envvars["ANSIBLE_PRIVATE_KEY_FILE"] = str(ssh_key_file)
        if known_hosts_file is not None:
            envvars["ANSIBLE_HOST_KEY_CHECKING"] = "true"
        # The run's ssh master connections live in its own directory: under ~/.ansible/cp
        # another run (another block: another key, other known_hosts) would reuse them and
        # neither log in nor check the host key itself.
        control_dir = data_dir / "cp"
        shared = len(str(control_dir)) <= _CONTROL_SOCKET_MAX
        ours = ssh_args(ssh_key_file, known_hosts_file, shared=shared)
        # ssh takes the first value of each option: ours come first, the operator's after.
        envvars["ANSIBLE_SSH_ARGS"] = shlex.join(
            ours + shlex.split(os.environ.get("ANSIBLE_SSH_ARGS", ""))
        )
        envvars["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(control_dir)
        try:
            runner = init_runner(
                private_data_dir=str(data_dir),
                playbook=str(playbook_path),
                inventory=str(inventory_path),
                envvars=envvars,
                limit=limit,
                cmdline=cmdline or None,
                timeout=max(1, int(timeout_s + 0.999)),
                quiet=True,
                forks=forks,
                event_handler=keep_event,
                cancel_callback=cancel,
                rotate_artifacts=1,
            )
            runner.config.env = _child_env(runner.config.env, envvars)
            runner.run()
        except (ValueError, OSError, AnsibleRunnerException) as exc:
            raise AnsibleConfigError(f"ansible-runner could not start {playbook}: {exc}") from exc
        finally:
            _close_ssh_masters(control_dir)
        status, rc = str(runner.status), int(runner.rc if runner.rc is not None else -1)
        stdout_tail = _stdout_tail(runner)
    result = parse_events(playbook, status, rc, events)
    if status == "timeout":
        raise AnsibleTimeout(f"playbook {playbook} did not finish within {timeout_s:.0f}s")
    for failure in result.failures:
        if failure.unreachable:
            raise HostUnreachable(failure, result)
    if result.failures:
        raise PlaybookFailed(result.failures[0], result)
    if status != "successful":
        # No task failed, so ansible-playbook itself refused (syntax, inventory, vars).
        raise AnsibleConfigError(f"playbook {playbook} ended {status} (rc {rc}): {stdout_tail}")
    return result


class BackgroundPlaybook:
    """A :func:`run_playbook` call running in a worker thread, so its caller can do other
    work meanwhile (the hosts target polls transfer progress).

    Started from the main thread, it takes SIGINT and SIGTERM as a foreground run does: they
    stop the run. Playbooks run while it goes should pass ``cancel=self.cancelled``, so that
    they neither take those signals over nor outlive a cancelled run.
    """

    def __init__(self, run: Callable[[Callable[[], bool]], PlaybookResult], name: str) -> None:
        self._stop = threading.Event()
        self._signalled = signal_handler()  # None off the main thread
        self._result: PlaybookResult | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, args=(run,), name=f"playbook {name}")
        self._thread.start()

    def _work(self, run: Callable[[Callable[[], bool]], PlaybookResult]) -> None:
        try:
            self._result = run(self.cancelled)
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc

    def cancelled(self) -> bool:
        return self._stop.is_set() or (self._signalled is not None and self._signalled())

    def cancel(self) -> None:
        self._stop.set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Whether the run has ended, waiting up to ``timeout_s`` for it."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def result(self) -> PlaybookResult:
        """What :func:`run_playbook` returned, or its error raised here; waits for the end."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        if self._result is None:  # pragma: no cover - _work sets one of the two
            raise AnsibleError("the playbook thread ended without a result")
        return self._result


def start_playbook(
    playbook: str,
    inventory: str | Path,
    *,
    extravars: Mapping[str, Any],
    timeout_s: float,
    secret_extravars: Mapping[str, Any] | None = None,
    limit: str | None = None,
    ssh_key_file: Path | None = None,
    known_hosts_file: Path | None = None,
    become_password: str | None = None,
) -> BackgroundPlaybook:
    """Start :func:`run_playbook` in a worker thread; ``result()`` returns or raises its end."""

    def run(cancel: Callable[[], bool]) -> PlaybookResult:
        return run_playbook(
            playbook,
            inventory,
            extravars=extravars,
            timeout_s=timeout_s,
            secret_extravars=secret_extravars,
            limit=limit,
            ssh_key_file=ssh_key_file,
            known_hosts_file=known_hosts_file,
            become_password=become_password,
            cancel=cancel,
        )

    return BackgroundPlaybook(run, playbook)


def host_connections(inventory_text: str, hosts: Iterable[str]) -> dict[str, str]:
    """The connection plugin each of ``hosts`` is reached with (``ansible_connection``, from
    its host and group vars; ``ssh`` where unset), read with ansible-core's own inventory
    parser. A host the inventory does not list maps to ``ssh``.

    Raises AnsibleConfigError when the inventory cannot be parsed.
    """
    import_ansible_core()
    from ansible.errors import AnsibleError as AnsibleCoreError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.manager import VariableManager

    wanted = list(hosts)
    _checked_inventory_text(inventory_text)
    with private_tempdir(prefix="inventory-") as directory:
        # Named as ansible-runner names it. Without a .yml suffix the `auto` and
        # `constructed` plugins (which template) decline it, and 0600 keeps `script` off.
        path = directory / "hosts"
        path.write_text(inventory_text, encoding="utf-8")
        path.chmod(0o600)
        try:
            loader = DataLoader()
            inventory = InventoryManager(loader=loader, sources=[str(path)])
            variables = VariableManager(loader=loader, inventory=inventory)
            found = {}
            for name in wanted:
                host = inventory.get_host(name)
                if host is None:
                    found[name] = "ssh"
                    continue
                connection = variables.get_vars(host=host, include_hostvars=False).get(
                    "ansible_connection"
                )
                found[name] = str(connection or "ssh")
        except AnsibleCoreError as exc:
            raise AnsibleConfigError(f"the inventory cannot be parsed: {exc}") from exc
    return found


def _checked_inventory_text(inventory: str | Path) -> str:
    """The inventory's text once it meets :mod:`budcluster.inventory_rules`; an inventory
    that does not (one stored before those rules, too) is refused before any run."""
    try:
        text = inventory.read_text(encoding="utf-8") if isinstance(inventory, Path) else inventory
        check_inventory(text)
    except OSError as exc:
        raise AnsibleConfigError(
            f"inventory {inventory} cannot be read: give one YAML or INI inventory file"
        ) from exc
    except ConfigurationError as exc:
        raise AnsibleConfigError(str(exc)) from exc
    return text


def _write_inventory(data_dir: Path, inventory_text: str) -> Path:
    """Write the checked text to ``inventory/hosts`` (0600) and return its path.

    Handing ansible-runner the path, never the text, keeps the run on exactly what was
    checked: given text that names an existing file, ansible-runner would read that file
    instead; and a file given by path could change between the check and the run.
    """
    directory = data_dir / "inventory"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / "hosts"
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(inventory_text)
    return path.resolve()


def _stdout_tail(runner: Any, lines: int = 15) -> str:
    try:
        text = runner.stdout.read()
    except (OSError, AttributeError, ValueError):
        return ""
    return "\n".join(str(text).strip().splitlines()[-lines:])
