"""Rollout attempts: the intent to start a runtime, written before it starts.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 18:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIMESTAMP = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "rollout_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("flow_run_id", sa.String(length=64), nullable=True),
        sa.Column("spec_hash", sa.String(length=128), nullable=True),
        sa.Column("previous_manifests", _JSON, nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "started",
                "finished",
                "undone",
                "undo_failed",
                name=op.f("ck_rollout_attempts_rollout_attempt_state"),
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("started_at", _TIMESTAMP, nullable=False),
        sa.Column("ended_at", _TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_rollout_attempts_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollout_attempts")),
    )
    op.create_index(
        op.f("ix_rollout_attempts_deployment_id"), "rollout_attempts", ["deployment_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_rollout_attempts_deployment_id"), table_name="rollout_attempts")
    op.drop_table("rollout_attempts")
