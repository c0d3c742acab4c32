"""accounts: token scope, expiry and last use; one-time sign-in links; failed sign-ins; emails
unique per organization (and among accounts of no organization), no longer across the instance

Revision ID: 0005_accounts
Revises: 0004_task_decision
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from qistas.db.types import UTCDateTime

revision = "0005_accounts"
down_revision = "0004_task_decision"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = UTCDateTime()


NO_ORG = sa.text("org_id IS NULL")


def upgrade() -> None:
    # The unnamed UNIQUE (email) of 0001 gets a name here, so that SQLite's batch copy can drop it.
    with op.batch_alter_table("users", naming_convention={"uq": "%(table_name)s_%(column_0_name)s_key"}) as batch:
        batch.drop_constraint("users_email_key", type_="unique")
    op.create_index("uq_users_org_email", "users", ["org_id", "email"], unique=True)
    op.create_index("uq_users_email_no_org", "users", ["email"], unique=True, sqlite_where=NO_ORG,
                    postgresql_where=NO_ORG)
    op.create_index("ix_users_email", "users", ["email"])
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("scope", sa.String(16), nullable=False, server_default="admin"))
        batch.add_column(sa.Column("expires_at", UTC, nullable=True))
        batch.add_column(sa.Column("last_used_at", UTC, nullable=True))
    op.create_table(
        "sign_in_links",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("user_id", BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        sa.Column("used_at", UTC, nullable=True),
    )
    op.create_index("ix_sign_in_links_user_id", "sign_in_links", ["user_id"])
    op.create_table(
        "sign_in_failures",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("key", sa.String(400), nullable=False),
        sa.Column("at", UTC, nullable=False),
    )
    op.create_index("ix_sign_in_failures_key", "sign_in_failures", ["key", "at"])
    op.create_index("ix_sign_in_failures_at", "sign_in_failures", ["at"])


def downgrade() -> None:
    op.drop_index("ix_users_email", table_name="users")
    op.drop_index("uq_users_email_no_org", table_name="users")
    op.drop_index("uq_users_org_email", table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.create_unique_constraint("users_email_key", ["email"])
    op.drop_table("sign_in_failures")
    op.drop_table("sign_in_links")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("last_used_at")
        batch.drop_column("expires_at")
        batch.drop_column("scope")
