"""idempotent_requests; webhook signing secrets sealed at rest

Revision ID: 0009_idempotency_sealed_secrets
Revises: 0008_audit_chain

Existing webhook secrets are sealed with the server's secret key (``get_settings()``: the
same environment the server runs with); a database without webhooks needs no key.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from qistas.config import get_settings
from qistas.db.types import UTCDateTime
from qistas.domain.sealing import Keyring

revision = "0009_idempotency_sealed_secrets"
down_revision = "0008_audit_chain"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WEBHOOK_SECRET = "webhook-secret"  # qistas.domain.sealing.WEBHOOK_SECRET, fixed here as this revision knows it


def _keyring() -> Keyring:
    return Keyring.from_settings(get_settings())


def upgrade() -> None:
    op.create_table(
        "idempotent_requests",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("user_id", BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("content_type", sa.String(255), nullable=True),
        sa.Column("body_sealed", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("user_id", "key", name="uq_idempotent_requests_user_key"),
    )
    op.create_index("ix_idempotent_requests_created_at", "idempotent_requests", ["created_at"])

    with op.batch_alter_table("webhooks") as batch:
        batch.add_column(sa.Column("secret_sealed", sa.String(512), nullable=True))
    connection = op.get_bind()
    hooks = sa.table("webhooks", sa.column("id", sa.BigInteger()), sa.column("secret", sa.String()),
                     sa.column("secret_sealed", sa.String()))
    rows = connection.execute(sa.select(hooks.c.id, hooks.c.secret)).all()
    if rows:
        keyring = _keyring()
        for hook_id, secret in rows:
            connection.execute(hooks.update().where(hooks.c.id == hook_id).values(
                secret_sealed=keyring.seal(secret.encode(), purpose=WEBHOOK_SECRET)))
    with op.batch_alter_table("webhooks") as batch:
        batch.alter_column("secret_sealed", existing_type=sa.String(512), nullable=False)
        batch.drop_column("secret")


def downgrade() -> None:
    with op.batch_alter_table("webhooks") as batch:
        batch.add_column(sa.Column("secret", sa.String(128), nullable=True))
    connection = op.get_bind()
    hooks = sa.table("webhooks", sa.column("id", sa.BigInteger()), sa.column("secret", sa.String()),
                     sa.column("secret_sealed", sa.String()))
    rows = connection.execute(sa.select(hooks.c.id, hooks.c.secret_sealed)).all()
    if rows:
        keyring = _keyring()
        for hook_id, sealed in rows:
            connection.execute(hooks.update().where(hooks.c.id == hook_id).values(
                secret=keyring.open(sealed, purpose=WEBHOOK_SECRET).decode()))
    with op.batch_alter_table("webhooks") as batch:
        batch.alter_column("secret", existing_type=sa.String(128), nullable=False)
        batch.drop_column("secret_sealed")
    op.drop_index("ix_idempotent_requests_created_at", table_name="idempotent_requests")
    op.drop_table("idempotent_requests")
