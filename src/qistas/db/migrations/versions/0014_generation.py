"""generation batches: candidate items a model generates into a project

Revision ID: 0014_generation
Revises: 0013_model_annotators
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from qistas.db.types import JSONType, UTCDateTime

revision = "0014_generation"
down_revision = "0013_model_annotators"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "generation_batches",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("project_id", BigId, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("endpoint_ids", JSONType, nullable=False),
        sa.Column("requested_by", BigId, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("template", JSONType, nullable=False),
        sa.Column("params", JSONType, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", UTCDateTime, nullable=True),
        sa.Column("next_index", sa.Integer(), nullable=False),
        sa.Column("generated", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("failures", JSONType, nullable=False),
        sa.Column("dropped", JSONType, nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=True),
        sa.Column("finished_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_generation_batches_project_id", "generation_batches", ["project_id"])
    op.create_index("ix_generation_batches_queue", "generation_batches", ["status", "lease_until"])


def downgrade() -> None:
    op.drop_table("generation_batches")
