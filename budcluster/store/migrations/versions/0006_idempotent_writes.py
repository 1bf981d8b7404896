"""Keys that make a rerun write idempotent: benchmark runs and rollout attempts.

A transaction rerun after the database cut it off cannot tell whether the first try's
commit landed; a unique key made before the first try lets the rerun find the row.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 21:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("benchmark_runs") as batch:
        batch.add_column(sa.Column("run_key", sa.String(length=64), nullable=True))
        batch.create_unique_constraint(op.f("uq_benchmark_runs_run_key"), ["run_key"])
    with op.batch_alter_table("rollout_attempts") as batch:
        batch.add_column(sa.Column("attempt_key", sa.String(length=64), nullable=True))
        batch.create_unique_constraint(op.f("uq_rollout_attempts_attempt_key"), ["attempt_key"])


def downgrade() -> None:
    with op.batch_alter_table("rollout_attempts") as batch:
        batch.drop_constraint(op.f("uq_rollout_attempts_attempt_key"), type_="unique")
        batch.drop_column("attempt_key")
    with op.batch_alter_table("benchmark_runs") as batch:
        batch.drop_constraint(op.f("uq_benchmark_runs_run_key"), type_="unique")
        batch.drop_column("run_key")
