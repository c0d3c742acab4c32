"""fraud and low effort: an annotator's standing per project, answers excluded

Revision ID: 0018_fraud
Revises: 0017_media
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from qistas.db.types import UTCDateTime

revision = "0018_fraud"
down_revision = "0017_media"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("worker_stats") as batch:
        batch.add_column(sa.Column("fraud_status", sa.String(16), nullable=True))
        batch.add_column(sa.Column("fraud_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("annotations") as batch:
        batch.add_column(sa.Column("excluded_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("annotations") as batch:
        batch.drop_column("excluded_at")
    with op.batch_alter_table("worker_stats") as batch:
        batch.drop_column("fraud_reason")
        batch.drop_column("fraud_status")
