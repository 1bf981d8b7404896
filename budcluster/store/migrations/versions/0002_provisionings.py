"""Provisionings: clusters created with Terraform by provision-cluster.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05 08:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_TIMESTAMP = sa.DateTime(timezone=True)


def _enum(constraint_name: str, *values: str) -> sa.Enum:
    return sa.Enum(
        *values,
        name=op.f(constraint_name),
        native_enum=False,
        create_constraint=True,
        length=32,
    )


def upgrade() -> None:
    op.create_table(
        "provisionings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cluster_name", sa.String(length=253), nullable=False),
        sa.Column("cloud", _enum("ck_provisionings_cloud", "onprem", "eks", "aks"), nullable=False),
        sa.Column("module", sa.String(length=64), nullable=False),
        sa.Column("credentials_block", sa.String(length=253), nullable=False),
        sa.Column("request", _JSON, nullable=False),
        sa.Column("outputs", _JSON, nullable=True),
        sa.Column("kubeconfig_block", sa.String(length=253), nullable=True),
        sa.Column(
            "status",
            _enum(
                "ck_provisionings_provisioning_status",
                "planned",
                "applying",
                "applied",
                "failed",
                "destroying",
                "destroyed",
            ),
            nullable=False,
        ),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
        sa.Column("updated_at", _TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provisionings")),
        sa.UniqueConstraint("cluster_name", name=op.f("uq_provisionings_cluster_name")),
    )


def downgrade() -> None:
    op.drop_table("provisionings")
