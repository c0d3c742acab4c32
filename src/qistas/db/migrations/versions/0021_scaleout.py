"""several servers: export files in the store, the deployment's key id, named worker leases

Revision ID: 0021_scaleout
Revises: 0020_pay
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from qistas.db.types import UTCDateTime

revision = "0021_scaleout"
down_revision = "0020_pay"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("export_jobs") as batch:
        batch.add_column(sa.Column("file_key", sa.String(400), nullable=True))
    op.create_table(
        "instance_key",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("changed_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "worker_leases",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("holder", sa.String(100), nullable=False),
        sa.Column("until", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("worker_leases")
    op.drop_table("instance_key")
    with op.batch_alter_table("export_jobs") as batch:
        batch.drop_column("file_key")
