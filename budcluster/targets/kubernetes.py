"""The ``kubernetes`` cluster target: Kubernetes and OpenShift through Helm charts.

Charts are rendered offline by the Helm adapter and applied by the Kubernetes adapter under
a release label (``budcluster.io/release``), so listing, deleting and rolling back are exact.

Namespaces: a pod can only mount a PersistentVolumeClaim of its own namespace, so each model
gets one namespace (``<prefix>-<model>-<hash>``, at most 63 characters) that holds its PVC
and every runtime serving it; each deployment is one release in that namespace.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s_client

from budcluster.adapters import helm
from budcluster.adapters import kubernetes as kube
from budcluster.endpoints import EndpointCheck, EndpointNotReady, EndpointWrongModel
from budcluster.errors import BudClusterError, ConfigurationError, TemporaryError
from budcluster.gateway import (
    MASTER_KEY_HEADER,
    MASTER_KEY_SECRET_KEY,
    GatewayCheck,
    GatewayRoute,
    listed_models,
    missing_routes,
)
from budcluster.hardware.advertised_gpus import extend_to_advertised
from budcluster.hardware.inventory import DevicesInUse, NodeInventory
from budcluster.hardware.merge import merge_fragments
from budcluster.hardware.node_labels import parse_node_labels
from budcluster.targets.base import (
    AccessReport,
    ModelSourceSpec,
    NodeHealth,
    ProgressCallback,
    RolloutSpec,
    RuntimeState,
    RuntimeStatus,
    StagedModel,
    TargetError,
    TransferProgress,
    check_safe_name,
)

CHARTS_DIR = Path(__file__).resolve().parents[2] / "charts"
COLLECTOR_RELEASE = "node-info-collector"
NODE_INFO_PREFIX = "node-info-"
PVC_SCHEME = "pvc://"
MAX_NAMESPACE = 63
MAX_RELEASE = 53  # Helm's limit: release names become label values and object-name prefixes
GPU_RESOURCE = "nvidia.com/gpu"
GAUDI_RESOURCE = "habana.ai/gaudi"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# The kubelet retries ErrImagePull and reports ImagePullBackOff once it backs off; the rest
# cannot succeed without a new spec.
_IMAGE_PULL_RETRYING = {"ErrImagePull"}
_IMAGE_PULL_FINAL = {"ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
_CRASHING = {"CrashLoopBackOff", "CreateContainerConfigError", "CreateContainerError"}


class KubernetesTargetError(TargetError):
    """A Kubernetes target operation failed; the cause holds the adapter's error."""


class KubernetesTargetTemporary(KubernetesTargetError, TemporaryError):
    """The operation may succeed when retried (API server busy, wait ran out)."""


class KubernetesTargetConfigError(KubernetesTargetError, ConfigurationError):
    """An input is unusable; the message names it and the fix."""


class KubernetesRuntimeFailed(KubernetesTargetError):
    """The runtime's pods failed (CrashLoopBackOff, ImagePullBackOff, FailedScheduling, ...)."""

    def __init__(self, message: str, reason: str | None, log_tail: Sequence[str]) -> None:
        super().__init__(message)
        self.reason = reason
        self.log_tail = list(log_tail)


# --- names -----------------------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text.lower())).strip("-") or "x"


def dns_name(prefix: str, name: str, limit: int) -> str:
    """``<prefix>-<slug of name>-<8 hex of name>``: a DNS-1123 label of at most ``limit``.

    The hash is of the full original name, so two names that slug or truncate alike stay
    different.
    """
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    room = limit - len(prefix) - len(digest) - 2
    if room < 1:
        raise ValueError(f"prefix '{prefix}' leaves no room for a name within {limit} characters")
    body = _slug(name)[:room].strip("-") or "x"
    result = f"{prefix}-{body}-{digest}"
    if not _DNS_LABEL.match(result):
        raise ValueError(
            f"'{result}' is not a DNS-1123 label; the prefix must be lowercase letters, digits, '-'"
        )
    return result


def namespace_for(prefix: str, model_name: str) -> str:
    return dns_name(prefix, model_name, MAX_NAMESPACE)


def release_for(deployment_name: str) -> str:
    return dns_name("rt", deployment_name, MAX_RELEASE)


def model_release_for(model_name: str) -> str:
    return dns_name("model", model_name, MAX_RELEASE)


def pvc_path(namespace: str, pvc: str, subdir: str = "") -> str:
    return f"{PVC_SCHEME}{namespace}/{pvc}" + (f"/{subdir}" if subdir else "")


def parse_pvc_path(path: str) -> tuple[str, str, str]:
    """``pvc://<namespace>/<claim>[/<dir>]`` -> (namespace, claim, dir or "")."""
    parts = path[len(PVC_SCHEME) :].split("/") if path.startswith(PVC_SCHEME) else []
    if len(parts) not in (2, 3) or not all(parts):
        raise KubernetesTargetError(
            f"model_path '{path}' is not a staged Kubernetes model; expected "
            "pvc://<namespace>/<claim>[/<dir>] as stage_model returns it"
        )
    return parts[0], parts[1], parts[2] if len(parts) == 3 else ""


_MODEL_FLAGS = {"vllm": ("--model",), "llama.cpp": ("-m", "--model")}


def _flag_value(args: Sequence[str], flags: Sequence[str]) -> str | None:
    for index, arg in enumerate(args[:-1]):
        if arg in flags:
            return args[index + 1]
    return None


# --- chart values ------------------------------------------------------------------------------


def runtime_values(
    spec: RolloutSpec,
    *,
    pvc_name: str,
    subdir: str,
    openshift: bool,
    tolerations: Sequence[Mapping[str, Any]] = (),
    gpu_product: str | None = None,
) -> dict[str, Any]:
    """bud_runtime_container values for a RuntimePlan.

    Placement pins the pods to the plan's node by hostname; with ``gpu_product`` it selects
    any node with that GPU Feature Discovery product instead. The model directory of the
    PVC (``subdir``) is mounted where the plan's args expect it: the ``--model`` directory
    for vLLM, the GGUF file's directory for llama.cpp (as the hosts target does).
    """
    plan = spec.plan
    nodes = sorted({p.node_name for p in plan.placements})
    placement = {"hostname": "", "gpuProduct": ""}
    if gpu_product:
        placement["gpuProduct"] = gpu_product
    elif len(nodes) == 1:
        placement["hostname"] = nodes[0]
    in_container = _flag_value(plan.args, _MODEL_FLAGS[plan.engine])
    if in_container is None or not in_container.startswith("/"):
        raise KubernetesTargetError(
            "the plan's container args name no absolute model path (--model/-m): re-plan"
        )
    mount = str(Path(in_container).parent) if plan.engine == "llama.cpp" else in_container
    port = _flag_value(plan.args, ("--port",))
    return {
        "image": plan.image,
        "args": list(plan.args),
        "env": dict(plan.env),
        "resources": {k: dict(v) for k, v in plan.resources.items()},
        "replicas": plan.replicas,
        "port": int(port) if port and port.isdigit() else spec.port,
        "servedModelName": plan.served_model_name,
        "model": {"pvcName": pvc_name, "mountPath": mount, "subPath": subdir},
        "placement": placement,
        "tolerations": [dict(t) for t in tolerations],
        # TP workers talk through /dev/shm; single-device engines need little.
        "shmSizeMiB": 8192 if plan.tensor_parallel_size > 1 else 1024,
        "service": {"type": "ClusterIP", "port": spec.port},
        "openshift": openshift,
        "route": {"enabled": openshift, "host": ""},
    }


def transfer_values(
    *,
    image: str,
    model_name: str,
    source_uri: str,
    model_bytes: int,
    s3_secret: str,
    node_name: str | None,
    pvc_name: str,
) -> dict[str, Any]:
    return {
        "image": image,
        "modelName": _slug(model_name),
        "source": {"uri": source_uri, "s3Secret": {"name": s3_secret}},
        "modelBytes": model_bytes,
        "pvc": {"name": pvc_name},
        "nodeName": node_name or "",
    }


# --- node facts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeState(NodeHealth):
    """What the scheduler sees of a node; ``cluster-health`` records these."""

    allocatable: dict[str, str] = field(default_factory=dict)

    def notes(self) -> list[str]:
        lines = [
            f"kubernetes: ready={str(self.ready).lower()} "
            f"schedulable={str(self.schedulable).lower()}"
        ]
        if self.taints:
            lines.append("kubernetes: taints " + ", ".join(self.taints))
        if self.pressure:
            lines.append("kubernetes: conditions " + ", ".join(self.pressure))
        accel = {k: v for k, v in self.allocatable.items() if k in (GPU_RESOURCE, GAUDI_RESOURCE)}
        if accel:
            lines.append(
                "kubernetes: allocatable " + ", ".join(f"{k}={v}" for k, v in sorted(accel.items()))
            )
        return lines


def node_state(node: Mapping[str, Any]) -> NodeState:
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    taints = [
        f"{t.get('key')}{'=' + str(t['value']) if t.get('value') else ''}:{t.get('effect')}"
        for t in spec.get("taints") or []
    ]
    return NodeState(
        name=str(node["metadata"]["name"]),
        ready=conditions.get("Ready") == "True",
        schedulable=not spec.get("unschedulable", False),
        taints=taints,
        pressure=sorted(t for t, s in conditions.items() if t != "Ready" and s == "True"),
        allocatable={str(k): str(v) for k, v in (status.get("allocatable") or {}).items()},
    )


RUNTIME_SELECTOR = "app.kubernetes.io/name=bud-runtime"
SERVED_MODEL_ANNOTATION = "budcluster.io/served-model-name"
# What the scheduler counts against a node: every pod bound to it that has not ended.
_HOLDING_PODS = "spec.nodeName={node},status.phase!=Succeeded,status.phase!=Failed"


def is_accelerator(resource: str) -> bool:
    return resource in (GPU_RESOURCE, GAUDI_RESOURCE) or resource.startswith("nvidia.com/mig-")


def _container_requests(container: Mapping[str, Any]) -> dict[str, int]:
    resources = container.get("resources") or {}
    # Extended resources cannot be overcommitted: requests equal limits, and the API server
    # copies a limit into an absent request.
    merged = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
    return {
        str(k): int(str(v))
        for k, v in merged.items()
        if is_accelerator(str(k)) and str(v).isdigit()
    }


def pod_accelerator_requests(pod: Mapping[str, Any]) -> dict[str, int]:
    """The accelerators the scheduler counts for a pod: per resource, the larger of the sum
    over its containers (with restartable init containers, the sidecars that run beside them)
    and the largest ordinary init container."""
    spec = pod.get("spec") or {}
    inits = spec.get("initContainers") or []
    running = [
        *(spec.get("containers") or []),
        *(c for c in inits if c.get("restartPolicy") == "Always"),
    ]
    total: dict[str, int] = {}
    for container in running:
        for resource, count in _container_requests(container).items():
            total[resource] = total.get(resource, 0) + count
    for container in inits:
        if container.get("restartPolicy") != "Always":
            for resource, count in _container_requests(container).items():
                total[resource] = max(total.get(resource, 0), count)
    return total


def devices_in_use(
    pods: Sequence[Mapping[str, Any]], runtimes: Mapping[tuple[str, str], str]
) -> list[DevicesInUse]:
    """What the pods request, per resource and holder. A pod of a bud-serve-cluster runtime
    (``budcluster.io/release`` naming one of ``runtimes``, (namespace, release) -> served
    model name) is held by that served name; any other pod by no one in particular."""
    totals: dict[tuple[str, str | None], int] = {}
    for pod in pods:
        meta = pod.get("metadata") or {}
        release = (meta.get("labels") or {}).get(kube.RELEASE_LABEL)
        holder = runtimes.get((str(meta.get("namespace")), str(release))) if release else None
        for resource, count in pod_accelerator_requests(pod).items():
            if count:
                totals[(resource, holder)] = totals.get((resource, holder), 0) + count
    return [
        DevicesInUse(resource=resource, count=count, holder=holder)
        for (resource, holder), count in sorted(
            totals.items(), key=lambda i: (i[0][0], i[0][1] or "")
        )
    ]


def _in_use_note(in_use: Sequence[DevicesInUse]) -> str | None:
    if not in_use:
        return None
    parts = []
    for resource in sorted({e.resource for e in in_use}):
        entries = [e for e in in_use if e.resource == resource]
        held = ", ".join(f"{e.count} by runtime {e.holder!r}" for e in entries if e.holder)
        parts.append(f"{resource}={sum(e.count for e in entries)}" + (f" ({held})" if held else ""))
    return "kubernetes: requested by pods on this node: " + ", ".join(parts)


def reconcile_node(
    collector_json: str | None,
    node: Mapping[str, Any],
    state: NodeState,
    in_use: Sequence[DevicesInUse] = (),
) -> NodeInventory:
    """The collector's report, gaps filled from NFD/GFD labels, checked against allocatable,
    with what the node's pods already request (``in_use``, for the planner).

    GPUs the device plugin advertises beyond those the collector described are added from
    the GFD labels when they agree (``budcluster.hardware.advertised_gpus``); any other
    mismatch is only noted.
    """
    labels = {str(k): str(v) for k, v in (node["metadata"].get("labels") or {}).items()}
    fragments: list[dict[str, Any]] = []
    notes = state.notes()
    if collector_json:
        try:
            fragments.append(json.loads(collector_json))
        except ValueError:
            notes.append("kubernetes: the collector's ConfigMap is not JSON; labels only")
    else:
        notes.append("kubernetes: no collector report for this node; labels only")
    from_labels = parse_node_labels(labels, origin=f"node {state.name} labels")
    fragments.append(from_labels)
    merged = merge_fragments(*fragments)
    merged["node_name"] = state.name
    inventory = NodeInventory.from_fragment(merged)
    allocatable_gpus = _count(state.allocatable.get(GPU_RESOURCE))
    advertised = extend_to_advertised(
        inventory, labels, (from_labels.get("nvidia") or {}).get("gpus") or [], allocatable_gpus
    )
    inventory = advertised.inventory
    if advertised.note:
        notes.append(f"kubernetes: {advertised.note}")
    gpus = len(inventory.nvidia.gpus) if inventory.nvidia else 0
    migs = sum(len(g.mig_devices) for g in inventory.nvidia.gpus) if inventory.nvidia else 0
    if allocatable_gpus is not None and allocatable_gpus not in (gpus, migs):
        notes.append(
            f"kubernetes: allocatable {GPU_RESOURCE}={allocatable_gpus} but the node reports "
            f"{gpus} GPUs ({migs} MIG devices); the device plugin decides what pods can get"
        )
    cards = len(inventory.gaudi.devices) if inventory.gaudi else 0
    allocatable_cards = _count(state.allocatable.get(GAUDI_RESOURCE))
    if allocatable_cards is not None and allocatable_cards != cards:
        notes.append(
            f"kubernetes: allocatable {GAUDI_RESOURCE}={allocatable_cards} but the node "
            f"reports {cards} Gaudi cards"
        )
    note = _in_use_note(in_use)
    if note:
        notes.append(note)
    return inventory.model_copy(
        update={"notes": [*inventory.notes, *notes], "devices_in_use": list(in_use)}
    )


def _count(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


# --- runtime status ----------------------------------------------------------------------------


def rollout_complete(deployment: Mapping[str, Any]) -> bool:
    """True when the current spec is fully rolled out, as ``kubectl rollout status`` decides.

    ``readyReplicas`` alone is not enough: during an update the old ReplicaSet's pods stay
    ready, so the new revision counts only once the controller observed this generation,
    every replica is updated and ready, and no old replica is left.
    """
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    wanted = int(spec.get("replicas", 1) or 0)
    generation = int((deployment.get("metadata") or {}).get("generation", 0) or 0)
    observed = int(status.get("observedGeneration", 0) or 0)
    updated = int(status.get("updatedReplicas", 0) or 0)
    total = int(status.get("replicas", 0) or 0)
    available = int(status.get("availableReplicas", 0) or 0)
    ready = int(status.get("readyReplicas", 0) or 0)
    return (
        wanted > 0
        and observed >= generation
        and updated >= wanted
        and total <= updated
        and min(available, ready) >= wanted
    )


def _pod_failure(pod: Mapping[str, Any]) -> tuple[RuntimeState, str] | None:
    """A container's waiting/terminated reason: FAILED when the kubelet gave up retrying fast,
    STARTING with the reason while it still retries (ErrImagePull becomes ImagePullBackOff)."""
    name = pod["metadata"]["name"]
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        last = (container.get("lastState") or {}).get("terminated") or {}
        terminated = (container.get("state") or {}).get("terminated") or {}
        if "OOMKilled" in (last.get("reason"), terminated.get("reason")):
            return RuntimeState.FAILED, f"OOMKilled: pod {name} ran out of memory"
        reason = waiting.get("reason")
        message = waiting.get("message", "")
        if reason in _IMAGE_PULL_FINAL or reason in _CRASHING:
            return RuntimeState.FAILED, f"{reason}: pod {name}: {message}"
        if reason in _IMAGE_PULL_RETRYING:
            return RuntimeState.STARTING, f"{reason}: pod {name}: {message}"
    return None


def runtime_state(
    deployment: Mapping[str, Any] | None,
    pods: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
) -> tuple[RuntimeState, str | None]:
    """State and reason from a Deployment, its pods and their events."""
    if deployment is None:
        return RuntimeState.ABSENT, None
    wanted = int((deployment.get("spec") or {}).get("replicas", 1) or 0)
    ready = int((deployment.get("status") or {}).get("readyReplicas", 0) or 0)
    generation = int((deployment.get("metadata") or {}).get("generation", 0) or 0)
    observed = int((deployment.get("status") or {}).get("observedGeneration", 0) or 0)
    if observed < generation:
        # The controller has not acted on this spec yet: the pods are the previous one's.
        return RuntimeState.STARTING, "the Deployment controller has not observed this revision"
    retrying: str | None = None
    # Pods on their way out (an older revision's) say nothing about this one.
    pods = [p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")]
    for pod in pods:
        found = _pod_failure(pod)
        if found is not None and found[0] is RuntimeState.FAILED:
            return found
        if found is not None and retrying is None:
            retrying = found[1]
    if rollout_complete(deployment):
        return RuntimeState.RUNNING, None
    unscheduled = [
        e for e in events if e.get("reason") == "FailedScheduling" and e.get("type") == "Warning"
    ]
    pending = [p for p in pods if (p.get("status") or {}).get("phase") == "Pending"]
    if unscheduled and pending and not any(_scheduled(p) for p in pending):
        return RuntimeState.FAILED, f"FailedScheduling: {unscheduled[-1].get('message', '')}"
    for condition in (deployment.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Progressing" and (
            condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            return RuntimeState.FAILED, f"ProgressDeadlineExceeded: {condition.get('message', '')}"
    return RuntimeState.STARTING, retrying or f"{ready}/{wanted} replicas ready"


def _scheduled(pod: Mapping[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "PodScheduled" and c.get("status") == "True" for c in conditions)


# --- the target --------------------------------------------------------------------------------


@dataclass(frozen=True)
class KubernetesTimeouts:
    api_s: float = 30.0
    detect_s: float = 300.0
    transfer_s: float = 6 * 3600.0
    ready_s: float = 1800.0
    render_s: float = 60.0
    resync_s: float = 10.0
    """Longest a wait goes without re-reading state its watch does not cover."""
    endpoint_poll_s: float = 2.0
    """Pause between two endpoint checks through the Service while it does not serve yet."""


class KubernetesTarget:
    """``ClusterTarget`` over one API server (Kubernetes or OpenShift)."""

    def __init__(
        self,
        api_client: k8s_client.ApiClient,
        *,
        namespace_prefix: str = "bud",
        image: str = "ghcr.io/budecosystem/bud-serve-cluster:0.1.0",
        timeouts: KubernetesTimeouts | None = None,
        charts_dir: Path = CHARTS_DIR,
        tolerations: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        self._api = api_client
        self._prefix = namespace_prefix
        self._image = image
        self._timeouts = timeouts or KubernetesTimeouts()
        self._charts = charts_dir
        self._tolerations = list(tolerations)
        self._kind: str | None = None
        self.node_states: dict[str, NodeState] = {}
        """What the last ``detect_nodes``/``node_health`` saw, for the flow to record."""
        self.last_manifests: list[dict[str, Any]] = []
        """The objects the last ``roll_out`` applied: store them as the revision."""

    # -- helpers

    @property
    def system_namespace(self) -> str:
        return f"{self._prefix}-system"

    def _render(
        self, chart: str, values: Mapping[str, Any], release: str, namespace: str
    ) -> list[dict[str, Any]]:
        try:
            return helm.render_chart(
                self._charts / chart, values, release, namespace, timeout_s=self._timeouts.render_s
            )
        except helm.HelmError as exc:
            raise KubernetesTargetError(f"chart {chart}: {exc}") from exc

    def _ensure_namespace(self, namespace: str) -> None:
        kube.apply_objects(
            self._api,
            [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}],
            release=namespace,
            timeout_s=self._timeouts.api_s,
        )

    def _is_openshift(self) -> bool:
        if self._kind is None:
            self._kind = kube.platform_kind(
                kube.served_api_groups(self._api, timeout_s=self._timeouts.api_s)
            )
        return self._kind == "openshift"

    # -- ClusterTarget

    def verify_access(self) -> AccessReport:
        try:
            version = kube.server_version(self._api, timeout_s=self._timeouts.api_s)
            self._kind = kube.platform_kind(
                kube.served_api_groups(self._api, timeout_s=self._timeouts.api_s)
            )
            nodes, _ = kube.list_objects(self._api, "Node", None, timeout_s=self._timeouts.api_s)
        except kube.KubernetesError as exc:
            raise _wrap(exc, "verify access") from exc
        return AccessReport(
            kind=self._kind,
            nodes=sorted(n["metadata"]["name"] for n in nodes),
            server_version=version,
            server_url=str(self._api.configuration.host),
            detail=f"{self._kind} {version}, {len(nodes)} nodes",
        )

    def node_health(self) -> dict[str, NodeState]:
        """Readiness, schedulability, taints and pressure of every node (cluster-health)."""
        try:
            nodes, _ = kube.list_objects(self._api, "Node", None, timeout_s=self._timeouts.api_s)
        except kube.KubernetesError as exc:
            raise _wrap(exc, "list nodes") from exc
        self.node_states = {n["metadata"]["name"]: node_state(n) for n in nodes}
        return self.node_states

    def detect_nodes(self) -> list[NodeInventory]:
        namespace = self.system_namespace
        try:
            nodes, _ = kube.list_objects(self._api, "Node", None, timeout_s=self._timeouts.api_s)
            states = {n["metadata"]["name"]: node_state(n) for n in nodes}
            self.node_states = states
            self._ensure_namespace(namespace)
            objects = self._render(
                "node_info_collector", {"image": self._image}, COLLECTOR_RELEASE, namespace
            )
            kube.apply_objects(
                self._api, objects, COLLECTOR_RELEASE, timeout_s=self._timeouts.api_s
            )
            wanted = {f"{NODE_INFO_PREFIX}{name}" for name, s in states.items() if s.ready}

            def all_reported(maps: list[dict[str, Any]]) -> dict[str, str] | None:
                found = {
                    m["metadata"]["name"]: (m.get("data") or {}).get("inventory.json", "")
                    for m in maps
                }
                return found if wanted <= {k for k, v in found.items() if v} else None

            reports = kube.wait_for(
                self._api,
                "ConfigMap",
                namespace,
                all_reported,
                timeout_s=self._timeouts.detect_s,
                what=f"node-info ConfigMaps of {len(wanted)} ready nodes",
            )
        except kube.KubernetesError as exc:
            raise _wrap(exc, "detect nodes") from exc
        in_use, refused = self._devices_in_use([str(n["metadata"]["name"]) for n in nodes])
        inventories = []
        for node in sorted(nodes, key=lambda n: str(n["metadata"]["name"])):
            name = str(node["metadata"]["name"])
            inventory = reconcile_node(
                reports.get(f"{NODE_INFO_PREFIX}{name}"), node, states[name], in_use.get(name, ())
            )
            if refused:
                inventory = inventory.model_copy(update={"notes": [*inventory.notes, refused]})
            inventories.append(inventory)
        return inventories

    def _devices_in_use(
        self, nodes: Sequence[str]
    ) -> tuple[dict[str, list[DevicesInUse]], str | None]:
        """Per node, what its non-terminated pods request (``kubectl describe node``'s
        "Allocated resources"), and a note when the API server refuses to say."""
        try:
            deployments, _ = kube.list_objects(
                self._api,
                "Deployment",
                None,
                label_selector=RUNTIME_SELECTOR,
                timeout_s=self._timeouts.api_s,
            )
            runtimes = {
                (str(d["metadata"].get("namespace")), str(d["metadata"]["name"])): str(served)
                for d in deployments
                if (served := (d["metadata"].get("annotations") or {}).get(SERVED_MODEL_ANNOTATION))
            }
            found: dict[str, list[DevicesInUse]] = {}
            for node in nodes:
                pods, _ = kube.list_objects(
                    self._api,
                    "Pod",
                    None,
                    field_selector=_HOLDING_PODS.format(node=node),
                    timeout_s=self._timeouts.api_s,
                )
                found[node] = devices_in_use(pods, runtimes)
        except kube.KubernetesApiError as exc:
            if exc.status != 403:
                raise _wrap(exc, "list the pods on each node") from exc
            # Without the right to list pods the planner still works, on what the tools see.
            return {}, (
                f"kubernetes: devices other pods hold are not counted ({exc}); give the "
                "kubeconfig's user list on pods and deployments in all namespaces"
            )
        except kube.KubernetesError as exc:
            raise _wrap(exc, "list the pods on each node") from exc
        return found, None

    def stage_model(
        self,
        source: ModelSourceSpec,
        model_name: str,
        nodes: Sequence[str],
        progress: ProgressCallback | None = None,
    ) -> StagedModel:
        _check_model_name(model_name)
        if "://" not in source.uri or source.uri.startswith("file://"):
            raise KubernetesTargetError(
                f"model uri {source.uri!r} is a directory on the controller, which a pod "
                "cannot read; put the model in a bucket (s3://...) or a node's HF cache "
                "(hf://...) for a Kubernetes cluster"
            )
        namespace = namespace_for(self._prefix, model_name)
        release = model_release_for(model_name)
        pvc = f"{release}-model"
        started = time.monotonic()
        secret = self._source_secret(source, namespace, release)
        try:
            result, values = self._transfer(
                source, model_name, nodes, progress, namespace, release, secret
            )
        except BaseException:
            # The failure is what the caller needs to see; a Secret this cannot delete now
            # (API server gone) is swept by the next staging or rollback.
            with contextlib.suppress(kube.KubernetesError):
                self._remove_source_secret(namespace, secret)
            raise
        try:
            self._remove_source_secret(namespace, secret)
        except kube.KubernetesError as exc:
            raise _wrap(exc, f"delete the S3 key Secret of {model_name}'s transfer") from exc
        summary = result.get("result") or {}
        return StagedModel(
            model_name=model_name,
            path=pvc_path(namespace, pvc, values["modelName"]),
            nodes=list(nodes),
            files=int(summary.get("files", result.get("files_total", 0))),
            bytes=int(summary.get("bytes_total", result.get("bytes_total", 0))),
            bytes_copied=int(summary.get("bytes_copied", result.get("bytes_done", 0))),
            seconds=float(summary.get("seconds", time.monotonic() - started)),
            manifest_sha256=str(summary.get("manifest_sha256", "")),
        )

    def _transfer(
        self,
        source: ModelSourceSpec,
        model_name: str,
        nodes: Sequence[str],
        progress: ProgressCallback | None,
        namespace: str,
        release: str,
        secret: dict[str, Any] | None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run the transfer Job to its end: (its last progress payload, the chart values)."""
        pvc = f"{release}-model"
        job = f"{release}-transfer"
        try:
            self._ensure_namespace(namespace)
            extra = [secret] if secret else []
            values = transfer_values(
                image=self._image,
                model_name=model_name,
                source_uri=source.uri,
                model_bytes=_source_bytes(source),
                s3_secret=secret["metadata"]["name"] if secret else "",
                node_name=nodes[0] if len(nodes) == 1 else None,
                pvc_name=pvc,
            )
            objects = self._render("model_transfer", values, release, namespace)
            # A Job's pod template is immutable: a rerun replaces the Job, and the new pod
            # resumes from the files the PVC already holds.
            self._remove_job(namespace, job)
            kube.apply_objects(
                self._api, [*extra, *objects], release, timeout_s=self._timeouts.api_s
            )
            result = self._follow_transfer(namespace, job, progress)
        except kube.KubernetesError as exc:
            raise _wrap(exc, f"stage model {model_name}") from exc
        return result, values

    def _source_secret(
        self, source: ModelSourceSpec, namespace: str, release: str
    ) -> dict[str, Any] | None:
        if not source.credentials_env:
            return None
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{release}-source", "namespace": namespace},
            "type": "Opaque",
            "stringData": dict(source.credentials_env),
        }

    def _remove_source_secret(self, namespace: str, secret: Mapping[str, Any] | None) -> None:
        """The Job's pod read the keys when its container started; nothing needs them after."""
        if secret is not None:
            ref = kube.ObjectRef("Secret", str(secret["metadata"]["name"]), namespace)
            kube.delete_objects(self._api, [ref], timeout_s=self._timeouts.api_s)

    def _sweep_source_secrets(self, namespaces: set[str]) -> None:
        """Delete the S3 key Secrets a staging left behind (its worker was killed mid-transfer)."""
        for namespace in sorted(namespaces):
            items, _ = kube.list_objects(
                self._api, "Secret", namespace, timeout_s=self._timeouts.api_s
            )
            left = [
                kube.ObjectRef.of(item) for item in items if _is_source_secret(item["metadata"])
            ]
            kube.delete_objects(self._api, left, timeout_s=self._timeouts.api_s)

    def _remove_job(self, namespace: str, job: str) -> None:
        ref = kube.ObjectRef("Job", job, namespace)
        if kube.get_object(self._api, ref, timeout_s=self._timeouts.api_s) is None:
            return
        kube.delete_objects(self._api, [ref], timeout_s=self._timeouts.api_s)
        kube.wait_for(
            self._api,
            "Job",
            namespace,
            lambda jobs: True if not jobs else None,
            field_selector=f"metadata.name={job}",
            timeout_s=self._timeouts.api_s * 4,
            what=f"old Job {job} gone",
        )

    def _follow_transfer(
        self, namespace: str, job: str, progress: ProgressCallback | None
    ) -> dict[str, Any]:
        progress_map = f"{job}-progress"
        started = time.monotonic()

        def report(maps: list[dict[str, Any]]) -> None:
            payload = _progress_payload(maps)
            if progress is not None and payload:
                progress(
                    TransferProgress(
                        files_total=int(payload.get("files_total", 0) or 0),
                        files_done=int(payload.get("files_done", 0) or 0),
                        bytes_total=int(payload.get("bytes_total", 0) or 0),
                        bytes_done=int(payload.get("bytes_done", 0) or 0),
                        elapsed_s=time.monotonic() - started,
                    )
                )

        def finished(maps: list[dict[str, Any]]) -> dict[str, Any] | None:
            payload = _progress_payload(maps)
            if payload.get("state") == "done":
                return payload
            if payload.get("state") == "failed":
                raise KubernetesTargetError(
                    f"model transfer Job {job} failed: {payload.get('message', payload)}"
                )
            status = self._job_status(namespace, job)
            if status == "Failed":
                raise KubernetesTargetError(
                    f"model transfer Job {job} failed; see `kubectl -n {namespace} logs job/{job}`"
                )
            if status == "Complete" and payload:
                return payload
            return None

        return kube.wait_for(
            self._api,
            "ConfigMap",
            namespace,
            finished,
            field_selector=f"metadata.name={progress_map}",
            on_change=report,
            timeout_s=self._timeouts.transfer_s,
            what=f"model transfer Job {job}",
        )

    def _job_status(self, namespace: str, job: str) -> str | None:
        found = kube.get_object(
            self._api, kube.ObjectRef("Job", job, namespace), timeout_s=self._timeouts.api_s
        )
        for condition in ((found or {}).get("status") or {}).get("conditions") or []:
            if condition.get("status") == "True" and condition.get("type") in (
                "Complete",
                "Failed",
            ):
                return str(condition["type"])
        return None

    def apply_release(
        self, chart: str, values: Mapping[str, Any], release: str, namespace: str
    ) -> list[dict[str, Any]]:
        """Render ``chart`` with ``values`` as ``release`` in ``namespace`` (created when
        missing) and apply every object under the release label.

        Returns the applied objects as rendered, release label included; they are also
        ``last_manifests``. Keep them (store, artifact): they are what ``rollback`` and
        ``delete`` work from.
        """
        objects = self._render(chart, values, release, namespace)
        try:
            self._ensure_namespace(namespace)
            kube.apply_objects(self._api, objects, release, timeout_s=self._timeouts.api_s)
        except kube.KubernetesError as exc:
            raise _wrap(exc, f"apply {chart} as release {release} in {namespace}") from exc
        self.last_manifests = [kube.with_release_label(o, release) for o in objects]
        return list(self.last_manifests)

    def roll_out(self, spec: RolloutSpec) -> RuntimeStatus:
        namespace, claim, subdir = parse_pvc_path(spec.model_path)
        release = release_for(spec.deployment_name)
        try:
            values = runtime_values(
                spec,
                pvc_name=claim,
                subdir=subdir,
                openshift=self._is_openshift(),
                tolerations=self._tolerations,
            )
        except kube.KubernetesError as exc:
            raise _wrap(exc, f"roll out {spec.deployment_name}") from exc
        self.apply_release("bud_runtime_container", values, release, namespace)
        return RuntimeStatus(
            state=RuntimeState.STARTING,
            endpoint_url=f"http://{release}.{namespace}.svc:{spec.port}",
            detail={
                "namespace": namespace,
                "release": release,
                "manifests": yaml.safe_dump_all(self.last_manifests, sort_keys=True),
            },
        )

    def _find(self, deployment_name: str) -> tuple[str, dict[str, Any]] | None:
        release = release_for(deployment_name)
        items, _ = kube.list_objects(
            self._api,
            "Deployment",
            None,
            label_selector=f"{kube.RELEASE_LABEL}={release}",
            timeout_s=self._timeouts.api_s,
        )
        if not items:
            return None
        return str(items[0]["metadata"]["namespace"]), items[0]

    def status(self, deployment_name: str) -> RuntimeStatus:
        release = release_for(deployment_name)
        try:
            found = self._find(deployment_name)
            if found is None:
                return RuntimeStatus(state=RuntimeState.ABSENT)
            namespace, deployment = found
            return self._status_in(namespace, release, deployment)
        except kube.KubernetesError as exc:
            raise _wrap(exc, f"status of {deployment_name}") from exc

    def _status_in(
        self, namespace: str, release: str, deployment: Mapping[str, Any]
    ) -> RuntimeStatus:
        pods, _ = kube.list_objects(
            self._api,
            "Pod",
            namespace,
            label_selector=f"app.kubernetes.io/instance={release}",
            timeout_s=self._timeouts.api_s,
        )
        events: list[dict[str, Any]] = []
        for pod in pods:
            events.extend(
                kube.events_for(
                    self._api,
                    namespace,
                    kind="Pod",
                    name=pod["metadata"]["name"],
                    timeout_s=self._timeouts.api_s,
                )
            )
        state, reason = runtime_state(deployment, pods, events)
        log_tail: list[str] = []
        if pods and state is not RuntimeState.RUNNING:
            log_tail = kube.pod_log_tail(
                self._api, namespace, pods[0]["metadata"]["name"], timeout_s=self._timeouts.api_s
            )
        port = ((deployment.get("spec") or {}).get("template") or {}).get("spec", {})
        container_ports = [
            p.get("containerPort") for c in port.get("containers", []) for p in c.get("ports", [])
        ]
        url_port = container_ports[0] if container_ports else 8000
        return RuntimeStatus(
            state=state,
            endpoint_url=f"http://{release}.{namespace}.svc:{url_port}",
            reason=reason,
            log_tail=log_tail,
            detail={"namespace": namespace, "release": release, "pods": str(len(pods))},
        )

    def wait_until_settled(
        self, deployment_name: str, timeout_s: float | None = None
    ) -> RuntimeStatus:
        """Watch the release's pods until it runs or fails (a reason is known) or time runs out."""
        try:
            found = self._find(deployment_name)
        except kube.KubernetesError as exc:
            raise _wrap(exc, f"wait for {deployment_name}") from exc
        if found is None:
            return RuntimeStatus(state=RuntimeState.ABSENT)
        return self.wait_for_release(
            found[0], release_for(deployment_name), timeout_s, what=f"deployment {deployment_name}"
        )

    def release_deployment(self, namespace: str, release: str) -> dict[str, Any] | None:
        """The release's Deployment as the API server has it now, or None."""
        try:
            items, _ = kube.list_objects(
                self._api,
                "Deployment",
                namespace,
                label_selector=f"{kube.RELEASE_LABEL}={release}",
                timeout_s=self._timeouts.api_s,
            )
        except kube.KubernetesNotFound:
            return None  # the namespace does not exist (yet)
        except kube.KubernetesError as exc:
            raise _wrap(exc, f"find the Deployment of release {release}") from exc
        return items[0] if items else None

    def release_status(self, namespace: str, release: str) -> RuntimeStatus:
        """State, reason and log tail of the release's Deployment (any chart's)."""
        deployment = self.release_deployment(namespace, release)
        if deployment is None:
            return RuntimeStatus(state=RuntimeState.ABSENT)
        try:
            return self._status_in(namespace, release, deployment)
        except kube.KubernetesError as exc:
            raise _wrap(exc, f"status of release {release}") from exc

    def wait_for_release(
        self, namespace: str, release: str, timeout_s: float | None = None, *, what: str = ""
    ) -> RuntimeStatus:
        """Watch the release's pods until its Deployment runs or fails or time runs out.

        RUNNING means the rollout is complete (``rollout_complete``); FAILED carries the
        reason from the pods and their events. Raises KubernetesTargetTemporary when
        ``timeout_s`` (default ``KubernetesTimeouts.ready_s``) passes first.
        """
        what = what or f"release {release}"

        def settled(_pods: list[dict[str, Any]]) -> RuntimeStatus | None:
            current = self.release_deployment(namespace, release)
            if current is None:
                return RuntimeStatus(state=RuntimeState.ABSENT)
            status = self._status_in(namespace, release, current)
            return status if status.state is not RuntimeState.STARTING else None

        try:
            return kube.wait_for(
                self._api,
                "Pod",
                namespace,
                settled,
                label_selector=f"app.kubernetes.io/instance={release}",
                timeout_s=timeout_s or self._timeouts.ready_s,
                what=f"{what} ready",
                resync_s=self._timeouts.resync_s,
            )
        except kube.KubernetesError as exc:
            raise _wrap(exc, f"wait for {what}") from exc

    def verify_endpoint(
        self, deployment_name: str, served_model_name: str, timeout_s: float
    ) -> EndpointCheck:
        """Wait until the rollout is complete, then prove the Service serves the model.

        The checks go through the API server's service proxy with this target's client and
        credentials (``services/<release>:<port>/proxy/...``), so they need no network path
        from here to the pods: ``/health`` answers 200, ``/v1/models`` lists
        ``served_model_name``, and a completion of 8 tokens returns tokens. A Service that
        does not answer yet is asked again every ``endpoint_poll_s`` until ``timeout_s``.

        Raises KubernetesRuntimeFailed (reason and log tail) when the pods fail, before or
        during the checks; EndpointWrongModel when another name is served; EndpointNotReady
        when time runs out.
        """
        started = time.monotonic()
        deadline = started + timeout_s
        try:
            settled = self.wait_until_settled(deployment_name, timeout_s)
        except KubernetesTargetTemporary as exc:
            raise EndpointNotReady(
                f"{deployment_name} did not become ready within {timeout_s:.0f} s: {exc}"
            ) from exc
        _raise_unless_serving(deployment_name, settled)
        namespace, release = settled.detail["namespace"], settled.detail["release"]
        try:
            port = self._service_port(namespace, release)
        except kube.KubernetesError as exc:
            raise _wrap(exc, f"find the Service of {deployment_name}") from exc
        probe = _ServiceProbe(self._api, namespace, release, port)
        while True:
            left = deadline - time.monotonic()
            try:
                served, tokens, text = probe.check(
                    served_model_name, max(1.0, min(self._timeouts.api_s, left))
                )
            except EndpointNotReady as exc:
                if left <= 0:
                    raise EndpointNotReady(
                        f"{deployment_name} did not serve through its Service within "
                        f"{timeout_s:.0f} s: {exc}"
                    ) from exc
            else:
                return EndpointCheck(
                    base_url=probe.base_url,
                    served_models=served,
                    completion_tokens=tokens,
                    completion_text=text,
                    seconds_waited=time.monotonic() - started,
                )
            # A runtime that dies while the checks wait fails now, with its reason.
            _raise_unless_serving(deployment_name, self.status(deployment_name), starting=True)
            time.sleep(max(0.0, min(self._timeouts.endpoint_poll_s, deadline - time.monotonic())))

    def verify_gateway(
        self,
        namespace: str,
        release: str,
        routes: Sequence[GatewayRoute],
        timeout_s: float,
        *,
        master_key_secret: str | None = None,
    ) -> GatewayCheck:
        """Wait until the gateway's rollout is complete, then prove it routes through its
        Service (the API server's service proxy, as ``verify_endpoint``):
        ``/health/liveliness`` answers 200, ``/v1/models`` lists every routed model, and a
        one-token completion of each routed model returns, so every ``api_base`` reaches
        its runtime.

        With ``master_key_secret`` (a Secret in ``namespace``, key ``master-key``, as the
        chart reads it) the key is read from the Secret once the rollout is done;
        ``/v1/models`` must first refuse a request without it (401, ``key_enforced``), then
        the routes are called with it in ``x-litellm-api-key`` (the API server's proxy
        consumes ``Authorization``). The key is never logged nor returned, and error
        messages never contain it. Raises KubernetesRuntimeFailed when the gateway's pods
        fail (a missing Secret is their CreateContainerConfigError); KubernetesTargetError
        when the key is refused; EndpointNotReady when the checks do not pass within
        ``timeout_s``.
        """
        started = time.monotonic()
        deadline = started + timeout_s
        what = f"gateway {release} in {namespace}"
        try:
            settled = self.wait_for_release(namespace, release, timeout_s, what=what)
        except KubernetesTargetTemporary as exc:
            raise EndpointNotReady(
                f"{what} did not become ready within {timeout_s:.0f} s: {exc}"
            ) from exc
        _raise_unless_serving(what, settled)
        try:
            port = self._service_port(namespace, release)
        except kube.KubernetesError as exc:
            raise _wrap(exc, f"find the Service of {what}") from exc
        key = self._gateway_key(namespace, master_key_secret, what) if master_key_secret else None
        probe = _ServiceProbe(self._api, namespace, release, port)
        while True:
            left = deadline - time.monotonic()
            try:
                check = probe.gateway_check(routes, key, max(1.0, min(self._timeouts.api_s, left)))
            except EndpointNotReady as exc:
                if left <= 0:
                    raise EndpointNotReady(
                        f"{what} did not route through its Service within {timeout_s:.0f} s: {exc}"
                    ) from exc
            else:
                return replace(check, seconds_waited=time.monotonic() - started)
            _raise_unless_serving(what, self.release_status(namespace, release), starting=True)
            time.sleep(max(0.0, min(self._timeouts.endpoint_poll_s, deadline - time.monotonic())))

    def _gateway_key(self, namespace: str, secret: str, what: str) -> str:
        try:
            return kube.secret_value(
                self._api, namespace, secret, MASTER_KEY_SECRET_KEY, timeout_s=self._timeouts.api_s
            )
        except kube.KubernetesError as exc:
            raise _wrap(
                exc,
                f"read the master key of {what} (the kubeconfig's user needs get on secrets "
                f"in {namespace})",
            ) from exc

    def _service_port(self, namespace: str, release: str) -> str:
        """The release's Service port to proxy to: its name, else its number."""
        service = kube.get_object(
            self._api, kube.ObjectRef("Service", release, namespace), timeout_s=self._timeouts.api_s
        )
        ports = ((service or {}).get("spec") or {}).get("ports") or []
        if not ports:
            raise KubernetesTargetError(
                f"release {release} has no Service with a port in {namespace}; "
                "roll it out again (the bud_runtime_container chart creates one)"
            )
        return str(ports[0].get("name") or ports[0]["port"])

    def delete(self, deployment_name: str) -> None:
        release = release_for(deployment_name)
        try:
            found = self._find(deployment_name)
            namespaces = {found[0]} if found else set()
            if self.last_manifests:
                namespaces.update(
                    str(o["metadata"].get("namespace"))
                    for o in self.last_manifests
                    if o["metadata"].get("labels", {}).get(kube.RELEASE_LABEL) == release
                )
            for namespace in sorted(namespaces):
                refs = kube.list_release(
                    self._api, release, namespace, timeout_s=self._timeouts.api_s
                )
                kube.delete_objects(self._api, refs, timeout_s=self._timeouts.api_s)
        except kube.KubernetesError as exc:
            raise _wrap(exc, f"delete {deployment_name}") from exc

    def undo_rollout(
        self, deployment_name: str, previous: Sequence[Mapping[str, Any]] | None
    ) -> RuntimeStatus:
        """What a failed or timed-out rollout ends with: back to the previous revision's
        manifests, or, when this was the first revision, delete what the rollout created.
        Either way, S3 key Secrets an interrupted staging left in its namespace go too."""
        release = release_for(deployment_name)
        try:
            found = self._find(deployment_name)
        except kube.KubernetesError as exc:
            raise _wrap(exc, f"undo the rollout of {deployment_name}") from exc
        namespaces = {found[0]} if found else set()
        for manifest in [*(previous or ()), *self.last_manifests]:
            meta = manifest.get("metadata") or {}
            if meta.get("namespace") and (
                previous or (meta.get("labels") or {}).get(kube.RELEASE_LABEL) == release
            ):
                namespaces.add(str(meta["namespace"]))
        if previous:
            status = self.rollback(deployment_name, previous)
        else:
            self.delete(deployment_name)
            status = self.status(deployment_name)
        try:
            self._sweep_source_secrets(namespaces)
        except kube.KubernetesError as exc:
            raise _wrap(exc, f"remove leftover S3 key Secrets of {deployment_name}") from exc
        return status

    def rollback(
        self, deployment_name: str, manifests: Sequence[Mapping[str, Any]]
    ) -> RuntimeStatus:
        """Re-apply a stored revision's objects and delete the release's objects it lacks."""
        release = release_for(deployment_name)
        try:
            wanted = {kube.ObjectRef.of(o) for o in manifests}
            namespaces = {r.namespace for r in wanted if r.namespace}
            for namespace in sorted(namespaces):
                current = kube.list_release(
                    self._api, release, namespace, timeout_s=self._timeouts.api_s
                )
                kube.delete_objects(
                    self._api,
                    [r for r in current if r not in wanted],
                    timeout_s=self._timeouts.api_s,
                )
            kube.apply_objects(self._api, list(manifests), release, timeout_s=self._timeouts.api_s)
        except kube.KubernetesError as exc:
            raise _wrap(exc, f"roll back {deployment_name}") from exc
        self.last_manifests = [kube.with_release_label(o, release) for o in manifests]
        return self.status(deployment_name)


def _check_model_name(model_name: str) -> None:
    """The same rule as the hosts target: the name also labels objects and reaches the Job."""
    check_safe_name(model_name, "model_name", KubernetesTargetConfigError)


def _is_source_secret(meta: Mapping[str, Any]) -> bool:
    """A Secret ``stage_model`` made: ``<model release>-source``, labelled with that release."""
    release = (meta.get("labels") or {}).get(kube.RELEASE_LABEL, "")
    return (
        bool(release) and release.startswith("model-") and meta.get("name") == f"{release}-source"
    )


def _raise_unless_serving(name: str, status: RuntimeStatus, *, starting: bool = False) -> None:
    """Raise when the runtime cannot serve: failed (with its reason and log tail) or absent."""
    if status.state is RuntimeState.FAILED:
        tail = "\n".join(status.log_tail[-20:])
        raise KubernetesRuntimeFailed(
            f"{name} failed: {status.reason or 'no reason given'}"
            + (f"; last log lines:\n{tail}" if tail else ""),
            status.reason,
            status.log_tail,
        )
    if status.state is RuntimeState.ABSENT:
        raise KubernetesTargetError(f"{name} is not deployed; roll it out before verifying it")
    if status.state is RuntimeState.STARTING and not starting:
        raise EndpointNotReady(f"{name} is still starting: {status.reason}")


class _ServiceProbe:
    """The three endpoint checks, sent through the API server's proxy to one Service port."""

    def __init__(self, api: k8s_client.ApiClient, namespace: str, service: str, port: str) -> None:
        self._api = api
        self._namespace = namespace
        self._service = service
        self._port = port
        host = str(api.configuration.host).rstrip("/")
        self.base_url = host + kube.service_proxy_path(namespace, service, port).rstrip("/")

    def _call(
        self,
        method: str,
        path: str,
        timeout_s: float,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> kube.ProxyResponse:
        try:
            answer = kube.service_proxy(
                self._api,
                self._namespace,
                self._service,
                self._port,
                path,
                method=method,
                body=body,
                headers=headers,
                timeout_s=timeout_s,
            )
        except kube.KubernetesError as exc:
            if isinstance(exc, TemporaryError):
                raise EndpointNotReady(f"{method} {path}: {exc}") from exc
            raise _wrap(exc, f"{method} {path} through the service proxy") from exc
        refused = answer.api_status()
        if refused is not None and answer.status in (401, 403):
            # The API server's own refusal: no retry helps without RBAC on services/proxy.
            raise KubernetesTargetError(
                f"the API server refused {method} {path} through the service proxy "
                f"({answer.status}: {answer.excerpt()}); the kubeconfig's user needs "
                f"get and create on services/proxy in namespace {self._namespace}"
            )
        return answer

    def check(self, served_model_name: str, timeout_s: float) -> tuple[list[str], int, str]:
        """(served names, completion tokens, completion text); raises when a check fails."""
        where = f"{self._namespace}/{self._service}:{self._port}"
        health = self._call("GET", "health", timeout_s)
        if health.status != 200:
            raise EndpointNotReady(f"{where} /health answered {health.status}: {health.excerpt()}")
        models = self._call("GET", "v1/models", timeout_s)
        listing = models.json() if models.status == 200 else None
        if not isinstance(listing, dict):
            raise EndpointNotReady(
                f"{where} /v1/models answered {models.status}: {models.excerpt()}"
            )
        served = [str(m.get("id")) for m in listing.get("data") or [] if isinstance(m, dict)]
        if served_model_name not in served:
            raise EndpointWrongModel(
                f"{where} serves {served or 'no models'}, not {served_model_name!r}; check "
                "--served-model-name (vLLM) or --alias (llama.cpp) in the plan"
            )
        completion = self._call(
            "POST",
            "v1/completions",
            timeout_s,
            {"model": served_model_name, "prompt": "Hello", "max_tokens": 8},
        )
        answer = completion.json() if completion.status == 200 else None
        if not isinstance(answer, dict):
            raise EndpointNotReady(
                f"{where} /v1/completions answered {completion.status}: {completion.excerpt()}"
            )
        choices = answer.get("choices") or [{}]
        text = str((choices[0] or {}).get("text", ""))
        tokens = int((answer.get("usage") or {}).get("completion_tokens") or 0)
        if tokens < 1 and not text:
            raise EndpointNotReady(f"{where} answered a completion with no tokens: {answer!r:.200}")
        return served, tokens, text

    def gateway_check(
        self, routes: Sequence[GatewayRoute], master_key: str | None, timeout_s: float
    ) -> GatewayCheck:
        """One pass of the gateway checks; raises EndpointNotReady when one fails. With
        ``master_key``, a request without it must be refused before the routes are called
        with it; no message carries the key."""
        where = f"{self._namespace}/{self._service}:{self._port}"

        def shown(answer: kube.ProxyResponse) -> str:
            text = answer.excerpt()
            return text.replace(master_key, "***") if master_key else text

        alive = self._call("GET", "health/liveliness", timeout_s)
        if alive.status != 200:
            raise EndpointNotReady(
                f"{where} /health/liveliness answered {alive.status}: {shown(alive)}"
            )
        models = self._call("GET", "v1/models", timeout_s)
        keyed: dict[str, str] = {}
        if master_key is not None:
            if models.status != 401:
                raise EndpointNotReady(
                    f"{where} /v1/models answered {models.status} without a key, not 401: the "
                    f"proxy does not enforce the master key (yet); {shown(models)}"
                )
            keyed = {MASTER_KEY_HEADER: f"Bearer {master_key}"}
            models = self._call("GET", "v1/models", timeout_s, headers=keyed)
            if models.status in (400, 401, 403):
                raise KubernetesTargetError(
                    f"{where} refused the master key from its Secret ({models.status}: "
                    f"{shown(models)}): the proxy read another key when it started; restart "
                    f"it (kubectl -n {self._namespace} rollout restart deployment/"
                    f"{self._service}) so it reads the Secret again"
                )
        elif models.status == 401:
            raise KubernetesTargetError(
                f"{where} asks for a key, but no master key Secret was given; name it in "
                "master_key_secret"
            )
        listing = models.json() if models.status == 200 else None
        if not isinstance(listing, dict):
            raise EndpointNotReady(f"{where} /v1/models answered {models.status}: {shown(models)}")
        missing = missing_routes(listing, routes)
        if missing:
            raise EndpointNotReady(
                f"{where} /v1/models lists {listed_models(listing)}, not {missing}"
            )
        tokens: dict[str, int] = {}
        for name in sorted({r.model_name for r in routes}):
            answer = self._call(
                "POST",
                "v1/completions",
                timeout_s,
                {"model": name, "prompt": "Hello", "max_tokens": 1},
                headers=keyed,
            )
            body = answer.json() if answer.status == 200 else None
            if not isinstance(body, dict) or not body.get("choices"):
                raise EndpointNotReady(
                    f"{where} could not complete with {name!r}: {answer.status} {shown(answer)}"
                )
            tokens[name] = int((body.get("usage") or {}).get("completion_tokens") or 0)
        return GatewayCheck(
            self.base_url, listed_models(listing), tokens, key_enforced=master_key is not None
        )


def _progress_payload(maps: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    for config_map in maps:
        data = config_map.get("data") or {}
        for value in data.values():
            try:
                payload = json.loads(value)
            except (TypeError, ValueError):
                continue
            if isinstance(payload, dict):
                return payload
    return {}


def _source_bytes(source: ModelSourceSpec) -> int:
    """The source's total size when the controller can list it (S3 can); else 0 (floor size)."""
    if not source.uri.startswith("s3://"):
        return 0
    try:
        from budcluster.transfer.uri import parse_source

        return sum(f.size for f in parse_source(source.uri, source.credentials_env).list_files())
    except (BudClusterError, OSError):
        return 0


def _wrap(exc: BudClusterError, what: str) -> KubernetesTargetError:
    if isinstance(exc, TemporaryError):
        return KubernetesTargetTemporary(f"{what}: {exc}")
    return KubernetesTargetError(f"{what}: {exc}")
