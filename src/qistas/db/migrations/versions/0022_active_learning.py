"""active learning: the projects' setting and model state, the tasks' serving rank and its index

Revision ID: 0022_active_learning
Revises: 0021_scaleout
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from qistas.db.types import JSONType

revision = "0022_active_learning"
down_revision = "0021_scaleout"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("active_learning", JSONType, nullable=False, server_default="{}"))
        batch.add_column(sa.Column("active_version", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("active_trained_on", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("serve_rank", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_tasks_ranked", "tasks", ["project_id", "status", "n_claimed", "serve_rank", "id"])


def downgrade() -> None:
    op.drop_index("ix_tasks_ranked", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("serve_rank")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("active_trained_on")
        batch.drop_column("active_version")
        batch.drop_column("active_learning")
