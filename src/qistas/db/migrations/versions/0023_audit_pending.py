"""audit log: events are written pending and linked into their chain after their commit

``seq``, ``prev_hash`` and ``hash`` may be empty (a pending event), ``txid`` holds the writing
transaction's id (PostgreSQL), the events not linked yet have an index of their own, and each
chain's head remembers where the linker's next scan starts (``pending_from``). A downgrade
links the pending events first, as the server would have.

Revision ID: 0023_audit_pending
Revises: 0022_active_learning
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from qistas.db.types import JSONType, UTCDateTime
from qistas.domain.audit_chain import GENESIS, event_hash, time_text

revision = "0023_audit_pending"
down_revision = "0022_active_learning"
branch_labels = None
depends_on = None

LINKED = ("seq", "prev_hash", "hash")
PENDING = sa.text("seq IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        for name in LINKED:
            batch.alter_column(name, existing_type=sa.BigInteger() if name == "seq" else sa.String(64),
                               nullable=True)
        batch.add_column(sa.Column("txid", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("audit_heads") as batch:
        batch.add_column(sa.Column("pending_from", sa.BigInteger(), nullable=False, server_default="0"))
    op.create_index("ix_audit_events_pending", "audit_events", ["chain_id", "txid", "id"],
                    postgresql_where=PENDING, sqlite_where=PENDING)


def _link_pending() -> None:
    """Link every pending event after its chain's head, in the order of their transactions (as the server does)."""
    bind = op.get_bind()
    meta = sa.MetaData()
    events = sa.Table(  # the columns the hash covers, read with the types the server reads them with
        "audit_events", meta, sa.Column("id", sa.BigInteger(), primary_key=True), sa.Column("at", UTCDateTime()),
        sa.Column("org_id", sa.BigInteger()), sa.Column("action", sa.String(64)),
        sa.Column("object_type", sa.String(32)), sa.Column("object_id", sa.BigInteger()),
        sa.Column("details", JSONType), sa.Column("chain_id", sa.BigInteger()), sa.Column("seq", sa.BigInteger()),
        sa.Column("actor", sa.String(64)), sa.Column("prev_hash", sa.String(64)), sa.Column("hash", sa.String(64)),
        sa.Column("txid", sa.BigInteger()))
    heads = sa.Table("audit_heads", meta, sa.Column("chain_id", sa.BigInteger(), primary_key=True),
                     sa.Column("seq", sa.BigInteger()), sa.Column("hash", sa.String(64)))
    last = {row.chain_id: (row.seq, row.hash) for row in bind.execute(sa.select(heads))}
    rows = bind.execute(sa.select(events).where(events.c.seq.is_(None))
                        .order_by(events.c.txid, events.c.id)).mappings().all()
    for row in rows:
        chain = row["chain_id"]
        seq, prev = last.get(chain, (0, GENESIS))
        digest = event_hash({"org": row["org_id"], "seq": seq + 1, "at": time_text(row["at"]), "actor": row["actor"],
                             "action": row["action"], "object_type": row["object_type"],
                             "object_id": row["object_id"], "details": row["details"], "prev_hash": prev})
        bind.execute(events.update().where(events.c.id == row["id"]).values(seq=seq + 1, prev_hash=prev, hash=digest))
        if chain in last:
            bind.execute(heads.update().where(heads.c.chain_id == chain).values(seq=seq + 1, hash=digest))
        else:
            bind.execute(heads.insert().values(chain_id=chain, seq=seq + 1, hash=digest))
        last[chain] = (seq + 1, digest)


def downgrade() -> None:
    _link_pending()
    op.drop_index("ix_audit_events_pending", table_name="audit_events")
    with op.batch_alter_table("audit_heads") as batch:
        batch.drop_column("pending_from")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("txid")
        for name in LINKED:
            batch.alter_column(name, existing_type=sa.BigInteger() if name == "seq" else sa.String(64),
                               nullable=False)
