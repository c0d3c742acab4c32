"""The audit log's statements: the event every recorded request writes (the annotation loop
writes two per answer), and linking pending events into their chain."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import bindparam, select, update

from qistas.db.models import AUDIT_PENDING, AuditEvent, AuditHead, table
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

_EVENT_FIELDS = ["at", "actor_id", "org_id", "action", "object_type", "object_id", "details", "chain_id", "actor"]

# A pending event: no seq, no hashes (``link`` gives them).
NEW_EVENT = Prepared(insert_of(_events, _EVENT_FIELDS, returning=["id"]), NewId)

# An event linked as it is written (SQLite, where writers take turns).
NEW_LINKED_EVENT = Prepared(insert_of(_events, [*_EVENT_FIELDS, "seq", "prev_hash", "hash"], returning=["id"]), NewId)

# The head moved on from the seq and hash a new event links to; no row (0) when it is no
# longer there.
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

# The oldest pending events of a chain, in the order they were written (``ix_audit_events_pending``).
PENDING = (
    select(_events.c.id, _events.c.org_id, _events.c.at, _events.c.actor, _events.c.action, _events.c.object_type,
           _events.c.object_id, _events.c.details)
    .where(_events.c.chain_id == bindparam("chain_id"), AUDIT_PENDING)
    .order_by(_events.c.id).limit(bindparam("limit"))
)

# The chains with pending events.
PENDING_CHAINS = select(_events.c.chain_id).where(AUDIT_PENDING).distinct()

# Give a pending event its place in the chain (one row per event, executed as a batch).
LINK = (
    update(_events).where(_events.c.id == bindparam("event_id"), AUDIT_PENDING)
    .values(seq=bindparam("new_seq"), prev_hash=bindparam("new_prev_hash"), hash=bindparam("new_hash"))
)
