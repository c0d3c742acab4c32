"""models' predictions on tasks, the projects' pre-fill setting, anchoring on annotations

Revision ID: 0011_predictions
Revises: 0010_review
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from qistas.db.types import JSONType

revision = "0011_predictions"
down_revision = "0010_review"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("prefill", JSONType, nullable=False, server_default="{}"))
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("predictions", JSONType, nullable=True))
    with op.batch_alter_table("staged_tasks") as batch:
        batch.add_column(sa.Column("predictions", JSONType, nullable=True))
    with op.batch_alter_table("annotations") as batch:
        batch.add_column(sa.Column("prefill_model", sa.String(200), nullable=True))
        batch.add_column(sa.Column("prefill_kept", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("annotations") as batch:
        batch.drop_column("prefill_kept")
        batch.drop_column("prefill_model")
    with op.batch_alter_table("staged_tasks") as batch:
        batch.drop_column("predictions")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("predictions")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("prefill")
