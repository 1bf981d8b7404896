"""The store's tables as SQLAlchemy 2 typed declarative models.

The initial Alembic migration creates exactly these tables; a test compares the two.
Enumerated columns are VARCHAR with a CHECK constraint (not native Postgres enums) so the
same migration runs on SQLite and adding a value later is an ordinary migration.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Double,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from budcluster.lifecycle import DeploymentStatus
from budcluster.store.types import Float64Array, JsonDocument, UtcDateTime, utc_now

# Stable constraint names: Alembic needs them to alter or drop constraints later,
# and SQLite batch migrations cannot find unnamed ones.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UtcDateTime(),
        dict[str, Any]: JsonDocument,
        list[Any]: JsonDocument,
        float: Double(),
    }


class ClusterKind(StrEnum):
    KUBERNETES = "kubernetes"
    OPENSHIFT = "openshift"
    HOSTS = "hosts"


class ClusterProvider(StrEnum):
    ONPREM = "onprem"
    EKS = "eks"
    AKS = "aks"


class ClusterStatus(StrEnum):
    REGISTERING = "registering"
    AVAILABLE = "available"
    UNAVAILABLE = "unavailable"
    DELETING = "deleting"
    DELETED = "deleted"


class AcceleratorKind(StrEnum):
    """The device family a node computes on, named as PyTorch names devices."""

    CPU = "cpu"
    CUDA = "cuda"
    HPU = "hpu"


class ModelFormat(StrEnum):
    HF_SAFETENSORS = "hf-safetensors"
    GGUF = "gguf"


class AdapterFormat(StrEnum):
    """How a LoRA adapter is stored: llama.cpp's GGUF, or a Hugging Face PEFT directory."""

    GGUF = "gguf"
    PEFT = "peft"


class TransferStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RolloutAttemptState(StrEnum):
    STARTED = "started"
    FINISHED = "finished"
    UNDONE = "undone"
    UNDO_FAILED = "undo_failed"


def _enum_column_type(enum_class: type[StrEnum], name: str) -> Enum:
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        validate_strings=True,
        values_callable=lambda members: [member.value for member in members],
    )


class _Timestamps:
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)


class Cluster(_Timestamps, Base):
    __tablename__ = "clusters"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(253), unique=True)
    kind: Mapped[ClusterKind] = mapped_column(_enum_column_type(ClusterKind, "cluster_kind"))
    provider: Mapped[ClusterProvider] = mapped_column(
        _enum_column_type(ClusterProvider, "cluster_provider")
    )
    status: Mapped[ClusterStatus] = mapped_column(
        _enum_column_type(ClusterStatus, "cluster_status")
    )
    status_reason: Mapped[str | None] = mapped_column(Text)
    credentials_block: Mapped[str | None] = mapped_column(String(253))
    """Name of the Prefect block holding the cluster's (encrypted) credentials."""
    # Unique where set: two registrations of the same API server would fight over it.
    # Both backends let many rows hold NULL under a unique constraint.
    server_url: Mapped[str | None] = mapped_column(String(2048), unique=True)
    platform_version: Mapped[str | None] = mapped_column(String(128))
    placement_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Bumped each time a placement claim on this cluster is released, so a planner can
    tell the claims released after its node detection began (budcluster/store/placement_claims.py)."""


class _HardwareColumns:
    """A node's hardware: the detector's full snapshot, plus typed columns to query on."""

    hardware: Mapped[dict[str, Any]]
    cpu_model: Mapped[str | None] = mapped_column(String(256))
    cpu_cores: Mapped[int | None]
    memory_bytes: Mapped[int | None] = mapped_column(BigInteger)
    accelerator_kind: Mapped[AcceleratorKind] = mapped_column(
        _enum_column_type(AcceleratorKind, "accelerator_kind")
    )
    accelerator_count: Mapped[int] = mapped_column(default=0)
    accelerator_model: Mapped[str | None] = mapped_column(String(256))
    accelerator_memory_bytes: Mapped[int | None] = mapped_column(BigInteger)
    """Memory of one accelerator."""
    schedulable: Mapped[bool] = mapped_column(Boolean)
    conditions: Mapped[dict[str, Any]]
    detected_at: Mapped[datetime]


class Node(_HardwareColumns, _Timestamps, Base):
    """A node's latest snapshot. Every snapshot is also kept in ``node_snapshots``."""

    __tablename__ = "nodes"
    __table_args__ = (UniqueConstraint("cluster_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(253))


class NodeSnapshot(_HardwareColumns, Base):
    __tablename__ = "node_snapshots"
    __table_args__ = (Index(None, "node_id", "detected_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))


class CatalogModel(_Timestamps, Base):
    """A model's weights as found at their source: what to copy and how to check it."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(512))
    source_uri: Mapped[str] = mapped_column(String(2048), unique=True)
    format: Mapped[ModelFormat] = mapped_column(_enum_column_type(ModelFormat, "model_format"))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    manifest: Mapped[list[Any]]
    """One entry per file: {"path": ..., "size": ..., "sha256": ...}."""
    config_facts: Mapped[dict[str, Any]]
    """Facts read from the model's config: architecture, parameters, dtype, context length."""


class LoraAdapter(_Timestamps, Base):
    """A LoRA adapter registered for a base model of the catalogue, under a name."""

    __tablename__ = "lora_adapters"
    __table_args__ = (UniqueConstraint("model_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    source_uri: Mapped[str] = mapped_column(String(2048))
    format: Mapped[AdapterFormat] = mapped_column(
        _enum_column_type(AdapterFormat, "adapter_format")
    )
    rank: Mapped[int | None]
    alpha: Mapped[float | None]


class Deployment(_Timestamps, Base):
    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("cluster_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # RESTRICT: a cluster or model cannot disappear under a live deployment record.
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="RESTRICT"))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(253))
    spec_hash: Mapped[str | None] = mapped_column(String(128))
    """Hash of the declarative spec; the catalogue redeploys when it changes."""
    plan: Mapped[dict[str, Any] | None]
    engine: Mapped[str | None] = mapped_column(String(64))
    image: Mapped[str | None] = mapped_column(String(1024))
    command: Mapped[list[Any] | None]
    """The argv that starts the engine (hosts clusters), as a JSON list."""
    endpoint_url: Mapped[str | None] = mapped_column(String(2048))
    status: Mapped[DeploymentStatus] = mapped_column(
        _enum_column_type(DeploymentStatus, "deployment_status")
    )
    status_reason: Mapped[str | None] = mapped_column(Text)


class DeploymentStatusChange(Base):
    __tablename__ = "deployment_status_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[DeploymentStatus | None] = mapped_column(
        _enum_column_type(DeploymentStatus, "from_status")
    )
    """None for the row that records the deployment's creation."""
    to_status: Mapped[DeploymentStatus] = mapped_column(
        _enum_column_type(DeploymentStatus, "to_status")
    )
    reason: Mapped[str | None] = mapped_column(Text)
    changed_at: Mapped[datetime] = mapped_column(default=utc_now)


class DeploymentRevision(Base):
    """The exact manifests applied for one rollout, so rollback and delete can replay them."""

    __tablename__ = "deployment_revisions"
    __table_args__ = (UniqueConstraint("deployment_id", "revision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    revision: Mapped[int] = mapped_column(Integer)
    manifests: Mapped[list[Any]]
    spec_hash: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class RolloutAttempt(Base):
    """One run's attempt to start a deployment's runtime, written before it starts.

    The intent outlives the process: a run killed between starting the runtime and
    recording it leaves a ``started`` row, and the next run (or reconcile) of the same
    deployment undoes what that row says was started.
    """

    __tablename__ = "rollout_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), index=True
    )
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    attempt_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    """Made by the run before it writes the row, so a rerun of the transaction whose
    commit answer was lost finds the row instead of adding a second ``started`` one."""
    spec_hash: Mapped[str | None] = mapped_column(String(128))
    # The manifests to go back to (None: the first rollout, undo removes the runtime).
    previous_manifests: Mapped[list[Any] | None]
    state: Mapped[RolloutAttemptState] = mapped_column(
        _enum_column_type(RolloutAttemptState, "rollout_attempt_state")
    )
    detail: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utc_now)
    ended_at: Mapped[datetime | None]


class Transfer(_Timestamps, Base):
    """One copy of a model's weights to a cluster."""

    __tablename__ = "transfers"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"), index=True)
    cluster_id: Mapped[int] = mapped_column(
        ForeignKey("clusters.id", ondelete="RESTRICT"), index=True
    )
    deployment_id: Mapped[int | None] = mapped_column(
        ForeignKey("deployments.id", ondelete="SET NULL"), index=True
    )
    destination: Mapped[str | None] = mapped_column(String(2048))
    status: Mapped[TransferStatus] = mapped_column(
        _enum_column_type(TransferStatus, "transfer_status")
    )
    status_reason: Mapped[str | None] = mapped_column(Text)
    bytes_total: Mapped[int | None] = mapped_column(BigInteger)
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    files_total: Mapped[int | None]
    files_done: Mapped[int] = mapped_column(default=0)
    throughput_bytes_per_s: Mapped[float | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class BenchmarkRun(Base):
    __tablename__ = "benchmark_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Runs outlive their deployment: comparisons across redeploys still need them.
    deployment_id: Mapped[int | None] = mapped_column(
        ForeignKey("deployments.id", ondelete="SET NULL"), index=True
    )
    deployment_name: Mapped[str | None] = mapped_column(String(253))
    name: Mapped[str] = mapped_column(String(512))
    run_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    """Derived from the run itself (``budcluster.store.benchmarks.run_key``): a second
    save of the same run (a retried transaction, an import) finds it instead of adding it."""
    endpoint_url: Mapped[str] = mapped_column(String(2048), index=True)
    model: Mapped[str] = mapped_column(String(512))
    api: Mapped[str] = mapped_column(String(64))
    profile: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32))
    tool_version: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime]
    started_monotonic: Mapped[float]
    finished_at: Mapped[datetime | None]
    settings: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    usd_per_hour: Mapped[float | None]
    """What the measured deployment's devices cost per hour; None when not priced."""
    price: Mapped[dict[str, Any] | None]
    """How that price was made: devices, unit prices, the price table's source and date."""


class BenchmarkRequest(Base):
    """One request of a run. Times are seconds on the run's monotonic clock."""

    __tablename__ = "benchmark_requests"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("benchmark_runs.id", ondelete="CASCADE"), primary_key=True
    )
    request_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    level: Mapped[int]
    scheduled_s: Mapped[float]
    sent_s: Mapped[float | None]
    first_token_s: Mapped[float | None]
    end_s: Mapped[float | None]
    prompt_tokens: Mapped[int | None]
    output_tokens: Mapped[int | None]
    output_tokens_source: Mapped[str] = mapped_column(String(16))
    chunk_times_s: Mapped[list[float]] = mapped_column(Float64Array())
    """Arrival time of each streamed chunk, packed as float64 (see ``Float64Array``)."""
    error_kind: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    retries: Mapped[int]
    warmup: Mapped[bool]


class BenchmarkSummary(Base):
    """Aggregates of one load level of a run."""

    __tablename__ = "benchmark_summaries"
    __table_args__ = (UniqueConstraint("run_id", "level"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("benchmark_runs.id", ondelete="CASCADE"))
    level: Mapped[int]
    label: Mapped[str] = mapped_column(String(128))
    target_concurrency: Mapped[int | None]
    target_rate: Mapped[float | None]
    duration_s: Mapped[float]
    requests_completed: Mapped[int]
    requests_failed: Mapped[int]
    request_throughput: Mapped[float]
    output_token_throughput: Mapped[float]
    total_token_throughput: Mapped[float]
    goodput: Mapped[float | None]
    error_rate: Mapped[float]
    latencies_ms: Mapped[dict[str, Any]]
    errors_by_kind: Mapped[dict[str, Any]]
    retries: Mapped[int]
    usd_per_million_output_tokens: Mapped[float | None]
    """The run's price per hour / (output tokens per second x 3600) x 1e6; None: unknown."""


class ProvisioningStatus(StrEnum):
    PLANNED = "planned"
    APPLYING = "applying"
    APPLIED = "applied"
    FAILED = "failed"
    DESTROYING = "destroying"
    DESTROYED = "destroyed"


class Provisioning(_Timestamps, Base):
    """A cluster this project created with Terraform: enough to plan, apply or destroy again.

    Kept apart from ``clusters``: the infrastructure can exist before the cluster is
    registered (registration failed) and outlive its registration (deregistered first).
    """

    __tablename__ = "provisionings"

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_name: Mapped[str] = mapped_column(String(253), unique=True)
    cloud: Mapped[ClusterProvider] = mapped_column(_enum_column_type(ClusterProvider, "cloud"))
    module: Mapped[str] = mapped_column(String(64))
    credentials_block: Mapped[str] = mapped_column(String(253))
    request: Mapped[dict[str, Any]]
    """The provisioning form as submitted (no secrets: credentials are a block name)."""
    outputs: Mapped[dict[str, Any] | None]
    kubeconfig_block: Mapped[str | None] = mapped_column(String(253))
    status: Mapped[ProvisioningStatus] = mapped_column(
        _enum_column_type(ProvisioningStatus, "provisioning_status")
    )
    status_reason: Mapped[str | None] = mapped_column(Text)


class PlacementClaim(Base):
    """The devices a deploy-model run planned onto, held from its plan until its pods are
    bound (or it ends), so a concurrent planner on the same cluster counts them as taken.

    Keyed by deployment name, not id: the claim is written with the plan, before a first
    deployment's row exists. One row per deployment; its next plan replaces it.
    """

    __tablename__ = "placement_claims"
    __table_args__ = (UniqueConstraint("cluster_id", "deployment_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    deployment_name: Mapped[str] = mapped_column(String(253))
    devices: Mapped[dict[str, Any]]
    """node name -> extended resource -> device count, from the plan's placements."""
    released_epoch: Mapped[int | None]
    """None while the claim holds; else the cluster's placement_epoch its release set."""
    claimed_at: Mapped[datetime] = mapped_column(default=utc_now)
