"""Append-only audit trail of who read or changed customer data, hash-chained per organization.

``record`` adds an event in the caller's transaction: it locks its chain's head row
(``audit_heads``; ``SELECT ... FOR UPDATE`` on PostgreSQL, SQLite's writers are serialised
already), links the event to the head and moves the head. Two transactions recording for one
organization therefore take turns, and a chain stays linear and without gaps. Routes record
last, so the head row is held only for the end of their transaction. A process remembers the
head it last wrote for each chain and tries that first: one ``UPDATE`` that moves the head
only from exactly that seq and hash checks, locks and moves it at once (two statements per
event instead of three); when another writer came between, it changes nothing and the head
is read and locked as above.

Checkpoints sign a chain's head (``audit_chain.Signer``): on request, and from the
background worker once a chain has grown by ``CHECKPOINT_EVERY`` events since its last one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qistas.db.dialect import insert_skipping_conflicts
from qistas.db.engine import Database
from qistas.db.enums import Role
from qistas.db.models import AuditCheckpoint, AuditEvent, AuditHead, User, table
from qistas.db.queries import audit as queries
from qistas.db.types import utcnow
from qistas.db.unit_of_work import read, write
from qistas.domain.audit_chain import (
    EXPORT_FORMAT,
    GENESIS,
    Signer,
    event_hash,
    normal_details,
    time_text,
)

CHECKPOINT_EVERY = 1000
INSTANCE_CHAIN = 0  # the chain of events without an organization (the operator's actions)

_heads = table(AuditHead)


def chain_of(org_id: int | None) -> int:
    return INSTANCE_CHAIN if org_id is None else org_id


def actor_name(actor: User | None, pseudonym: Callable[[int], str] | None = None) -> str:
    """The actor as the chain names it. An annotator appears under the organization's
    pseudonym for them (never their account), or as "annotator" where none is given."""
    if actor is None:
        return "system"
    if actor.role in (Role.ADMIN, Role.OWNER, Role.MEMBER):
        return f"{actor.role}:{actor.id}"
    return pseudonym(actor.id) if pseudonym is not None else "annotator"


def record(
    session: Session,
    *,
    actor: User | None,
    action: str,
    object_type: str,
    object_id: int | None,
    org_id: int | None,
    details: dict[str, Any] | None = None,
    pseudonym: Callable[[int], str] | None = None,
) -> None:
    """Append an event to the organization's chain (``org_id`` None: the instance's chain), in
    the caller's transaction. ``pseudonym`` names an annotator as the event's project shows them."""
    chain = chain_of(org_id)
    name = actor_name(actor, pseudonym)
    plain = normal_details(details)
    hint = _last_heads.get(chain)
    if hint is not None:  # link to the head this process last gave the chain, if it still is the head
        seq, prev_hash = hint
        at = utcnow()
        digest = _link(org_id, seq + 1, at, name, action, object_type, object_id, plain, prev_hash)
        if not queries.ADVANCE_HEAD.run(session, chain_id=chain, prev_seq=seq, prev_hash=prev_hash, seq=seq + 1,
                                        hash=digest):
            hint = None  # another writer moved it: read it, as without a hint
    if hint is None:
        seq, prev_hash = _lock_head(session, chain)
        at = utcnow()  # taken under the head's lock: along a chain, times follow seq (on one clock)
        digest = _link(org_id, seq + 1, at, name, action, object_type, object_id, plain, prev_hash)
        queries.MOVE_HEAD.run(session, chain_id=chain, seq=seq + 1, hash=digest)
    queries.NEW_EVENT.first(
        session, at=at, actor_id=actor.id if actor else None, org_id=org_id, action=action, object_type=object_type,
        object_id=object_id, details=plain, chain_id=chain, seq=seq + 1, actor=name, prev_hash=prev_hash,
        hash=digest)
    _last_heads[chain] = (seq + 1, digest)


# The head (seq, hash) each chain had when this process last linked an event to it: a guess
# that saves reading the head row for the next event. It is only ever used through
# ``ADVANCE_HEAD``, which moves the head only if the row still holds exactly that seq and
# hash, and locks it then (the row lock of ``SELECT ... FOR UPDATE``, on PostgreSQL). Stale
# (another process or connection wrote since, or the transaction that set it rolled back),
# it moves nothing and the head is read and locked as without it. The event's time is taken
# after the guess is read, so it is no earlier than the event it links to.
_last_heads: dict[int, tuple[int, str]] = {}


def _link(org_id: int | None, seq: int, at: datetime, actor: str, action: str, object_type: str,
          object_id: int | None, details: dict[str, Any] | None, prev_hash: str) -> str:
    """The hash of the event with these fields (``audit_chain.event_hash``; they are JSON values)."""
    return event_hash({"org": org_id, "seq": seq, "at": time_text(at), "actor": actor, "action": action,
                       "object_type": object_type, "object_id": object_id, "details": details,
                       "prev_hash": prev_hash}, plain=True)


def _lock_head(session: Session, chain: int) -> tuple[int, str]:
    """The chain's last seq and hash, its head row locked until the transaction ends."""
    head = queries.HEAD.first(session, chain_id=chain)
    if head is None:  # the chain's first event; a concurrent first writer may have won
        session.execute(insert_skipping_conflicts(session, _heads, ["chain_id"]),
                        {"chain_id": chain, "seq": 0, "hash": GENESIS})
        head = queries.HEAD.first(session, chain_id=chain)
        assert head is not None
    return head.seq, head.hash


def checkpoint(session: Session, *, org_id: int | None, signer: Signer) -> AuditCheckpoint | None:
    """Sign the chain's head now (none for a chain without events); an already signed head
    gives its existing checkpoint."""
    chain = chain_of(org_id)
    head = session.execute(select(_heads.c.seq, _heads.c.hash).where(_heads.c.chain_id == chain)
                           .with_for_update()).first()
    if head is None or head.seq == 0:
        return None
    found = session.scalar(select(AuditCheckpoint).where(AuditCheckpoint.chain_id == chain,
                                                         AuditCheckpoint.seq == head.seq))
    if found is not None:
        return found
    at = utcnow()
    signature = signer.sign({"org": org_id, "seq": head.seq, "hash": head.hash, "at": time_text(at),
                             "key_id": signer.key_id})
    signed = AuditCheckpoint(chain_id=chain, org_id=org_id, seq=head.seq, hash=head.hash, at=at,
                             key_id=signer.key_id, signature=signature)
    session.add(signed)
    session.flush()
    return signed


def chains_due(session: Session, *, every: int = CHECKPOINT_EVERY) -> list[int | None]:
    """The organizations (None: the instance's chain) whose chain grew by ``every`` events or
    more since its last checkpoint."""
    last = (select(AuditCheckpoint.chain_id, func.max(AuditCheckpoint.seq).label("seq"))
            .group_by(AuditCheckpoint.chain_id).subquery())
    rows = session.execute(
        select(_heads.c.chain_id).outerjoin(last, last.c.chain_id == _heads.c.chain_id)
        .where(_heads.c.seq - func.coalesce(last.c.seq, 0) >= every).order_by(_heads.c.chain_id)
    ).scalars()
    return [None if chain == INSTANCE_CHAIN else chain for chain in rows]


def sign_due(db: Database, *, signer: Signer, every: int = CHECKPOINT_EVERY) -> bool:
    """Checkpoint every chain that is due, each in its own transaction; whether any was."""
    due = read(db, lambda session: chains_due(session, every=every))
    for org_id in due:
        write(db, lambda session, org_id=org_id: checkpoint(session, org_id=org_id, signer=signer))  # type: ignore[misc]
    return bool(due)


@dataclass(frozen=True)
class EventFilter:
    action: str | None = None
    actor: str | None = None
    object_type: str | None = None
    object_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


def events_page(session: Session, *, org_id: int | None, after: int | None, limit: int,
                where: EventFilter, before: int | None = None) -> list[AuditEvent]:
    """Events of the organization's chain in order, after the event ``seq`` = ``after``; with
    ``before``, the last ``limit`` events before that ``seq`` (still in chain order)."""
    query = select(AuditEvent).where(AuditEvent.chain_id == chain_of(org_id))
    if after is not None:
        query = query.where(AuditEvent.seq > after)
    if before is not None:
        query = query.where(AuditEvent.seq < before)
    if where.action is not None:
        query = query.where(AuditEvent.action == where.action)
    if where.actor is not None:
        query = query.where(AuditEvent.actor == where.actor)
    if where.object_type is not None:
        query = query.where(AuditEvent.object_type == where.object_type)
    if where.object_id is not None:
        query = query.where(AuditEvent.object_id == where.object_id)
    if where.since is not None:
        query = query.where(AuditEvent.at >= where.since)
    if where.until is not None:
        query = query.where(AuditEvent.at < where.until)
    if before is not None:
        return list(reversed(session.scalars(query.order_by(AuditEvent.seq.desc()).limit(limit)).all()))
    return list(session.scalars(query.order_by(AuditEvent.seq).limit(limit)))


def checkpoints(session: Session, *, org_id: int | None, upto: int | None = None) -> list[AuditCheckpoint]:
    query = select(AuditCheckpoint).where(AuditCheckpoint.chain_id == chain_of(org_id))
    if upto is not None:
        query = query.where(AuditCheckpoint.seq <= upto)
    return list(session.scalars(query.order_by(AuditCheckpoint.seq)))


def last_checkpoint(session: Session, *, org_id: int | None) -> AuditCheckpoint | None:
    return session.scalars(select(AuditCheckpoint).where(AuditCheckpoint.chain_id == chain_of(org_id))
                           .order_by(AuditCheckpoint.seq.desc()).limit(1)).first()


def event_fields(event: AuditEvent) -> dict[str, Any]:
    """The event as the chain hashes it, with its hash."""
    return {"org": event.org_id, "seq": event.seq, "at": time_text(event.at), "actor": event.actor,
            "action": event.action, "object_type": event.object_type, "object_id": event.object_id,
            "details": event.details, "prev_hash": event.prev_hash, "hash": event.hash}


def checkpoint_fields(signed: AuditCheckpoint) -> dict[str, Any]:
    return {"org": signed.org_id, "seq": signed.seq, "hash": signed.hash, "at": time_text(signed.at),
            "key_id": signed.key_id, "signature": signed.signature}


def export_lines(session: Session, *, org_id: int | None, signer: Signer, chunk: int = 1000) -> Iterator[str]:
    """The whole chain as JSON lines: a header, every event from 1, then the checkpoints up to
    the last event exported (what ``qistas audit verify`` reads)."""
    yield _line({"type": "audit-log", "format": EXPORT_FORMAT, "org": org_id, "public_key": signer.public_key,
                 "key_id": signer.key_id})
    last = 0
    while True:
        page = events_page(session, org_id=org_id, after=last, limit=chunk, where=EventFilter())
        for event in page:
            yield _line({"type": "event", **event_fields(event)})
        if len(page) < chunk:
            break
        last = page[-1].seq
    last = page[-1].seq if page else last
    for signed in checkpoints(session, org_id=org_id, upto=last):
        yield _line({"type": "checkpoint", **checkpoint_fields(signed)})


def _line(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n"
