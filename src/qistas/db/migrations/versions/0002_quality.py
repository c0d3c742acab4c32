"""quality: worker stats, fitted worker models, gold checks on annotations

Revision ID: 0002_quality
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from qistas.db.types import UTCDateTime

revision = "0002_quality"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("annotations") as batch:
        batch.add_column(sa.Column("gold_correct", sa.Boolean(), nullable=True))
    op.create_table(
        "worker_stats",
        sa.Column("project_id", BigId, sa.ForeignKey("projects.id"), primary_key=True),
        sa.Column("annotator_id", BigId, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("n_annotations", sa.Integer(), nullable=False),
        sa.Column("seconds_total", sa.Float(), nullable=False),
        sa.Column("n_gold", sa.Integer(), nullable=False),
        sa.Column("n_gold_correct", sa.Integer(), nullable=False),
        sa.Column("blocked", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "quality_models",
        sa.Column("project_id", BigId, sa.ForeignKey("projects.id"), primary_key=True),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("fitted_at", UTCDateTime(), nullable=False),
        sa.Column("n_annotations", sa.Integer(), nullable=False),
        sa.Column("params", JSONType, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("quality_models")
    op.drop_table("worker_stats")
    with op.batch_alter_table("annotations") as batch:
        batch.drop_column("gold_correct")
