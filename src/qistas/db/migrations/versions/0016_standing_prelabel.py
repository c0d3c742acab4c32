"""standing pre-label jobs: a model answers each task as it comes

Revision ID: 0016_standing_prelabel
Revises: 0015_workforce
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_standing_prelabel"
down_revision = "0015_workforce"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("prelabel_jobs") as batch:
        batch.add_column(sa.Column("standing", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("prelabel_jobs") as batch:
        batch.drop_column("standing")
