"""how a task was decided (needs_review, details) and annotators known only by an outside id

Revision ID: 0004_task_decision
Revises: 0003_tasks_in_flight
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004_task_decision"
down_revision = "0003_tasks_in_flight"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("needs_review", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("details", JSONType, nullable=True))
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("external_id", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("external_id")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("details")
        batch.drop_column("needs_review")
