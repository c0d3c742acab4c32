"""qualification exams: a project's exam settings and annotators' attempts

Revision ID: 0019_exams
Revises: 0018_fraud
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from qistas.db.types import JSONType, UTCDateTime

revision = "0019_exams"
down_revision = "0018_fraud"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("exam", JSONType, nullable=False, server_default="{}"))
    op.create_table(
        "exam_attempts",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("project_id", BigId, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("annotator_id", BigId, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("questions", sa.Integer(), nullable=False),
        sa.Column("pass_mark", sa.Float(), nullable=False),
        sa.Column("n_served", sa.Integer(), nullable=False),
        sa.Column("n_answered", sa.Integer(), nullable=False),
        sa.Column("n_correct", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime, nullable=True),
        sa.UniqueConstraint("project_id", "annotator_id", "number"),
    )
    op.create_index("ix_exam_attempts_annotator", "exam_attempts", ["annotator_id", "project_id"])


def downgrade() -> None:
    op.drop_index("ix_exam_attempts_annotator", table_name="exam_attempts")
    op.drop_table("exam_attempts")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("exam")
