"""Initial schema: every table of the results store.

Written from autogenerate and reviewed. Enumerations are frozen here on purpose: a later
value is added by a later migration, not by editing the models alone.

Revision ID: 0001
Revises:
Create Date: 2026-11-27 23:23:54.810194
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# JSONB on Postgres, JSON text on SQLite; timestamps carry a time zone where the backend can.
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_TIMESTAMP = sa.DateTime(timezone=True)


def _enum(constraint_name: str, *values: str) -> sa.Enum:
    """A VARCHAR(32) limited to ``values`` by a CHECK constraint (portable, unlike native enums)."""
    return sa.Enum(
        *values,
        name=op.f(constraint_name),
        native_enum=False,
        create_constraint=True,
        length=32,
    )


def upgrade() -> None:
    op.create_table(
        "clusters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column(
            "kind",
            _enum("ck_clusters_cluster_kind", "kubernetes", "openshift", "hosts"),
            nullable=False,
        ),
        sa.Column(
            "provider",
            _enum("ck_clusters_cluster_provider", "onprem", "eks", "aks"),
            nullable=False,
        ),
        sa.Column(
            "status",
            _enum(
                "ck_clusters_cluster_status",
                "registering",
                "available",
                "unavailable",
                "deleting",
                "deleted",
            ),
            nullable=False,
        ),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("credentials_block", sa.String(length=253), nullable=True),
        sa.Column("server_url", sa.String(length=2048), nullable=True),
        sa.Column("platform_version", sa.String(length=128), nullable=True),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
        sa.Column("updated_at", _TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clusters")),
        sa.UniqueConstraint("name", name=op.f("uq_clusters_name")),
        sa.UniqueConstraint("server_url", name=op.f("uq_clusters_server_url")),
    )
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("source_uri", sa.String(length=2048), nullable=False),
        sa.Column(
            "format", _enum("ck_models_model_format", "hf-safetensors", "gguf"), nullable=False
        ),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("manifest", _JSON, nullable=False),
        sa.Column("config_facts", _JSON, nullable=False),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
        sa.Column("updated_at", _TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
        sa.UniqueConstraint("source_uri", name=op.f("uq_models_source_uri")),
    )
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cluster_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("spec_hash", sa.String(length=128), nullable=True),
        sa.Column("plan", _JSON, nullable=True),
        sa.Column("engine", sa.String(length=64), nullable=True),
        sa.Column("image", sa.String(length=1024), nullable=True),
        sa.Column("command", _JSON, nullable=True),
        sa.Column("endpoint_url", sa.String(length=2048), nullable=True),
        sa.Column(
            "status",
            _enum(
                "ck_deployments_deployment_status",
                "pending",
                "planning",
                "transferring",
                "deploying",
                "ready",
                "failed",
                "deleting",
                "deleted",
            ),
            nullable=False,
        ),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
        sa.Column("updated_at", _TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["cluster_id"],
            ["clusters.id"],
            name=op.f("fk_deployments_cluster_id_clusters"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_deployments_model_id_models"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments")),
        sa.UniqueConstraint("cluster_id", "name", name=op.f("uq_deployments_cluster_id_name")),
    )
    op.create_index(op.f("ix_deployments_model_id"), "deployments", ["model_id"], unique=False)
    op.create_table(
        "nodes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cluster_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("hardware", _JSON, nullable=False),
        sa.Column("cpu_model", sa.String(length=256), nullable=True),
        sa.Column("cpu_cores", sa.Integer(), nullable=True),
        sa.Column("memory_bytes", sa.BigInteger(), nullable=True),
        sa.Column(
            "accelerator_kind",
            _enum("ck_nodes_accelerator_kind", "cpu", "cuda", "hpu"),
            nullable=False,
        ),
        sa.Column("accelerator_count", sa.Integer(), nullable=False),
        sa.Column("accelerator_model", sa.String(length=256), nullable=True),
        sa.Column("accelerator_memory_bytes", sa.BigInteger(), nullable=True),
        sa.Column("schedulable", sa.Boolean(), nullable=False),
        sa.Column("conditions", _JSON, nullable=False),
        sa.Column("detected_at", _TIMESTAMP, nullable=False),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
        sa.Column("updated_at", _TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["cluster_id"],
            ["clusters.id"],
            name=op.f("fk_nodes_cluster_id_clusters"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nodes")),
        sa.UniqueConstraint("cluster_id", "name", name=op.f("uq_nodes_cluster_id_name")),
    )
    op.create_table(
        "benchmark_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=True),
        sa.Column("deployment_name", sa.String(length=253), nullable=True),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("endpoint_url", sa.String(length=2048), nullable=False),
        sa.Column("model", sa.String(length=512), nullable=False),
        sa.Column("api", sa.String(length=64), nullable=False),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("tool_version", sa.String(length=64), nullable=False),
        sa.Column("started_at", _TIMESTAMP, nullable=False),
        sa.Column("started_monotonic", sa.Double(), nullable=False),
        sa.Column("finished_at", _TIMESTAMP, nullable=True),
        sa.Column("settings", _JSON, nullable=False),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_benchmark_runs_deployment_id_deployments"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_benchmark_runs")),
    )
    op.create_index(
        op.f("ix_benchmark_runs_deployment_id"), "benchmark_runs", ["deployment_id"], unique=False
    )
    op.create_index(
        op.f("ix_benchmark_runs_endpoint_url"), "benchmark_runs", ["endpoint_url"], unique=False
    )
    op.create_table(
        "deployment_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("manifests", _JSON, nullable=False),
        sa.Column("spec_hash", sa.String(length=128), nullable=True),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_deployment_revisions_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployment_revisions")),
        sa.UniqueConstraint(
            "deployment_id", "revision", name=op.f("uq_deployment_revisions_deployment_id_revision")
        ),
    )
    op.create_table(
        "deployment_status_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column(
            "from_status",
            _enum(
                "ck_deployment_status_history_from_status",
                "pending",
                "planning",
                "transferring",
                "deploying",
                "ready",
                "failed",
                "deleting",
                "deleted",
            ),
            nullable=True,
        ),
        sa.Column(
            "to_status",
            _enum(
                "ck_deployment_status_history_to_status",
                "pending",
                "planning",
                "transferring",
                "deploying",
                "ready",
                "failed",
                "deleting",
                "deleted",
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("changed_at", _TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_deployment_status_history_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployment_status_history")),
    )
    op.create_index(
        op.f("ix_deployment_status_history_deployment_id"),
        "deployment_status_history",
        ["deployment_id"],
        unique=False,
    )
    op.create_table(
        "node_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("hardware", _JSON, nullable=False),
        sa.Column("cpu_model", sa.String(length=256), nullable=True),
        sa.Column("cpu_cores", sa.Integer(), nullable=True),
        sa.Column("memory_bytes", sa.BigInteger(), nullable=True),
        sa.Column(
            "accelerator_kind",
            _enum("ck_node_snapshots_accelerator_kind", "cpu", "cuda", "hpu"),
            nullable=False,
        ),
        sa.Column("accelerator_count", sa.Integer(), nullable=False),
        sa.Column("accelerator_model", sa.String(length=256), nullable=True),
        sa.Column("accelerator_memory_bytes", sa.BigInteger(), nullable=True),
        sa.Column("schedulable", sa.Boolean(), nullable=False),
        sa.Column("conditions", _JSON, nullable=False),
        sa.Column("detected_at", _TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["nodes.id"],
            name=op.f("fk_node_snapshots_node_id_nodes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_snapshots")),
    )
    op.create_index(
        op.f("ix_node_snapshots_node_id_detected_at"),
        "node_snapshots",
        ["node_id", "detected_at"],
        unique=False,
    )
    op.create_table(
        "transfers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("cluster_id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=True),
        sa.Column("destination", sa.String(length=2048), nullable=True),
        sa.Column(
            "status",
            _enum(
                "ck_transfers_transfer_status",
                "pending",
                "running",
                "succeeded",
                "failed",
                "cancelled",
            ),
            nullable=False,
        ),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("bytes_total", sa.BigInteger(), nullable=True),
        sa.Column("bytes_done", sa.BigInteger(), nullable=False),
        sa.Column("files_total", sa.Integer(), nullable=True),
        sa.Column("files_done", sa.Integer(), nullable=False),
        sa.Column("throughput_bytes_per_s", sa.Double(), nullable=True),
        sa.Column("started_at", _TIMESTAMP, nullable=True),
        sa.Column("finished_at", _TIMESTAMP, nullable=True),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
        sa.Column("updated_at", _TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["cluster_id"],
            ["clusters.id"],
            name=op.f("fk_transfers_cluster_id_clusters"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_transfers_deployment_id_deployments"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_transfers_model_id_models"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfers")),
    )
    op.create_index(op.f("ix_transfers_cluster_id"), "transfers", ["cluster_id"], unique=False)
    op.create_index(
        op.f("ix_transfers_deployment_id"), "transfers", ["deployment_id"], unique=False
    )
    op.create_index(op.f("ix_transfers_model_id"), "transfers", ["model_id"], unique=False)
    op.create_table(
        "benchmark_requests",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.BigInteger(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("scheduled_s", sa.Double(), nullable=False),
        sa.Column("sent_s", sa.Double(), nullable=True),
        sa.Column("first_token_s", sa.Double(), nullable=True),
        sa.Column("end_s", sa.Double(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("output_tokens", sa.Integer(), nullable=True),
        sa.Column("output_tokens_source", sa.String(length=16), nullable=False),
        sa.Column("chunk_times_s", sa.LargeBinary(), nullable=False),
        sa.Column("error_kind", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("warmup", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["benchmark_runs.id"],
            name=op.f("fk_benchmark_requests_run_id_benchmark_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "request_id", name=op.f("pk_benchmark_requests")),
    )
    op.create_table(
        "benchmark_summaries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=128), nullable=False),
        sa.Column("target_concurrency", sa.Integer(), nullable=True),
        sa.Column("target_rate", sa.Double(), nullable=True),
        sa.Column("duration_s", sa.Double(), nullable=False),
        sa.Column("requests_completed", sa.Integer(), nullable=False),
        sa.Column("requests_failed", sa.Integer(), nullable=False),
        sa.Column("request_throughput", sa.Double(), nullable=False),
        sa.Column("output_token_throughput", sa.Double(), nullable=False),
        sa.Column("total_token_throughput", sa.Double(), nullable=False),
        sa.Column("goodput", sa.Double(), nullable=True),
        sa.Column("error_rate", sa.Double(), nullable=False),
        sa.Column("latencies_ms", _JSON, nullable=False),
        sa.Column("errors_by_kind", _JSON, nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["benchmark_runs.id"],
            name=op.f("fk_benchmark_summaries_run_id_benchmark_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_benchmark_summaries")),
        sa.UniqueConstraint("run_id", "level", name=op.f("uq_benchmark_summaries_run_id_level")),
    )


def downgrade() -> None:
    op.drop_table("benchmark_summaries")
    op.drop_table("benchmark_requests")
    op.drop_index(op.f("ix_transfers_model_id"), table_name="transfers")
    op.drop_index(op.f("ix_transfers_deployment_id"), table_name="transfers")
    op.drop_index(op.f("ix_transfers_cluster_id"), table_name="transfers")
    op.drop_table("transfers")
    op.drop_index(op.f("ix_node_snapshots_node_id_detected_at"), table_name="node_snapshots")
    op.drop_table("node_snapshots")
    op.drop_index(
        op.f("ix_deployment_status_history_deployment_id"), table_name="deployment_status_history"
    )
    op.drop_table("deployment_status_history")
    op.drop_table("deployment_revisions")
    op.drop_index(op.f("ix_benchmark_runs_endpoint_url"), table_name="benchmark_runs")
    op.drop_index(op.f("ix_benchmark_runs_deployment_id"), table_name="benchmark_runs")
    op.drop_table("benchmark_runs")
    op.drop_table("nodes")
    op.drop_index(op.f("ix_deployments_model_id"), table_name="deployments")
    op.drop_table("deployments")
    op.drop_table("models")
    op.drop_table("clusters")
