"""The audit log's statements: the event every recorded request writes (the annotation loop
writes two per answer), and linking pending events into their chain."""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    String,
    bindparam,
    case,
    column,
    func,
    insert,
    literal,
    literal_column,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnClause, ColumnElement

from qistas.db.models import AUDIT_PENDING, AuditEvent, AuditHead, Organization, table
from qistas.db.prepared import NewId, Prepared, Rowcount, insert_of

_heads = table(AuditHead)
_events = table(AuditEvent)


class Head(NamedTuple):
    seq: int
    hash: str
    pending_from: int


# The chain's head, locked until the transaction ends (PostgreSQL; SQLite has one writer).
HEAD = Prepared(
    select(_heads.c.seq, _heads.c.hash, _heads.c.pending_from).where(_heads.c.chain_id == bindparam("chain_id"))
    .with_for_update(),
    Head,
)

_EVENT_FIELDS = ["at", "actor_id", "org_id", "action", "object_type", "object_id", "details", "chain_id", "actor"]

# PostgreSQL: the oldest transaction still running when the statement began (every transaction
# that writes from now on has an id at least this), and the first id not yet given out.
_XMAX: ColumnClause[int] = literal_column("pg_snapshot_xmax(pg_current_snapshot())::text::bigint", BigInteger)


class Horizon(NamedTuple):
    xmin: int
    xmax: int


HORIZON = Prepared(select(literal_column("pg_snapshot_xmin(pg_current_snapshot())::text::bigint").label("xmin"),
                          _XMAX.label("xmax")), Horizon)

# A pending event (PostgreSQL): no seq, no hashes (``link`` gives them); the id of its
# transaction (given one if it has none yet).
NEW_EVENT = Prepared(
    insert(_events).values({**{name: bindparam(name, type_=_events.c[name].type) for name in _EVENT_FIELDS},
                            "txid": literal_column("pg_current_xact_id()::text::bigint")}).returning(_events.c.id),
    NewId,
)

# The fields an event written by another statement takes as parameters (``event_at`` and so
# on), its object id and details coming from that statement's rows.
EVENT_PARAMS = [name for name in _EVENT_FIELDS if name not in ("object_id", "details")]


def pending_event_of(rows: Any, *, object_id: ColumnElement[Any], details: ColumnElement[Any],
                     where: ColumnElement[bool]) -> Insert:
    """A pending event (``NEW_EVENT``) written by a statement that makes its object, inserted from
    ``rows`` (a CTE of that statement) where ``where`` holds, as a part of the same statement: a
    round trip fewer than ``NEW_EVENT`` after it. Its fields are the parameters ``event_<field>``
    (``EVENT_PARAMS``), its object id and details expressions over ``rows``."""
    values = {name: bindparam(f"event_{name}", type_=_events.c[name].type) for name in EVENT_PARAMS}
    return insert(_events).from_select(
        [*EVENT_PARAMS, "object_id", "details", "txid"],
        select(*values.values(), object_id, details, literal_column("pg_current_xact_id()::text::bigint"))
        .select_from(rows).where(where),
    )


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
    .values(seq=bindparam("seq", type_=_heads.c.seq.type), hash=bindparam("hash", type_=_heads.c.hash.type),
            pending_from=bindparam("pending_from", type_=_heads.c.pending_from.type)),
    Rowcount,
)

_PENDING_COLUMNS = (_events.c.id, _events.c.org_id, _events.c.at, _events.c.actor, _events.c.action,
                    _events.c.object_type, _events.c.object_id, _events.c.details, _events.c.txid)

# A chain's pending events written by transactions from ``pending_from`` on, in the order of
# their transactions, then as written (``ix_audit_events_pending``: the scan starts past the
# entries of the events linked before, which stay in the index until VACUUM removes them).
PENDING = (
    select(*_PENDING_COLUMNS)
    .where(_events.c.chain_id == bindparam("chain_id"), AUDIT_PENDING, _events.c.txid >= bindparam("pending_from"))
    .order_by(_events.c.txid, _events.c.id).limit(bindparam("limit"))
)

# The chains with pending events, without walking the pending index's dead entries: each chain
# (the instance's and every organization's) probed for one pending event from its head's
# ``pending_from`` on (from 0 for a chain not linked yet, or for one whose ``pending_from`` is
# beyond this cluster's transaction ids: a dump restored into a new cluster), a lateral index
# probe per chain.
_chains = union_all(select(literal(0, BigInteger).label("chain_id")),
                    select(table(Organization).c.id.label("chain_id"))).subquery()
_scan_from = case((_heads.c.pending_from > _XMAX, 0), else_=func.coalesce(_heads.c.pending_from, 0))
_first_pending = (
    select(_events.c.id)
    .where(_events.c.chain_id == _chains.c.chain_id, AUDIT_PENDING, _events.c.txid >= _scan_from)
    .limit(1).lateral()
)
PENDING_CHAINS = (
    select(_chains.c.chain_id)
    .select_from(_chains.outerjoin(_heads, _heads.c.chain_id == _chains.c.chain_id).join(_first_pending, true()))
)

# Give pending events their place in the chain: one statement for a chunk of them, its rows
# given as arrays (one per column, in step). A row per event through the driver's executemany
# cost the linker more than the hashing.
_links = (
    func.unnest(bindparam("event_ids", type_=ARRAY(BigInteger)), bindparam("seqs", type_=ARRAY(BigInteger)),
                bindparam("prev_hashes", type_=ARRAY(String)), bindparam("hashes", type_=ARRAY(String)))
    .table_valued(column("event_id", BigInteger), column("new_seq", BigInteger), column("new_prev_hash", String),
                  column("new_hash", String))
    .render_derived(name="links")
)
LINK = Prepared(
    update(_events).where(_events.c.id == _links.c.event_id, AUDIT_PENDING)
    .values(seq=_links.c.new_seq, prev_hash=_links.c.new_prev_hash, hash=_links.c.new_hash),
    Rowcount,
)
