"""audit log: per-organization hash chains, their heads and signed checkpoints

Existing events are linked into their organization's chain in the order they were written.

Revision ID: 0008_audit_chain
Revises: 0007_lifecycle
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

import sqlalchemy as sa
from alembic import op

from qistas.db.types import UTCDateTime
from qistas.domain.audit_chain import GENESIS, event_hash, normal_details, time_text

revision = "0008_audit_chain"
down_revision = "0007_lifecycle"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("chain_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("actor", sa.String(64), nullable=True))
        batch.add_column(sa.Column("prev_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("hash", sa.String(64), nullable=True))
    heads = op.create_table(
        "audit_heads",
        sa.Column("chain_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("org_id", BigId, sa.ForeignKey("organizations.id"), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
    )
    op.create_index("ix_audit_checkpoints_chain_seq", "audit_checkpoints", ["chain_id", "seq"])
    _link_existing(heads)
    with op.batch_alter_table("audit_events") as batch:
        for name in ("chain_id", "seq", "actor", "prev_hash", "hash"):
            batch.alter_column(name, nullable=False)
        batch.create_unique_constraint("uq_audit_events_chain_seq", ["chain_id", "seq"])


def _link_existing(heads: sa.Table) -> None:
    """Chain the events written before chains existed, in id order per organization."""
    bind = op.get_bind()
    meta = sa.MetaData()
    events = sa.Table("audit_events", meta, autoload_with=bind)
    users = sa.Table("users", meta, autoload_with=bind)
    rows = bind.execute(
        sa.select(events, users.c.role).outerjoin(users, users.c.id == events.c.actor_id).order_by(events.c.id)
    ).mappings().all()
    last: dict[int, tuple[int, str]] = {}
    for row in rows:
        chain = 0 if row["org_id"] is None else row["org_id"]
        seq, prev = last.get(chain, (0, GENESIS))
        actor = _actor(row)
        at = row["at"]
        fields: dict[str, Any] = {
            "org": row["org_id"], "seq": seq + 1, "at": time_text(at if at.tzinfo else at.replace(tzinfo=UTC)),
            "actor": actor, "action": row["action"], "object_type": row["object_type"],
            "object_id": row["object_id"], "details": normal_details(row["details"]), "prev_hash": prev,
        }
        digest = event_hash(fields)
        bind.execute(events.update().where(events.c.id == row["id"]).values(
            chain_id=chain, seq=seq + 1, actor=actor, prev_hash=prev, hash=digest, details=fields["details"]))
        last[chain] = (seq + 1, digest)
    if last:
        bind.execute(heads.insert(), [{"chain_id": c, "seq": s, "hash": h} for c, (s, h) in last.items()])


def _actor(row: Any) -> str:
    if row["actor_id"] is None:
        return "system"
    if row["role"] in ("admin", "owner", "member"):
        return f"{row['role']}:{row['actor_id']}"
    return "annotator"  # never an annotator's account: customers read this chain


def downgrade() -> None:
    op.drop_index("ix_audit_checkpoints_chain_seq", table_name="audit_checkpoints")
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_heads")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_constraint("uq_audit_events_chain_seq", type_="unique")
        for name in ("hash", "prev_hash", "actor", "seq", "chain_id"):
            batch.drop_column(name)
