"""media files of organizations, and the projects' media limits

Revision ID: 0017_media
Revises: 0012_model_endpoints
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from qistas.db.types import JSONType, UTCDateTime

revision = "0017_media"
down_revision = "0016_standing_prelabel"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "media",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("org_id", BigId, sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("org_id", "sha256"),
    )
    op.create_index("ix_media_sha256", "media", ["sha256"])
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("media", JSONType, nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("media")
    op.drop_index("ix_media_sha256", table_name="media")
    op.drop_table("media")
