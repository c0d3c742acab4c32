"""the workforce: pools, their members, annotators' skills; projects' routing and work names

Revision ID: 0015_workforce
Revises: 0014_generation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from qistas.db.types import JSONType, UTCDateTime

revision = "0015_workforce"
down_revision = "0014_generation"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "pools",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("org_id", BigId, sa.ForeignKey("organizations.id"), nullable=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_pools_org_id", "pools", ["org_id"])
    op.create_table(
        "pool_members",
        sa.Column("pool_id", BigId, sa.ForeignKey("pools.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("user_id", BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("is_manager", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_pool_members_user_id", "pool_members", ["user_id"])
    op.create_table(
        "user_skills",
        sa.Column("user_id", BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("tag", sa.String(64), primary_key=True),
        sa.Column("level", sa.Integer(), nullable=False),
    )
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("work_profile", JSONType, nullable=False, server_default="{}"))
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("routing", JSONType, nullable=False, server_default="{}"))
        batch.add_column(sa.Column("work_name", sa.String(100), nullable=False, server_default=""))
    # Projects made before get a neutral name too (new ones get a generated code name).
    op.execute("UPDATE projects SET work_name = 'Work ' || CAST(id AS VARCHAR(20))")


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("work_name")
        batch.drop_column("routing")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("work_profile")
    op.drop_table("user_skills")
    op.drop_table("pool_members")
    op.drop_table("pools")
