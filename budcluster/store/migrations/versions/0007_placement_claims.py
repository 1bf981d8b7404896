"""Placement claims: the devices a plan took, held until its pods are bound or it ends.

Two deploy-model runs on one cluster plan concurrently; without a claim each sees only
the devices of pods already bound and both can take the last free GPUs of a node.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 22:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIMESTAMP = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("clusters") as batch:
        batch.add_column(
            sa.Column("placement_epoch", sa.Integer(), server_default="0", nullable=False)
        )
    op.create_table(
        "placement_claims",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cluster_id", sa.Integer(), nullable=False),
        sa.Column("deployment_name", sa.String(length=253), nullable=False),
        sa.Column("devices", _JSON, nullable=False),
        sa.Column("released_epoch", sa.Integer(), nullable=True),
        sa.Column("claimed_at", _TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["cluster_id"],
            ["clusters.id"],
            name=op.f("fk_placement_claims_cluster_id_clusters"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_placement_claims")),
        sa.UniqueConstraint(
            "cluster_id",
            "deployment_name",
            name=op.f("uq_placement_claims_cluster_id_deployment_name"),
        ),
    )


def downgrade() -> None:
    op.drop_table("placement_claims")
    with op.batch_alter_table("clusters") as batch:
        batch.drop_column("placement_epoch")
