"""pay and time: projects' pay settings, server-measured time and earnings on answers, the ledger's corrections

The unused ``projects.pay_rate`` (a float of no currency) is dropped: money is integer minor
units with a currency (``projects.pay``).

Revision ID: 0020_pay
Revises: 0019_exams
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from qistas.db.types import JSONType, UTCDateTime

revision = "0020_pay"
down_revision = "0019_exams"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("pay", JSONType, nullable=False, server_default="{}"))
        batch.drop_column("pay_rate")
    with op.batch_alter_table("assignments") as batch:
        batch.add_column(sa.Column("active_ms", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("seen_at", UTCDateTime, nullable=True))
    with op.batch_alter_table("annotations") as batch:
        batch.add_column(sa.Column("active_ms", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("pay_minor", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("pay_currency", sa.String(3), nullable=True))
    op.create_table(
        "pay_entries",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("user_id", BigId, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("project_id", BigId, sa.ForeignKey("projects.id"), nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", BigId, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_pay_entries_user", "pay_entries", ["user_id", "created_at"])
    op.create_index("ix_pay_entries_project_id", "pay_entries", ["project_id"])
    op.create_index("ix_pay_entries_created_at", "pay_entries", ["created_at"])


def downgrade() -> None:
    op.drop_table("pay_entries")
    with op.batch_alter_table("annotations") as batch:
        batch.drop_column("pay_currency")
        batch.drop_column("pay_minor")
        batch.drop_column("active_ms")
    with op.batch_alter_table("assignments") as batch:
        batch.drop_column("seen_at")
        batch.drop_column("active_ms")
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("pay_rate", sa.Float(), nullable=True))
        batch.drop_column("pay")
