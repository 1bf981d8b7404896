"""A simulated kubelet per node: pulls (or fails to pull), starts, readies, crashes, OOM-kills
and completes pods; runs the node-info collector on the node's fixture hardware and the
model-transfer Job's progress reporting, writing the ConfigMaps the real pods would."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from budcluster.hardware.cpuinfo import parse_cpuinfo
from budcluster.hardware.hlsmi import parse_hl_smi
from budcluster.hardware.lscpu import parse_lscpu
from budcluster.hardware.merge import merge_fragments
from budcluster.hardware.node_labels import parse_node_labels
from budcluster.hardware.nvidia_text import parse_nvidia_smi_capture
from tests.k8s_emulator import ids
from tests.k8s_emulator.clone import clone
from tests.k8s_emulator.container_env import ContainerConfigError, container_env
from tests.k8s_emulator.errors import ApiError
from tests.k8s_emulator.events import record_event
from tests.k8s_emulator.faults import Fault
from tests.k8s_emulator.litellm_http import SimulatedLiteLLM, is_litellm
from tests.k8s_emulator.nodes import NodeSpec, hardware_fixtures_dir
from tests.k8s_emulator.quantity import parse_quantity
from tests.k8s_emulator.runtime_http import HttpAnswer, SimulatedEngine
from tests.k8s_emulator.scheduler import TERMINAL
from tests.k8s_emulator.store import now_iso
from tests.k8s_emulator.volumes import ProjectedFile, mount_failures, secret_files

if TYPE_CHECKING:
    from tests.k8s_emulator.cluster import Cluster

Obj = dict[str, Any]
COLLECTOR_LABEL = ("app.kubernetes.io/name", "node-info-collector")
TRANSFER_LABEL = ("app.kubernetes.io/name", "model-transfer")
INVENTORY_KEY = "inventory.json"
TRANSFER_KEY = "progress.json"


def collector_configmap_name(node: str) -> str:
    return f"node-info-{node}"


def transfer_configmap_name(job: str) -> str:
    return f"{job}-progress"


@dataclass
class PodRuntime:
    """What the kubelet remembers about one pod (the API object holds the rest)."""

    bound_at: float
    started_at: float | None = None
    ready_at: float | None = None
    finished: bool = False
    next_crash_at: float = 0.0
    restarts: int = 0
    last_collect: float = 0.0
    transfer_step: int = -1
    logs: dict[str, list[str]] = field(default_factory=dict)
    previous_logs: dict[str, list[str]] = field(default_factory=dict)
    waiting: dict[str, str] = field(default_factory=dict)  # container -> reason
    files: dict[str, dict[str, str]] = field(default_factory=dict)
    """container -> {path: text} of its ConfigMap volumes, read when it started."""
    env: dict[str, dict[str, str]] = field(default_factory=dict)
    """container -> the environment it started with (``container_env``)."""
    config_errors: dict[str, str] = field(default_factory=dict)
    """container -> why it cannot start yet (CreateContainerConfigError), as last reported."""
    secret_files: dict[str, dict[str, ProjectedFile]] = field(default_factory=dict)
    """container -> {path: file} of its Secret volumes, projected when it started."""
    mount_failures: list[str] = field(default_factory=list)
    """FailedMount messages last reported (the pod waits in ContainerCreating)."""


def _has_label(pod: Obj, label: tuple[str, str]) -> bool:
    return bool((pod["metadata"].get("labels") or {}).get(label[0]) == label[1])


def _container_id() -> str:
    return f"containerd://{ids.token_hex(32)}"


_PARSERS: dict[str, Callable[[str, str], Obj]] = {
    "nvidia-smi": parse_nvidia_smi_capture,
    "hl-smi": parse_hl_smi,
    "lscpu": parse_lscpu,
    "/proc/cpuinfo": parse_cpuinfo,
}


@functools.lru_cache(maxsize=64)
def _parsed_once(source: str, text: str) -> Obj:
    return _PARSERS[source](text, source)


def _parsed(source: str, text: str) -> Obj:
    """The real parser's answer for this tool's output, computed once per distinct text:
    a thousand nodes share a handful of fixture files. A copy, as the merge may change it."""
    return clone(_parsed_once(source, text))


def collect_inventory(spec: NodeSpec, node: Obj) -> Obj:
    """What the collector pod would report on this node: the real parsers over the node's
    fixture hardware files, plus its labels and memory, merged richest first."""
    hw = hardware_fixtures_dir()
    fragments: list[Obj] = []
    files = spec.hardware
    if "nvidia_capture" in files:
        fragments.append(_parsed("nvidia-smi", (hw / files["nvidia_capture"]).read_text()))
    if "hl_smi" in files:
        gaudi = _parsed("hl-smi", (hw / files["hl_smi"]).read_text())
        gaudi["tools"] = [{"name": "hl-smi", "present": True}]
        fragments.append(gaudi)
    if "lscpu" in files:
        fragments.append(_parsed("lscpu", (hw / files["lscpu"]).read_text()))
    if "cpuinfo" in files:
        fragments.append(_parsed("/proc/cpuinfo", (hw / files["cpuinfo"]).read_text()))
    memory_kib = parse_quantity(spec.capacity.get("memory", "0")) / 1024
    fragments.append(
        {
            "memory": {"total_mib": int(memory_kib // 1024), "source": "/proc/meminfo"},
            "sources": [{"kind": "meminfo", "origin": "/proc/meminfo"}],
        }
    )
    fragments.append(parse_node_labels(node["metadata"].get("labels") or {}, f"node/{spec.name}"))
    for absent in ("nvidia-smi", "hl-smi"):
        key = "nvidia_capture" if absent == "nvidia-smi" else "hl_smi"
        if key not in files:
            fragments.append(
                {
                    "tools": [
                        {"name": absent, "present": False, "reason": f"{absent} not found on PATH"}
                    ]
                }
            )
    inventory = merge_fragments(*fragments)
    inventory["node_name"] = spec.name
    inventory["collected_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return inventory


class Kubelet:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.pods: dict[str, PodRuntime] = {}

    # --- helpers --------------------------------------------------------------------

    def _event(
        self,
        pod: Obj,
        reason: str,
        message: str,
        type_: str = "Normal",
        container: str | None = None,
    ) -> None:
        record_event(
            self.cluster.store,
            pod,
            reason,
            message,
            type_=type_,
            component="kubelet",
            host=pod["spec"].get("nodeName"),
            field_path=f"spec.containers{{{container}}}" if container else None,
        )

    def _write(self, pod: Obj) -> Obj:
        return self.cluster.store.write(self.cluster.registry.get("pods"), pod)

    def _node(self, name: str) -> tuple[NodeSpec | None, Obj | None]:
        node = self.cluster.store.find(self.cluster.registry.get("nodes"), None, name)
        return self.cluster.node_specs.get(name), node

    def files(self, pod: Obj, container: str) -> dict[str, str]:
        """The files the container's ConfigMap volumes held when it started."""
        runtime = self.pods.get(pod["metadata"]["uid"])
        return dict(runtime.files.get(container, {})) if runtime is not None else {}

    def secret_files(self, pod: Obj, container: str) -> dict[str, ProjectedFile]:
        """The files (bytes, mode, owner) the container's Secret volumes held when it started."""
        runtime = self.pods.get(pod["metadata"]["uid"])
        return dict(runtime.secret_files.get(container, {})) if runtime is not None else {}

    def _lookup(self, pod: Obj) -> Callable[[str, str], Obj | None]:
        namespace = pod["metadata"]["namespace"]

        def lookup(plural: str, name: str) -> Obj | None:
            return self.cluster.store.find(self.cluster.registry.get(plural), namespace, name)

        return lookup

    def _volumes_mounted(self, pod: Obj, runtime: PodRuntime) -> bool:
        """Whether every Secret volume can be set up; else FailedMount, retried next tick."""
        failures = mount_failures(pod, self._lookup(pod))
        if not failures:
            runtime.mount_failures = []
            return True
        if failures != runtime.mount_failures:
            for message in failures:
                self._event(pod, "FailedMount", message, "Warning")
            statuses = [
                {
                    "name": c["name"],
                    "image": self._image(pod, c),
                    "imageID": "",
                    "ready": False,
                    "started": False,
                    "restartCount": 0,
                    "state": {"waiting": {"reason": "ContainerCreating"}},
                    "lastState": {},
                }
                for c in pod["spec"].get("containers") or []
            ]
            self._set_status(pod, "Pending", statuses, ready=False)
        runtime.mount_failures = failures
        return False

    def env(self, pod: Obj, container: str) -> dict[str, str]:
        """The environment the container started with (Secret and ConfigMap values read
        then, as the real kubelet does: a changed Secret reaches it only on a restart)."""
        runtime = self.pods.get(pod["metadata"]["uid"])
        return dict(runtime.env.get(container, {})) if runtime is not None else {}

    def _environments(self, pod: Obj, runtime: PodRuntime) -> dict[str, dict[str, str]] | None:
        """Every container's environment, or None after reporting the containers whose
        Secret or ConfigMap references cannot be resolved (retried on the next tick)."""
        namespace = pod["metadata"]["namespace"]

        def lookup(plural: str, name: str) -> Obj | None:
            return self.cluster.store.find(self.cluster.registry.get(plural), namespace, name)

        envs: dict[str, dict[str, str]] = {}
        errors: dict[str, str] = {}
        for container in pod["spec"].get("containers") or []:
            try:
                envs[container["name"]] = container_env(pod, container, lookup)
            except ContainerConfigError as exc:
                errors[container["name"]] = str(exc)
        if not errors:
            return envs
        self._config_error(pod, runtime, errors)
        return None

    def _config_error(self, pod: Obj, runtime: PodRuntime, errors: dict[str, str]) -> None:
        """The kubelet's CreateContainerConfigError: the pod stays Pending, the container
        waits with the reason, and a Failed event says what is missing."""
        statuses = []
        for container in pod["spec"].get("containers") or []:
            name, image = container["name"], self._image(pod, container)
            message = errors.get(name)
            waiting = (
                {"reason": "CreateContainerConfigError", "message": message}
                if message
                else {"reason": "ContainerCreating"}
            )
            statuses.append(
                {
                    "name": name,
                    "image": image,
                    "imageID": "",
                    "ready": False,
                    "started": False,
                    "restartCount": 0,
                    "state": {"waiting": waiting},
                    "lastState": {},
                }
            )
            if message and runtime.config_errors.get(name) != message:
                self._event(
                    pod,
                    "Pulled",
                    f'Container image "{image}" already present on machine',
                    container=name,
                )
                self._event(pod, "Failed", f"Error: {message}", "Warning", name)
        runtime.config_errors = dict(errors)
        self._set_status(pod, "Pending", statuses, ready=False)

    def _configmap_files(self, pod: Obj, container: Obj) -> dict[str, str]:
        """Path -> text of every ConfigMap volume mounted into ``container``, as the
        kubelet projects them: one file per key (or per ``items`` entry) under the
        mountPath, or the one key named by ``subPath``. A missing ConfigMap gives no files
        (the real kubelet would hold the pod in ContainerCreating with FailedMount)."""
        volumes = {v.get("name"): v for v in pod["spec"].get("volumes") or []}
        cm_rt = self.cluster.registry.get("configmaps")
        files: dict[str, str] = {}
        for mount in container.get("volumeMounts") or []:
            source = (volumes.get(mount.get("name")) or {}).get("configMap")
            if not source:
                continue
            live = self.cluster.store.find(cm_rt, pod["metadata"]["namespace"], source["name"])
            data = dict((live or {}).get("data") or {})
            items = source.get("items")
            projected = (
                {i["path"]: data[i["key"]] for i in items if i.get("key") in data}
                if items
                else data
            )
            base = str(mount["mountPath"]).rstrip("/")
            if mount.get("subPath"):
                if mount["subPath"] in projected:
                    files[base] = projected[mount["subPath"]]
                continue
            files.update({f"{base}/{path}": text for path, text in projected.items()})
        return files

    def logs(self, pod: Obj, container: str, previous: bool = False) -> list[str]:
        runtime = self.pods.get(pod["metadata"]["uid"])
        if runtime is None:
            return []
        source = runtime.previous_logs if previous else runtime.logs
        return list(source.get(container, []))

    # --- the loop -------------------------------------------------------------------

    def tick(self) -> None:
        store = self.cluster.store
        pod_rt = self.cluster.registry.get("pods")
        seen: set[str] = set()
        for pod in store.list(pod_rt):
            node_name = pod["spec"].get("nodeName")
            if not node_name:
                continue
            uid = pod["metadata"]["uid"]
            seen.add(uid)
            if node_name in self.cluster.lost_nodes:
                continue  # that node's kubelet is gone: nothing on it moves any more
            runtime = self.pods.setdefault(uid, PodRuntime(bound_at=time.monotonic()))
            if runtime.finished:
                continue
            # A pod that runs and is ready, with no fault on it, is only read by _step (the
            # collector writes its ConfigMap, not the pod): copying every such pod on every
            # tick was most of the kubelet's time on a 1,000-node cluster.
            steady = (
                runtime.started_at is not None
                and runtime.ready_at is not None
                and not _is_job_pod(pod)
                and self.cluster.faults.for_pod(pod) is None
            )
            try:
                self._step(pod if steady else clone(pod), runtime)
            except ApiError:
                continue  # the pod or its namespace went away mid-step
        for uid in set(self.pods) - seen:
            del self.pods[uid]

    def _step(self, pod: Obj, runtime: PodRuntime) -> None:
        timings = self.cluster.timings
        now = time.monotonic()
        fault = self.cluster.faults.for_pod(pod)
        if runtime.started_at is None:
            if now - runtime.bound_at < timings.pod_start_s:
                return
            if not self._volumes_mounted(pod, runtime):
                return
            if fault is not None and fault.kind == "ImagePullBackOff":
                self._image_pull_backoff(pod, runtime)
                return
            envs = self._environments(pod, runtime)
            if envs is None:
                return
            runtime.env = envs
            self._start(pod, runtime, fault)
            return
        if _is_job_pod(pod):
            self._run_job_pod(pod, runtime, fault)
            return
        if fault is not None and fault.kind in ("CrashLoopBackOff", "OOMKilled"):
            if now >= runtime.next_crash_at:
                self._crash(pod, runtime, fault)
            return
        if runtime.ready_at is None and now - runtime.started_at >= timings.ready_s:
            runtime.ready_at = now
            self._set_ready(pod, True)
        if runtime.ready_at is not None and _has_label(pod, COLLECTOR_LABEL):
            self._collect(pod, runtime)

    def _image(self, pod: Obj, container: Obj) -> str:
        return str(container.get("image", ""))

    def _image_pull_backoff(self, pod: Obj, runtime: PodRuntime) -> None:
        statuses = []
        first = not runtime.waiting
        for container in pod["spec"].get("containers") or []:
            name, image = container["name"], self._image(pod, container)
            reason = "ErrImagePull" if first else "ImagePullBackOff"
            message = (
                f'failed to pull and unpack image "{image}": failed to resolve reference "{image}": '
                f"{image}: not found"
                if first
                else f'Back-off pulling image "{image}": ErrImagePull: failed to pull and unpack image "{image}"'
            )
            statuses.append(
                {
                    "name": name,
                    "image": image,
                    "imageID": "",
                    "ready": False,
                    "started": False,
                    "restartCount": 0,
                    "state": {"waiting": {"reason": reason, "message": message}},
                    "lastState": {},
                }
            )
            if first:
                self._event(pod, "Pulling", f'Pulling image "{image}"', container=name)
                self._event(
                    pod,
                    "Failed",
                    f'Failed to pull image "{image}": rpc error: code = NotFound desc = {message}',
                    "Warning",
                    name,
                )
                self._event(pod, "Failed", "Error: ErrImagePull", "Warning", name)
            else:
                self._event(pod, "BackOff", f'Back-off pulling image "{image}"', container=name)
                self._event(pod, "Failed", "Error: ImagePullBackOff", "Warning", name)
            runtime.waiting[name] = reason
        if (
            not first
            and all(s["state"]["waiting"]["reason"] == "ImagePullBackOff" for s in statuses)
            and (pod["status"].get("containerStatuses") == statuses)
        ):
            return
        self._set_status(pod, "Pending", statuses, ready=False)

    def _base_status(self, pod: Obj) -> None:
        status = pod["status"]
        _spec, node = self._node(pod["spec"]["nodeName"])
        host_ip = "10.0.0.1"
        for address in ((node or {}).get("status") or {}).get("addresses") or []:
            if address.get("type") == "InternalIP":
                host_ip = address["address"]
        status.setdefault("hostIP", host_ip)
        status.setdefault("hostIPs", [{"ip": host_ip}])
        if "podIP" not in status:
            self.cluster.pod_ip_counter += 1
            n = self.cluster.pod_ip_counter
            ip = f"10.244.{host_ip.rsplit('.', 1)[-1]}.{n % 250 + 2}"
            status["podIP"], status["podIPs"] = ip, [{"ip": ip}]
        status.setdefault("startTime", now_iso())

    def _set_status(
        self, pod: Obj, phase: str, statuses: list[Obj], ready: bool, reason: str | None = None
    ) -> None:
        self._base_status(pod)
        status = pod["status"]
        status["phase"] = phase
        status["containerStatuses"] = statuses
        now = now_iso()
        unready = [s["name"] for s in statuses if not s["ready"]]
        conditions = {c["type"]: c for c in status.get("conditions") or []}

        def cond(type_: str, ok: bool, why: str | None = None, message: str | None = None) -> None:
            old = conditions.get(type_)
            value = "True" if ok else "False"
            new: Obj = {
                "type": type_,
                "status": value,
                "lastProbeTime": None,
                "lastTransitionTime": now,
            }
            if old is not None and old.get("status") == value:
                new["lastTransitionTime"] = old.get("lastTransitionTime", now)
            if why:
                new["reason"] = why
            if message:
                new["message"] = message
            conditions[type_] = new

        cond("PodReadyToStartContainers", True)
        cond("Initialized", True)
        if reason == "PodCompleted":
            cond("Ready", False, "PodCompleted")
            cond("ContainersReady", False, "PodCompleted")
        elif ready:
            cond("Ready", True)
            cond("ContainersReady", True)
        else:
            message = f"containers with unready status: [{' '.join(unready)}]"
            cond("Ready", False, "ContainersNotReady", message)
            cond("ContainersReady", False, "ContainersNotReady", message)
        order = [
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled",
        ]
        status["conditions"] = [conditions[t] for t in order if t in conditions]
        self._write(pod)

    def _running_statuses(self, pod: Obj, runtime: PodRuntime, ready: bool) -> list[Obj]:
        started = now_iso()
        statuses = []
        old = {s["name"]: s for s in pod["status"].get("containerStatuses") or []}
        for container in pod["spec"].get("containers") or []:
            name, image = container["name"], self._image(pod, container)
            previous = old.get(name) or {}
            running = (previous.get("state") or {}).get("running") or {"startedAt": started}
            statuses.append(
                {
                    "name": name,
                    "image": image,
                    "imageID": f"{image.split(':')[0]}@sha256:{ids.token_hex(32)}"
                    if not previous.get("imageID")
                    else previous["imageID"],
                    "containerID": previous.get("containerID") or _container_id(),
                    "ready": ready,
                    "started": True,
                    "restartCount": runtime.restarts,
                    "state": {"running": running},
                    "lastState": previous.get("lastState") or {},
                }
            )
        return statuses

    def _start(self, pod: Obj, runtime: PodRuntime, fault: Fault | None) -> None:
        runtime.started_at = time.monotonic()
        runtime.waiting.clear()
        runtime.config_errors.clear()
        for container in pod["spec"].get("containers") or []:
            name, image = container["name"], self._image(pod, container)
            if container.get("imagePullPolicy") == "Always":
                self._event(pod, "Pulling", f'Pulling image "{image}"', container=name)
                self._event(
                    pod,
                    "Pulled",
                    f'Successfully pulled image "{image}" in 1.2s (1.2s including waiting). Image size: 123456789 bytes.',
                    container=name,
                )
            else:
                self._event(
                    pod,
                    "Pulled",
                    f'Container image "{image}" already present on machine',
                    container=name,
                )
            self._event(pod, "Created", f"Created container: {name}", container=name)
            self._event(pod, "Started", f"Started container {name}", container=name)
            runtime.files[name] = self._configmap_files(pod, container)
            runtime.secret_files[name] = secret_files(pod, container, self._lookup(pod))
            runtime.logs[name] = self._startup_log(pod, container)
        if fault is not None and fault.kind in ("CrashLoopBackOff", "OOMKilled"):
            for name in runtime.logs:
                runtime.logs[name] = runtime.logs[name] + fault.log.splitlines()
        self._set_status(pod, "Running", self._running_statuses(pod, runtime, False), ready=False)

    def _startup_log(self, pod: Obj, container: Obj) -> list[str]:
        image = self._image(pod, container)
        lines = [
            f"emulator: container {container['name']} started from {image} on {pod['spec']['nodeName']}"
        ]
        if _has_label(pod, COLLECTOR_LABEL):
            lines.append("node-info-collector: collecting inventory")
        elif _has_label(pod, TRANSFER_LABEL):
            lines.append("model-transfer: starting")
        elif is_litellm(container):
            runtime = self.pods[pod["metadata"]["uid"]]
            proxy = SimulatedLiteLLM.of(
                container,
                runtime.files.get(container["name"], {}),
                _no_forward,
                runtime.env.get(container["name"], {}),
            )
            lines += [
                f"LiteLLM: Proxy initialized with Config, Set models: {proxy.model_names}",
                "INFO:     Started server process [1]",
                "INFO:     Waiting for application startup.",
                "INFO:     Application startup complete.",
                f"INFO:     Uvicorn running on http://0.0.0.0:{proxy.port} (Press CTRL+C to quit)",
            ]
        else:
            engine = SimulatedEngine.of(container)
            names = ", ".join(engine.served_names)
            if engine.engine == "llama.cpp":
                lines += [
                    f"main: model loaded (simulated), alias {names}",
                    f"main: server is listening on http://0.0.0.0:{engine.port} - starting the main loop",
                ]
            else:
                lines += [
                    f"INFO:     simulated engine serving {names}",
                    "INFO:     Started server process [1]",
                    "INFO:     Waiting for application startup.",
                    "INFO:     Application startup complete.",
                    f"INFO:     Uvicorn running on http://0.0.0.0:{engine.port} (Press CTRL+C to quit)",
                ]
        return lines

    def _set_ready(self, pod: Obj, ready: bool) -> None:
        runtime = self.pods[pod["metadata"]["uid"]]
        self._set_status(pod, "Running", self._running_statuses(pod, runtime, ready), ready=ready)

    def _crash(self, pod: Obj, runtime: PodRuntime, fault: Fault) -> None:
        oom = fault.kind == "OOMKilled"
        now = now_iso()
        statuses = []
        for container in pod["spec"].get("containers") or []:
            name, image = container["name"], self._image(pod, container)
            runtime.previous_logs[name] = list(runtime.logs.get(name, []))
            if oom:
                runtime.previous_logs[name].append("Killed")
            # A restarted container sees its ConfigMap volumes as they are now.
            runtime.files[name] = self._configmap_files(pod, container)
            runtime.logs[name] = self._startup_log(pod, container) + fault.log.splitlines()
            backoff = min(300, 10 * 2**runtime.restarts)
            statuses.append(
                {
                    "name": name,
                    "image": image,
                    "imageID": f"{image.split(':')[0]}@sha256:{'0' * 64}",
                    "containerID": _container_id(),
                    "ready": False,
                    "started": False,
                    "restartCount": runtime.restarts + 1,
                    "state": {
                        "waiting": {
                            "reason": "CrashLoopBackOff",
                            "message": f"back-off {backoff}s restarting failed container={name} "
                            f"pod={pod['metadata']['name']}_{pod['metadata']['namespace']}({pod['metadata']['uid']})",
                        }
                    },
                    "lastState": {
                        "terminated": {
                            "exitCode": 137 if oom else 1,
                            "reason": "OOMKilled" if oom else "Error",
                            "startedAt": now,
                            "finishedAt": now,
                            "containerID": _container_id(),
                        }
                    },
                }
            )
            self._event(
                pod,
                "BackOff",
                f"Back-off restarting failed container {name} in pod "
                f"{pod['metadata']['name']}_{pod['metadata']['namespace']}({pod['metadata']['uid']})",
                "Warning",
                name,
            )
        runtime.restarts += 1
        runtime.next_crash_at = time.monotonic() + self.cluster.timings.crash_interval_s
        self._set_status(pod, "Running", statuses, ready=False)

    # --- Job pods -------------------------------------------------------------------

    def _run_job_pod(self, pod: Obj, runtime: PodRuntime, fault: Fault | None) -> None:
        assert runtime.started_at is not None
        elapsed = time.monotonic() - runtime.started_at
        run_s = self.cluster.timings.job_run_s
        transfer = _has_label(pod, TRANSFER_LABEL)
        failing = fault is not None and fault.kind in ("JobFailed", "CrashLoopBackOff", "OOMKilled")
        copied: Obj | None = None
        if transfer and elapsed >= run_s and not failing and self.cluster.volumes_dir:
            copied = self._copy_into_volume(pod, runtime)
            failing = "error" in copied
        if transfer:
            self._transfer_progress(
                pod, runtime, min(1.0, elapsed / run_s), failing and elapsed >= run_s, copied
            )
        if elapsed < run_s:
            if runtime.ready_at is None:
                runtime.ready_at = time.monotonic()
                self._set_ready(pod, True)
            return
        runtime.finished = True
        oom = fault is not None and fault.kind == "OOMKilled"
        now = now_iso()
        statuses = []
        for container in pod["spec"].get("containers") or []:
            name = container["name"]
            if failing and fault is not None:
                runtime.logs[name] = runtime.logs.get(name, []) + fault.log.splitlines()
            statuses.append(
                {
                    "name": name,
                    "image": self._image(pod, container),
                    "imageID": "",
                    "containerID": _container_id(),
                    "ready": False,
                    "started": False,
                    "restartCount": 0,
                    "state": {
                        "terminated": {
                            "exitCode": (137 if oom else 1) if failing else 0,
                            "reason": ("OOMKilled" if oom else "Error") if failing else "Completed",
                            "startedAt": now,
                            "finishedAt": now,
                        }
                    },
                    "lastState": {},
                }
            )
        self._set_status(
            pod, "Failed" if failing else "Succeeded", statuses, ready=False, reason="PodCompleted"
        )
        if failing:
            self.cluster.job_last_failure[_job_uid(pod)] = time.monotonic()

    def _copy_into_volume(self, pod: Obj, runtime: PodRuntime) -> Obj:
        """What the transfer container does (charts/model_transfer/files/transfer_job.py):
        copy ``args[0]`` into ``args[1]`` with the transfer engine, reading the source's keys
        from the environment it started with; ``args[1]`` lies in a mounted volume, whose
        files live under ``volumes_dir``. Returns the result summary, or the error."""
        from budcluster.errors import BudClusterError, TemporaryError
        from budcluster.transfer.engine import transfer_model
        from budcluster.transfer.uri import parse_source

        (container,) = pod["spec"]["containers"]
        args = [str(a) for a in container.get("args") or []]
        try:
            dest = self.volume_path(pod, container, args[1])
            result = transfer_model(
                parse_source(args[0], runtime.env.get(container["name"], {})), dest, workers=1
            )
        except (BudClusterError, ContainerConfigError) as exc:
            retryable = isinstance(exc, TemporaryError)
            error = {"error": type(exc).__name__, "message": str(exc), "retryable": retryable}
            runtime.logs.setdefault(container["name"], []).append(json.dumps(error))
            return error
        summary: Obj = result.to_dict()
        runtime.logs.setdefault(container["name"], []).append(json.dumps(summary))
        return summary

    def volume_path(self, pod: Obj, container: Obj, path: str) -> Path:
        """Where ``path`` of ``container`` lies on the node: under the mount that holds it,
        in the bound volume's directory of ``volumes_dir`` (with the mount's subPath)."""
        assert self.cluster.volumes_dir is not None
        volumes = {v.get("name"): v for v in pod["spec"].get("volumes") or []}
        mounts = sorted(
            container.get("volumeMounts") or [], key=lambda m: -len(str(m["mountPath"]))
        )
        for mount in mounts:
            base = str(mount["mountPath"]).rstrip("/")
            if path != base and not path.startswith(base + "/"):
                continue
            claim = (volumes.get(mount["name"]) or {}).get("persistentVolumeClaim") or {}
            pvc = self.cluster.store.find(
                self.cluster.registry.get("persistentvolumeclaims"),
                pod["metadata"]["namespace"],
                str(claim.get("claimName")),
            )
            volume = ((pvc or {}).get("spec") or {}).get("volumeName")
            if not volume:
                raise ContainerConfigError(f"{path}: not on a bound persistent volume")
            root = self.cluster.volumes_dir / str(volume) / str(mount.get("subPath") or "")
            return root / path[len(base) :].lstrip("/")
        raise ContainerConfigError(f"{path}: no volume is mounted there")

    def _transfer_progress(
        self,
        pod: Obj,
        runtime: PodRuntime,
        fraction: float,
        failed: bool,
        copied: Obj | None = None,
    ) -> None:
        step = 2 if fraction >= 1.0 else (1 if fraction >= 0.5 else 0)
        if failed:
            step = 3
        if step == runtime.transfer_step:
            return
        runtime.transfer_step = step
        env = {
            e.get("name"): e.get("value")
            for c in pod["spec"].get("containers") or []
            for e in c.get("env") or []
        }
        bytes_total = int(env.get("MODEL_BYTES") or 1_073_741_824)
        files_total = int(env.get("MODEL_FILES") or 4)
        done_fraction = {0: 0.0, 1: 0.5, 2: 1.0, 3: 0.5}[step]
        run_s = self.cluster.timings.job_run_s
        elapsed = round(run_s * done_fraction, 1)
        # The same key and payload as charts/model_transfer/files/transfer_job.py writes.
        payload: Obj = {
            "state": "running",
            "files_total": files_total,
            "files_done": int(files_total * done_fraction),
            "bytes_total": bytes_total,
            "bytes_done": int(bytes_total * done_fraction),
            "elapsed_s": elapsed,
            "eta_s": round(run_s * (1 - done_fraction), 1) if step == 1 else None,
        }
        if step == 2 and copied is not None:
            payload.update(
                state="done",
                files_total=copied["files"],
                files_done=copied["files"],
                bytes_total=copied["bytes_total"],
                bytes_done=copied["bytes_total"],
                eta_s=0,
                result=copied,
            )
        elif step == 2:
            payload.update(
                state="done",
                eta_s=0,
                result={
                    "files": files_total,
                    "bytes_total": bytes_total,
                    "bytes_copied": bytes_total,
                    "files_copied": files_total,
                    "files_skipped": 0,
                    "seconds": round(run_s, 3),
                    "manifest_sha256": hashlib.sha256(
                        f"{pod['metadata']['uid']}:{bytes_total}".encode()
                    ).hexdigest(),
                    "changed": True,
                },
            )
        if step == 3:
            payload = {
                "state": "failed",
                "error": "TransferSourceError",
                "message": "emulated transfer failed: source unreachable",
                "retryable": False,
            }
            if copied is not None:
                payload.update(copied)
        pod_labels = pod["metadata"].get("labels") or {}
        job = pod_labels.get("batch.kubernetes.io/job-name") or pod["metadata"]["name"]
        name = env.get("PROGRESS_CONFIGMAP") or transfer_configmap_name(job)
        labels = {
            key: pod_labels[key]
            for key in (
                "app.kubernetes.io/name",
                "app.kubernetes.io/instance",
                "budcluster.io/release",
                "batch.kubernetes.io/job-name",
            )
            if key in pod_labels
        }
        self._upsert_configmap(
            pod["metadata"]["namespace"],
            name,
            labels,
            {TRANSFER_KEY: json.dumps(payload, sort_keys=True)},
        )

    # --- the node-info collector ------------------------------------------------------

    def _collect(self, pod: Obj, runtime: PodRuntime) -> None:
        env = {
            e.get("name"): e.get("value")
            for c in pod["spec"].get("containers") or []
            for e in c.get("env") or []
        }
        # The chart passes REFRESH_SECONDS to the real collector script.
        interval = float(env.get("REFRESH_SECONDS") or env.get("INTERVAL_SECONDS") or 0)
        node_name = pod["spec"]["nodeName"]
        namespace = pod["metadata"]["namespace"]
        cm_rt = self.cluster.registry.get("configmaps")
        exists = (
            self.cluster.store.find(cm_rt, namespace, collector_configmap_name(node_name))
            is not None
        )
        due = interval > 0 and time.monotonic() - runtime.last_collect >= max(interval, 0.5)
        if exists and not due:
            return
        spec, node = self._node(node_name)
        if spec is None or node is None:
            return
        runtime.last_collect = time.monotonic()
        inventory = collect_inventory(spec, node)
        # The labels charts/node_info_collector/files/write_node_info.py sets.
        labels = {
            "app.kubernetes.io/name": "node-info-collector",
            "app.kubernetes.io/managed-by": "bud-serve-cluster",
            "budcluster.io/node": node_name[:63],
        }
        pod_labels = pod["metadata"].get("labels") or {}
        release = env.get("RELEASE_NAME") or pod_labels.get("budcluster.io/release")
        if release:
            labels["budcluster.io/release"] = release
        instance = pod_labels.get("app.kubernetes.io/instance")
        if instance:
            labels["app.kubernetes.io/instance"] = instance
        self._upsert_configmap(
            namespace,
            collector_configmap_name(node_name),
            labels,
            {INVENTORY_KEY: json.dumps(inventory, sort_keys=True)},
        )
        runtime.logs.setdefault(pod["spec"]["containers"][0]["name"], []).append(
            f"node-info-collector: wrote ConfigMap {namespace}/{collector_configmap_name(node_name)}"
        )

    def _upsert_configmap(
        self, namespace: str, name: str, labels: dict[str, str], data: dict[str, str]
    ) -> None:
        store = self.cluster.store
        cm_rt = self.cluster.registry.get("configmaps")
        live = store.find(cm_rt, namespace, name)
        if live is None:
            store.create(
                cm_rt, namespace, {"metadata": {"name": name, "labels": labels}, "data": data}
            )
        else:
            new = clone(live)
            new["metadata"].setdefault("labels", {}).update(labels)
            new["data"] = data
            store.write(cm_rt, new)


def _is_job_pod(pod: Obj) -> bool:
    return any(r.get("kind") == "Job" for r in pod["metadata"].get("ownerReferences") or [])


def _no_forward(url: str, _method: str, _body: bytes) -> HttpAnswer:
    raise ConnectionError(f"the startup log does not dial {url}")


def _job_uid(pod: Obj) -> str:
    for ref in pod["metadata"].get("ownerReferences") or []:
        if ref.get("kind") == "Job":
            return str(ref.get("uid"))
    return ""


def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in TERMINAL
