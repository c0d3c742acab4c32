"""imports written in chunks: task_imports and the rows they stage

Revision ID: 0006_staged_imports
Revises: 0005_accounts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from qistas.db.types import UTCDateTime

revision = "0006_staged_imports"
down_revision = "0005_accounts"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "task_imports",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("project_id", BigId, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("actor_id", BigId, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_task_imports_project_id", "task_imports", ["project_id"])
    op.create_table(
        "staged_tasks",
        sa.Column("import_id", BigId, sa.ForeignKey("task_imports.id"), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("batch_id", sa.BigInteger(), nullable=True),
        sa.Column("unique_id", sa.String(255), nullable=True),
        sa.Column("data", JSONType, nullable=False),
        sa.Column("metadata", JSONType, nullable=True),
        sa.Column("gold", JSONType, nullable=True),
        sa.Column("is_gold", sa.Boolean(), nullable=False),
        sa.Column("required", sa.Integer(), nullable=False),
        sa.Column("callback_url", sa.String(2048), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("staged_tasks")
    op.drop_index("ix_task_imports_project_id", table_name="task_imports")
    op.drop_table("task_imports")
