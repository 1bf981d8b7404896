"""Cost per million output tokens: each run's device price, each level's cost.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 00:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("benchmark_runs") as batch:
        batch.add_column(sa.Column("usd_per_hour", sa.Double(), nullable=True))
        batch.add_column(sa.Column("price", _JSON, nullable=True))
    with op.batch_alter_table("benchmark_summaries") as batch:
        batch.add_column(sa.Column("usd_per_million_output_tokens", sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("benchmark_summaries") as batch:
        batch.drop_column("usd_per_million_output_tokens")
    with op.batch_alter_table("benchmark_runs") as batch:
        batch.drop_column("price")
        batch.drop_column("usd_per_hour")
