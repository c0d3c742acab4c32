"""The audit chain's statements, run for every event (the annotation loop writes two per answer)."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import bindparam, select, update

from qistas.db.models import AuditEvent, AuditHead, table
from qistas.db.prepared import NewId, Prepared, Rowcount, insert_of

_heads = table(AuditHead)
_events = table(AuditEvent)


class Head(NamedTuple):
    seq: int
    hash: str


# The chain's head, locked until the transaction ends (PostgreSQL; SQLite has one writer).
HEAD = Prepared(
    select(_heads.c.seq, _heads.c.hash).where(_heads.c.chain_id == bindparam("chain_id")).with_for_update(),
    Head,
)

NEW_EVENT = Prepared(
    insert_of(_events, ["at", "actor_id", "org_id", "action", "object_type", "object_id", "details", "chain_id",
                        "seq", "actor", "prev_hash", "hash"], returning=["id"]),
    NewId,
)

# The head moved on from the seq and hash a new event links to; no row (0) when it is no
# longer there. The row is locked by the UPDATE (on PostgreSQL, after waiting for a writer
# that holds it, whose move this one then no longer matches).
ADVANCE_HEAD = Prepared(
    update(_heads)
    .where(_heads.c.chain_id == bindparam("chain_id"), _heads.c.seq == bindparam("prev_seq", type_=_heads.c.seq.type),
           _heads.c.hash == bindparam("prev_hash", type_=_heads.c.hash.type))
    .values(seq=bindparam("seq", type_=_heads.c.seq.type), hash=bindparam("hash", type_=_heads.c.hash.type)),
    Rowcount,
)

MOVE_HEAD = Prepared(
    update(_heads).where(_heads.c.chain_id == bindparam("chain_id"))
    .values(seq=bindparam("seq", type_=_heads.c.seq.type), hash=bindparam("hash", type_=_heads.c.hash.type)),
    Rowcount,
)
