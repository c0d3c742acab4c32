"""projects archived; annotators unblocked on probation

Revision ID: 0007_lifecycle
Revises: 0006_staged_imports
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from qistas.db.types import UTCDateTime

revision = "0007_lifecycle"
down_revision = "0006_staged_imports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("archived_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("worker_stats") as batch:
        batch.add_column(sa.Column("probation", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("worker_stats") as batch:
        batch.drop_column("probation")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("archived_at")
