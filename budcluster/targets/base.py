"""The cluster-target interface and the values that cross it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from budcluster.errors import BudClusterError
from budcluster.hardware.inventory import NodeInventory
from budcluster.planning.models import RuntimePlan


class TargetError(BudClusterError):
    """Base class for failures reported by a cluster target."""


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
class TransferProgress:
    files_total: int
    files_done: int
    bytes_total: int
    bytes_done: int
    elapsed_s: float

    @property
    def fraction(self) -> float:
        return self.bytes_done / self.bytes_total if self.bytes_total else 1.0


ProgressCallback = Callable[[TransferProgress], None]


@dataclass(frozen=True)
class StagedModel:
    """A model verified in place on every target node."""

    model_name: str
    path: str
    """Directory of the model on each node (the same on all of them)."""
    nodes: list[str]
    files: int
    bytes: int
    bytes_copied: int
    """What this run actually moved; less than ``bytes`` when it resumed."""
    seconds: float
    manifest_sha256: str
    """SHA-256 of the manifest (every file's path, size and sha256)."""
    manifest: list[dict[str, object]] = field(default_factory=list)
    """The verified files: ``{"path", "size", "sha256"}`` each, as the transfer wrote them."""


@dataclass(frozen=True)
class RolloutSpec:
    deployment_name: str
    plan: RuntimePlan
    model_path: str
    """Where ``stage_model`` put the model on the node(s)."""
    port: int = 8000


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

    def stage_model(
        self,
        source: ModelSourceSpec,
        model_name: str,
        nodes: Sequence[str],
        progress: ProgressCallback | None = None,
    ) -> StagedModel: ...

    def roll_out(self, spec: RolloutSpec) -> RuntimeStatus:
        """Start (or update) the runtime; returns without waiting for health."""
        ...

    def status(self, deployment_name: str) -> RuntimeStatus: ...

    def delete(self, deployment_name: str) -> None:
        """Remove everything ``roll_out`` created; deleting what is absent is not an error."""
        ...
