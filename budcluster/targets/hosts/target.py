"""The ``hosts`` target class: every operation runs one playbook from ``playbooks/`` through
:mod:`budcluster.adapters.ansible`, with extravars computed by :mod:`.render` (staging also
reads the hosts' progress with a second one while it runs).
"""

from __future__ import annotations

import contextlib
import logging
import shlex
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
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
    host_connections,
    run_playbook,
    start_playbook,
)
from budcluster.endpoints import EndpointCheck, wait_until_ready
from budcluster.errors import ConfigurationError
from budcluster.hardware.inventory import NodeInventory
from budcluster.inventory_rules import check_inventory
from budcluster.planning.models import RuntimePlan
from budcluster.targets.base import (
    AccessReport,
    ModelSourceSpec,
    NodeHealth,
    PodScheduling,
    ProgressCallback,
    RolloutSpec,
    RuntimeFailed,
    RuntimeState,
    RuntimeStatus,
    StagedModel,
    TransferProgress,
)
from budcluster.targets.hosts.errors import (
    HostsConfigError,
    HostsOperationFailed,
    HostsUnavailable,
)
from budcluster.targets.hosts.push import controller_model, executable_install
from budcluster.targets.hosts.render import (
    RestartPolicy,
    check_name,
    container_run_argv,
    host_argv,
    runtime_spec,
    systemd_unit_text,
)
from budcluster.targets.hosts.results import (
    STATE_RANK,
    host_progress,
    manifest_digest,
    status_from_result,
    sum_progress,
)
from budcluster.transfer.console import PROGRESS_NAME

_log = logging.getLogger(__name__)

# An Ansible status run takes seconds; between them the endpoint is polled directly.
_LIVENESS_INTERVAL_S = 5.0

_STAGE_PLAYBOOK = "stage_model.yml"
_PROGRESS_PLAYBOOK = "read_progress.yml"


@dataclass(frozen=True)
class HostsTimeouts:
    """Seconds each operation's playbook run may take, in all; and how often a transfer's
    progress is read from the hosts while it runs (``progress_poll_s``, each read given
    ``progress_read_s``)."""

    verify_s: float = 60.0
    detect_s: float = 300.0
    stage_s: float = 6 * 3600.0
    roll_out_s: float = 600.0
    status_s: float = 60.0
    delete_s: float = 180.0
    progress_poll_s: float = 10.0
    progress_read_s: float = 30.0


@contextlib.contextmanager
def _as_hosts_errors(playbook: str) -> Iterator[None]:
    """The adapter's errors as this target's: unusable config, unavailable hosts, failure."""
    try:
        yield
    except PlaybookFailed as exc:
        raise HostsOperationFailed(f"{playbook}: {exc}") from exc
    except (HostUnreachable, AnsibleTimeout) as exc:
        raise HostsUnavailable(f"{playbook}: {exc}") from exc
    except AnsibleConfigError as exc:
        raise HostsConfigError(f"{playbook}: {exc}") from exc
    except AnsibleError as exc:
        raise HostsOperationFailed(f"{playbook}: {exc}") from exc


def build_collector_zip(dest: Path) -> Path:
    """Zip the stdlib-only collector (budcluster/__init__.py and budcluster/hardware/*.py).

    Python imports straight from a zip on PYTHONPATH, so one file travels to each host.
    """
    package = Path(__file__).resolve().parents[2]
    sources = [package / "__init__.py", *sorted((package / "hardware").glob("*.py"))]
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as archive:
        for source in sources:
            # A fixed timestamp keeps the archive byte-identical between runs.
            info = zipfile.ZipInfo(str(source.relative_to(package.parent)), (1980, 1, 1, 0, 0, 0))
            archive.writestr(info, source.read_bytes())
    return dest


@dataclass
class HostsTarget:
    """A ClusterTarget for servers in an Ansible inventory (text, INI or YAML).

    ``executables`` maps the plan's command names to paths on the hosts, e.g.
    ``{"llama-server": "/root/.cache/budcluster/llama.cpp/0.3.36/bin/llama-server"}``.
    ``state_dir`` is each host's directory for models (``models/<name>``), runtimes
    (``runtimes/<deployment>``: spec, pidfiles, log) and the supervisor (``bin/``).
    ``runtime_mode`` forces docker, podman, systemd or process instead of detecting.

    Hosts reached over SSH (any ``ansible_connection`` but ``local``) share nothing with the
    controller: a model in a directory here is copied to them file by file and verified by
    sha256, and the executables named in ``installed_executables`` (self-contained builds,
    such as llama-server) are copied to ``<state>/engines/`` and run from there.
    ``known_hosts_file`` holds the host keys ssh accepts (strict checking); without it
    ansible's own setting and the user's known_hosts apply.
    """

    inventory_text: str
    ssh_key_file: Path | None = None
    known_hosts_file: Path | None = None
    become_password: str | None = field(default=None, repr=False)
    executables: dict[str, str] = field(default_factory=dict)
    state_dir: str = "~/.budcluster"
    timeouts: HostsTimeouts = field(default_factory=HostsTimeouts)
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    runtime_mode: str = "auto"
    log_lines: int = 40
    installed_executables: frozenset[str] = frozenset({"llama-server"})
    last_result: PlaybookResult | None = field(default=None, init=False, repr=False)
    """The last playbook run's result (changed counts, per-host summaries), for callers and tests."""

    def __post_init__(self) -> None:
        if not self.inventory_text.strip():
            raise HostsConfigError("inventory_text is empty: give an Ansible inventory (INI/YAML)")
        try:
            # Early and by name; run_playbook checks it again before every run.
            check_inventory(self.inventory_text)
        except ConfigurationError as exc:
            raise HostsConfigError(str(exc)) from exc
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
        with _as_hosts_errors(playbook):
            self.last_result = run_playbook(
                playbook,
                self.inventory_text,
                extravars=self._extravars(extravars),
                secret_extravars=secret_extravars,
                limit=limit,
                check=check,
                timeout_s=timeout_s,
                ssh_key_file=self.ssh_key_file,
                known_hosts_file=self.known_hosts_file,
                become_password=self.become_password,
            )
            return self.last_result

    def _extravars(self, extravars: Mapping[str, Any]) -> dict[str, Any]:
        common = {
            "budcluster_state_dir": self.state_dir,
            "controller_python": sys.executable,
            "log_lines": self.log_lines,
        }
        return {**common, **extravars}

    def _run_reporting_progress(
        self,
        extravars: Mapping[str, Any],
        secret_extravars: Mapping[str, Any],
        nodes: Sequence[str],
        progress: ProgressCallback,
    ) -> PlaybookResult:
        """Run stage_model.yml in a worker thread; meanwhile read the hosts' progress files
        every ``progress_poll_s`` and report their sum."""
        playbook = _STAGE_PLAYBOOK
        started = time.monotonic()
        latest: dict[str, TransferProgress] = {}
        with _as_hosts_errors(playbook):
            run = start_playbook(
                playbook,
                self.inventory_text,
                extravars=self._extravars(extravars),
                secret_extravars=secret_extravars,
                limit=",".join(nodes),
                timeout_s=self.timeouts.stage_s,
                ssh_key_file=self.ssh_key_file,
                known_hosts_file=self.known_hosts_file,
                become_password=self.become_password,
            )
            try:
                while not run.wait(self.timeouts.progress_poll_s):
                    model_name = str(extravars["model_name"])
                    latest.update(self._read_progress(model_name, nodes, run.cancelled))
                    report = sum_progress(latest, len(nodes), time.monotonic() - started)
                    # A run that ended during the read is reported below, from its result.
                    if report is not None and not run.wait(0):
                        progress(report)
            except BaseException:
                run.cancel()
                run.wait()
                raise
            self.last_result = run.result()
            return self.last_result

    def _read_progress(
        self, model_name: str, nodes: Sequence[str], cancel: Callable[[], bool]
    ) -> dict[str, TransferProgress]:
        """Each host's progress file, where it has one now; a read that fails is skipped."""
        try:
            result = run_playbook(
                _PROGRESS_PLAYBOOK,
                self.inventory_text,
                extravars=self._extravars(
                    {"model_name": model_name, "progress_file": PROGRESS_NAME}
                ),
                limit=",".join(nodes),
                timeout_s=self.timeouts.progress_read_s,
                ssh_key_file=self.ssh_key_file,
                known_hosts_file=self.known_hosts_file,
                become_password=self.become_password,
                cancel=cancel,
            )
        except AnsibleError as exc:
            _log.debug("reading transfer progress failed, skipped: %s", exc)
            return {}
        found = {}
        for node in nodes:
            reading = host_progress(result.results.get(node, {}).get("progress"))
            if reading is not None:
                found[node] = reading
        return found

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
        scheduling: PodScheduling | None = None,
        *,
        adapter_sources: Sequence[ModelSourceSpec] = (),
    ) -> StagedModel:
        """Copy the model onto ``nodes``.

        ``adapter_sources`` changes nothing here: a host's disk is not reserved ahead, and
        each adapter is staged as a model of its own (:meth:`stage_adapter`).

        ``progress`` hears the sum over the hosts every ``timeouts.progress_poll_s`` while
        they copy (read from each host's progress file), and once more when all are done.
        """
        _refuse_scheduling(scheduling)
        check_name(model_name, "model_name")
        if not nodes:
            raise HostsConfigError("stage_model needs at least one node (inventory host name)")
        extravars: dict[str, Any] = {"model_name": model_name, "source_uri": source.uri}
        extravars.update(self._push_vars(source.uri, nodes))
        secret_extravars = {"transfer_env": dict(source.credentials_env)}
        if progress is None:
            result = self._run(
                _STAGE_PLAYBOOK,
                extravars,
                self.timeouts.stage_s,
                limit=",".join(nodes),
                secret_extravars=secret_extravars,
            )
        else:
            result = self._run_reporting_progress(extravars, secret_extravars, nodes, progress)
        reports = {node: result.result(node, "transfer") for node in nodes}
        paths = {str(r["path"]) for r in reports.values()}
        digests = {manifest_digest(r) for r in reports.values()}
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

    def stage_adapter(
        self,
        source: ModelSourceSpec,
        adapter_dir: str,
        model_name: str,
        nodes: Sequence[str],
        progress: ProgressCallback | None = None,
        scheduling: PodScheduling | None = None,
    ) -> StagedModel:
        """Copy a LoRA adapter onto ``nodes`` as a model of its own, ``<state>/models/
        <adapter_dir>``, beside ``model_name``'s directory (which names nothing more here)."""
        check_name(model_name, "model_name")
        return self.stage_model(source, adapter_dir, nodes, progress, scheduling)

    def _push_vars(self, uri: str, nodes: Sequence[str]) -> dict[str, Any]:
        """The file list stage_model.yml copies to the hosts reached over SSH, when the
        model is a directory on this machine; nothing when every host is local (they copy
        it themselves) or the source is one the hosts read (s3://)."""
        with _as_hosts_errors(_STAGE_PLAYBOOK):
            connections = host_connections(self.inventory_text, nodes)
        if all(connection == "local" for connection in connections.values()):
            return {}
        pushed = controller_model(uri)
        return pushed.extravars() if pushed is not None else {}

    def render(self, spec: RolloutSpec) -> dict[str, Any]:
        """The deploy playbook's extravars for ``spec`` (every runtime form, rendered)."""
        name = check_name(spec.deployment_name, "deployment_name")
        plan = spec.plan
        argv = host_argv(plan, spec.model_path, self.executables, spec.port, spec.adapter_paths)
        runtime = runtime_spec(argv, plan.host_env, spec.port, self.restart)
        container_name = f"budcluster-{name}"
        command = plan.host_command[0] if plan.host_command else ""
        install = (
            executable_install(command, argv[0]) if command in self.installed_executables else None
        )
        return {
            "runtime_install": install or {},
            "deployment_name": name,
            "runtime_mode": self.runtime_mode,
            "runtime_spec": runtime,
            "container_name": container_name,
            "container_image": plan.image,
            "container_argv": {
                engine: container_run_argv(
                    engine,
                    container_name,
                    plan,
                    spec.model_path,
                    spec.port,
                    runtime["spec_sha256"],
                    self.restart,
                    spec.adapter_paths,
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

        On hosts one replica runs, on the plan's first placement, and nothing autoscales it.
        """
        if spec.autoscaling is not None:
            raise HostsConfigError(
                "autoscaling: a hosts cluster cannot autoscale; remove autoscaling from the "
                "request, or deploy to a kubernetes cluster"
            )
        _refuse_scheduling(spec.scheduling)
        node = self.node_for(spec.plan)
        result = self._run(
            "deploy_runtime.yml",
            self.render(spec),
            self.timeouts.roll_out_s,
            limit=node,
            check=check,
        )
        return status_from_result(node, result.result(node, "status"), spec.port)

    def status(self, deployment_name: str) -> RuntimeStatus:
        check_name(deployment_name, "deployment_name")
        result = self._run(
            "runtime_status.yml", {"deployment_name": deployment_name}, self.timeouts.status_s
        )
        statuses = [
            status_from_result(node, result.result(node, "status"), None)
            for node in sorted(result.results)
        ]
        if not statuses:
            return RuntimeStatus(RuntimeState.ABSENT, reason="the inventory has no hosts")
        return min(statuses, key=lambda s: STATE_RANK[s.state])

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
        argv = host_argv(
            spec.plan, spec.model_path, self.executables, spec.port, spec.adapter_paths
        )
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(spec.plan.host_env.items()))
        return (env + " " if env else "") + shlex.join(argv)


def _refuse_scheduling(scheduling: PodScheduling | None) -> None:
    # deploy-model refuses these first; this keeps a direct caller from having them ignored.
    if scheduling is not None and (scheduling.tolerations or scheduling.node_selector):
        raise HostsConfigError(
            "tolerations and node_selector: a hosts cluster has no scheduler, taints or node "
            "labels; remove them from the request, or deploy to a kubernetes cluster"
        )
