"""The cluster-target interface and the values that cross it."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from budcluster.autoscaling import AutoscalingSpec
from budcluster.endpoints import EndpointCheck
from budcluster.errors import BudClusterError, PermanentError
from budcluster.hardware.inventory import NodeInventory
from budcluster.planning.models import RuntimePlan
from budcluster.transfer.progress import ProgressCallback as ProgressCallback
from budcluster.transfer.progress import TransferProgress as TransferProgress
from budcluster.transfer.staged import StagedModel as StagedModel

# Model and deployment names become file, unit, container and Kubernetes object names.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def check_safe_name(value: str, field_name: str, error: type[BudClusterError]) -> str:
    """``value`` if it is a plain name; else ``error`` naming the field and the rule."""
    if not _SAFE_NAME.match(value):
        raise error(
            f"{field_name} {value!r} is not a safe name: use 1-63 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit"
        )
    return value


class TargetError(BudClusterError):
    """Base class for failures reported by a cluster target."""


class RuntimeFailed(TargetError, PermanentError):
    """The runtime died or never came up; the message carries its last log lines."""

    @classmethod
    def from_status(cls, deployment_name: str, status: RuntimeStatus) -> RuntimeFailed:
        tail = "\n".join(status.log_tail[-20:]) or "(no log output)"
        reason = status.reason or f"runtime is {status.state.value}"
        return cls(f"{deployment_name}: {reason}\nlast log lines:\n{tail}")


@dataclass(frozen=True)
class AccessReport:
    """What ``verify_access`` found."""

    kind: str
    """"hosts", "kubernetes" or "openshift"."""
    nodes: list[str]
    server_version: str | None = None
    server_url: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class ModelSourceSpec:
    """Where a model comes from.

    ``uri`` is a local directory (``/models/x`` or ``file:///models/x``), an S3 prefix
    (``s3://bucket/prefix``), or a Hugging Face cache entry (``hf://org/name[@revision]``,
    read from the local HF cache, never from the hub). ``credentials_env`` holds the
    in-memory variables a source needs (S3 keys, endpoint); it is never logged or stored.
    """

    uri: str
    credentials_env: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class PodScheduling:
    """Where a Kubernetes target's pods may go: the deploy form's tolerations (as a pod spec
    holds them) and node selector, for the runtime and for the transfer Jobs of the model and
    of its LoRA adapters alike, so staging lands on the same tainted pool. Hosts have no
    scheduler and refuse both."""

    tolerations: tuple[Mapping[str, Any], ...] = ()
    node_selector: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RolloutSpec:
    deployment_name: str
    plan: RuntimePlan
    model_path: str
    """Where ``stage_model`` put the model on the node(s)."""
    port: int = 8000
    autoscaling: AutoscalingSpec | None = None
    """Scale between min and max replicas on a runtime metric (Kubernetes only)."""
    adapter_paths: Mapping[str, str] = field(default_factory=dict)
    """Where ``stage_model`` put each LoRA adapter of the plan, by adapter name."""
    scheduling: PodScheduling = field(default_factory=PodScheduling)
    """Tolerations and node selector of the runtime's pods (Kubernetes only)."""


@dataclass(frozen=True)
class NodeHealth:
    """What a health check saw of one node."""

    name: str
    ready: bool
    schedulable: bool
    taints: list[str]
    """``key[=value]:Effect``; empty where the platform has none (hosts)."""
    pressure: list[str]
    """Conditions other than Ready that are true (MemoryPressure, DiskPressure, ...)."""


class RuntimeState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    FAILED = "failed"
    ABSENT = "absent"


@dataclass(frozen=True)
class RuntimeStatus:
    state: RuntimeState
    endpoint_url: str | None = None
    """Base URL of the OpenAI-compatible server, e.g. http://10.0.0.5:8000."""
    reason: str | None = None
    log_tail: list[str] = field(default_factory=list)
    detail: dict[str, str] = field(default_factory=dict)
    """Backend facts: pid, unit name, container id, revision, ..."""


@runtime_checkable
class ClusterTarget(Protocol):
    """One kind of cluster. Every method has its own timeout and raises TargetError."""

    def verify_access(self) -> AccessReport: ...

    def detect_nodes(self) -> list[NodeInventory]: ...

    def node_health(self) -> Mapping[str, NodeHealth]:
        """Readiness, schedulability, taints and pressure of every node that answered."""
        ...

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
        """Copy and verify the model on ``nodes``; ``scheduling`` places a Kubernetes
        transfer Job (hosts are refused it before this is called); ``adapter_sources`` are
        the LoRA adapters ``stage_adapter`` will put beside it (a target that sizes a
        volume counts them)."""
        ...

    def stage_adapter(
        self,
        source: ModelSourceSpec,
        adapter_dir: str,
        model_name: str,
        nodes: Sequence[str],
        progress: ProgressCallback | None = None,
        scheduling: PodScheduling | None = None,
    ) -> StagedModel:
        """Copy a LoRA adapter beside ``model_name`` (staged first) under ``adapter_dir``,
        where the runtime serving the model can read it; ``scheduling`` is the model's, so
        a Kubernetes adapter Job lands on the pool holding the model's volume."""
        ...

    def roll_out(self, spec: RolloutSpec) -> RuntimeStatus:
        """Start (or update) the runtime; returns without waiting for health."""
        ...

    def status(self, deployment_name: str) -> RuntimeStatus: ...

    def verify_endpoint(
        self, deployment_name: str, served_model_name: str, timeout_s: float
    ) -> EndpointCheck:
        """Wait until the runtime is ready, then prove it serves: ``/health`` answers,
        ``/v1/models`` lists ``served_model_name``, a real completion returns tokens.

        Raises EndpointNotReady or EndpointWrongModel, or the target's error with the
        runtime's reason and last log lines when it failed.
        """
        ...

    def undo_rollout(
        self, deployment_name: str, previous: Sequence[Mapping[str, Any]] | None
    ) -> RuntimeStatus:
        """After a failed rollout: put back the previous revision's objects (as
        ``RuntimeStatus.detail["manifests"]`` of that rollout held them), or remove what
        the rollout created when there is no previous revision."""
        ...

    def delete(self, deployment_name: str) -> None:
        """Remove everything ``roll_out`` created; deleting what is absent is not an error."""
        ...
