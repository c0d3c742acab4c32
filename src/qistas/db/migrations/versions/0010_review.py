"""the review stage: reviews, review and audit status of tasks, rejected answers

Revision ID: 0010_review
Revises: 0009_idempotency_sealed_secrets
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from qistas.db.types import JSONType, UTCDateTime

revision = "0010_review"
down_revision = "0009_idempotency_sealed_secrets"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SUBMITTED = sa.text("status = 'submitted'")


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("review_policy", JSONType, nullable=False, server_default="{}"))
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("review_status", sa.String(16), nullable=False, server_default="none"))
        batch.add_column(sa.Column("audit_status", sa.String(16), nullable=False, server_default="none"))
        batch.add_column(sa.Column("review_round", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("review_until", UTCDateTime(), nullable=True))
    with op.batch_alter_table("annotations") as batch:
        batch.add_column(sa.Column("rejected_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("rejection_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("worker_stats") as batch:
        batch.add_column(sa.Column("n_reviewed", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("n_rejected", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_annotations_annotator_order", "annotations", ["project_id", "annotator_id", "id"])
    op.create_table(
        "reviews",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("task_id", BigId, sa.ForeignKey("tasks.id"), nullable=False),
        sa.Column("project_id", BigId, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("reviewer_id", BigId, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("stage", sa.String(8), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("action", sa.String(16), nullable=True),
        sa.Column("answer", JSONType, nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("annotation_id", BigId, sa.ForeignKey("annotations.id"), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_reviews_task_id", "reviews", ["task_id"])
    op.create_index("ix_reviews_reviewer_id", "reviews", ["reviewer_id"])
    op.create_index("ix_reviews_project", "reviews", ["project_id", "stage", "status"])
    op.create_index("uq_reviews_done", "reviews", ["task_id", "stage", "round"], unique=True,
                    sqlite_where=SUBMITTED, postgresql_where=SUBMITTED)


def downgrade() -> None:
    op.drop_table("reviews")
    op.drop_index("ix_annotations_annotator_order", table_name="annotations")
    with op.batch_alter_table("worker_stats") as batch:
        batch.drop_column("n_rejected")
        batch.drop_column("n_reviewed")
    with op.batch_alter_table("annotations") as batch:
        batch.drop_column("rejection_reason")
        batch.drop_column("rejected_at")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("review_until")
        batch.drop_column("review_round")
        batch.drop_column("audit_status")
        batch.drop_column("review_status")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("review_policy")
