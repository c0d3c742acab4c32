"""Append-only audit trail of who read or changed customer data, hash-chained per organization.

On PostgreSQL, ``record`` adds an event in the caller's transaction, pending: one ``INSERT``,
no chain yet. ``link`` gives pending events their place in their chain after their
transactions commit: it locks the chain's head row (``audit_heads``, ``SELECT ... FOR
UPDATE``), numbers the chain's pending events after the head in the order of their
transactions, hashes each as it reads back from the database, and moves the head. The background
worker links every chain about once a second (``keep_chains``); reading the log, exporting it
and signing a checkpoint link the organization's pending events first, in their own
transaction, so they see every event committed before them. So no request waits on another
to record its event: the head row, which every recorded request of an organization would
otherwise lock until its commit, is held only by ``link`` (``docs/scaling.md``, section 3.2).
An event is tamper-evident once linked, a second or so after its commit.

On SQLite, whose writers take turns anyway (no request can wait on another's head), ``record``
links the event at once, in the request's transaction: linking it later would cost a second
write of every event and a background writer taking turns with the loop's (measured: 20-40
ms more in the loop's p99).

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

from qistas.db.dialect import insert_skipping_conflicts, locks_claimed_rows
from qistas.db.engine import Database, is_sqlite
from qistas.db.enums import Role
from qistas.db.models import AuditCheckpoint, AuditEvent, AuditHead, Project, User, table
from qistas.db.queries import audit as queries
from qistas.db.types import utcnow
from qistas.db.unit_of_work import read, write
from qistas.domain.audit_chain import (
    EXPORT_FORMAT,
    GENESIS,
    Signer,
    event_hash,
    is_plain,
    normal_details,
    time_text,
)
from qistas.domain.security import pseudonyms

CHECKPOINT_EVERY = 1000
LINK_CHUNK = 1000  # pending events linked per transaction (200 took 2.5 times as long per event)
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
    at: datetime | None = None,
) -> None:
    """Write an event for the organization's chain (``org_id`` None: the instance's chain), in
    the caller's transaction: pending until ``link`` (PostgreSQL), or linked at once (SQLite).
    ``pseudonym`` names an annotator as the event's project shows them; ``at``: the time of
    what it records (now if not given)."""
    chain = chain_of(org_id)
    fields = _fields(actor=actor, action=action, object_type=object_type, org_id=org_id, pseudonym=pseudonym,
                     at=at or utcnow())
    fields.update(object_id=object_id, details=normal_details(details))
    if _links_later(session):
        queries.NEW_EVENT.first(session, **fields)
        return
    hint = _last_heads.get(chain)
    if hint is not None:  # link to the head this process last gave the chain, if it still is the head
        seq, prev_hash = hint
        digest = _link(fields, seq + 1, prev_hash)
        if not queries.ADVANCE_HEAD.run(session, chain_id=chain, prev_seq=seq, prev_hash=prev_hash, seq=seq + 1,
                                        hash=digest):
            hint = None  # another process moved it: read it, as without a hint
    if hint is None:
        seq, prev_hash, pending_from = _lock_head(session, chain)
        digest = _link(fields, seq + 1, prev_hash)
        queries.MOVE_HEAD.run(session, chain_id=chain, seq=seq + 1, hash=digest, pending_from=pending_from)
    queries.NEW_LINKED_EVENT.first(session, **fields, seq=seq + 1, prev_hash=prev_hash, hash=digest)
    _last_heads[chain] = (seq + 1, digest)


@dataclass(frozen=True)
class LoopEvents:
    """The audit events of one annotator's loop (a take, an answer, an exam's result), written
    in the transaction by the domain function that makes their object, the annotator under
    their pseudonym in the project. On PostgreSQL the take's and the answer's are written by
    the statement that makes the lease or the annotation (``params``): a round trip fewer each."""

    actor: User
    secret: str

    def record(self, session: Session, *, project: Project, action: str, object_type: str, object_id: int,
               details: dict[str, Any] | None = None, at: datetime | None = None) -> None:
        record(session, actor=self.actor, action=action, object_type=object_type, object_id=object_id,
               org_id=project.org_id, details=details, pseudonym=pseudonyms(self.secret, project.id), at=at)

    def params(self, *, project: Project, action: str, object_type: str, at: datetime) -> dict[str, Any]:
        """The ``event_`` parameters of a statement that writes the event with its object
        (``queries.pending_event_of``): the object id and details are the statement's."""
        fields = _fields(actor=self.actor, action=action, object_type=object_type, org_id=project.org_id,
                         pseudonym=pseudonyms(self.secret, project.id), at=at)
        return {f"event_{name}": value for name, value in fields.items()}


# A statement that can write an event with its object, told to write none.
NO_EVENT: dict[str, Any] = {f"event_{name}": None for name in queries.EVENT_PARAMS}


def _fields(*, actor: User | None, action: str, object_type: str, org_id: int | None,
            pseudonym: Callable[[int], str] | None, at: datetime) -> dict[str, Any]:
    """An event's fields but its object id and details (``queries.EVENT_PARAMS``)."""
    return {"at": at, "actor_id": actor.id if actor else None, "org_id": org_id, "action": action,
            "object_type": object_type, "chain_id": chain_of(org_id), "actor": actor_name(actor, pseudonym)}


# SQLite: the head (seq, hash) each chain had when this process last linked an event to it, a
# guess that saves reading the head row for the next event. It is only ever used through
# ``ADVANCE_HEAD``, which moves the head only if the row still holds exactly that seq and hash.
# Stale (another process wrote since, or the transaction that set it rolled back), it moves
# nothing and the head is read as without it.
_last_heads: dict[int, tuple[int, str]] = {}


def _link(fields: dict[str, Any], seq: int, prev_hash: str) -> str:
    """The hash of the event being recorded (its fields are JSON values already)."""
    return event_hash({"org": fields["org_id"], "seq": seq, "at": time_text(fields["at"]), "actor": fields["actor"],
                       "action": fields["action"], "object_type": fields["object_type"],
                       "object_id": fields["object_id"], "details": fields["details"], "prev_hash": prev_hash},
                      plain=True)


def link(session: Session, *, chain: int, limit: int = LINK_CHUNK) -> int:
    """Link up to ``limit`` of the chain's pending events, oldest first, after its head;
    return how many (none on SQLite, which links each event as it is written). The head stays
    locked until the transaction ends.

    An event is hashed as it reads back from the database (its time, its details), which is
    what an export gives and a verifier recomputes. Events are linked among those committed by
    now, in the order of their transactions' ids, then as written: one whose transaction
    commits later than a newer one's may be linked after it, and times along a chain are not
    always in order.

    The scan of the pending index starts at the head's ``pending_from``, not at the chain's
    first entry: a linked event's entry stays in the index (dead) until VACUUM, and scanning
    from the start would walk every event linked since the last one, slower with each link.
    ``pending_from`` moves up to the oldest transaction still running when this scan began
    (none older can write another pending event), or to the last event linked when the chunk
    was full."""
    if not _links_later(session):
        return 0
    seq, prev_hash, pending_from = _lock_head(session, chain)
    ids = queries.HORIZON.first(session)
    assert ids is not None
    if pending_from > ids.xmax:  # ids of another cluster (a dump restored into a new one): scan it all
        pending_from = 0
    rows = session.execute(queries.PENDING, {"chain_id": chain, "pending_from": pending_from, "limit": limit}).all()
    if not rows:
        return 0
    first = seq + 1
    prev_hashes, hashes = [], []
    for row in rows:
        seq += 1
        digest = event_hash({"org": row.org_id, "seq": seq, "at": time_text(row.at), "actor": row.actor,
                             "action": row.action, "object_type": row.object_type, "object_id": row.object_id,
                             "details": row.details, "prev_hash": prev_hash}, plain=is_plain(row.details))
        prev_hashes.append(prev_hash)
        hashes.append(digest)
        prev_hash = digest
    queries.LINK.run(session, event_ids=[row.id for row in rows], seqs=list(range(first, seq + 1)),
                     prev_hashes=prev_hashes, hashes=hashes)
    horizon = min(ids.xmin, rows[-1].txid) if len(rows) == limit else ids.xmin  # a full chunk: more may follow
    queries.MOVE_HEAD.run(session, chain_id=chain, seq=seq, hash=prev_hash, pending_from=max(pending_from, horizon))
    return len(rows)


def link_chain(session: Session, *, org_id: int | None) -> int:
    """Link all of the organization's pending events (what a reader of its log does first)."""
    linked = 0
    while True:
        count = link(session, chain=chain_of(org_id))
        linked += count
        if count < LINK_CHUNK:
            return linked


def link_pending(db: Database, *, chunk: int = LINK_CHUNK) -> bool:
    """Link every chain's pending events, ``chunk`` of them per transaction; whether any chain
    may have more."""
    if is_sqlite(db.engine):
        return False  # each event was linked as it was written
    chains = read(db, lambda session: list(session.scalars(queries.PENDING_CHAINS)))
    more = False
    for chain in chains:
        linked = write(db, lambda session, chain=chain: link(session, chain=chain, limit=chunk))  # type: ignore[misc]
        more = more or linked == chunk
    return more


def keep_chains(db: Database, *, signer: Signer, every: int = CHECKPOINT_EVERY) -> bool:
    """The background worker's step: link pending events, then sign the chains that are due.
    Whether there may be more to do at once."""
    more = link_pending(db)
    return sign_due(db, signer=signer, every=every) or more


def _links_later(session: Session) -> bool:
    """Whether events are written pending and linked after their commit: PostgreSQL, where
    writers run at once. SQLite's writers take turns, so no one can wait on another's head."""
    return locks_claimed_rows(session)


def _lock_head(session: Session, chain: int) -> queries.Head:
    """The chain's head, its row locked until the transaction ends (made for its first event)."""
    head = queries.HEAD.first(session, chain_id=chain)
    if head is None:  # the chain's first event; a concurrent first writer may have won
        session.execute(insert_skipping_conflicts(session, _heads, ["chain_id"]),
                        {"chain_id": chain, "seq": 0, "hash": GENESIS})
        head = queries.HEAD.first(session, chain_id=chain)
        assert head is not None
    return head


def checkpoint(session: Session, *, org_id: int | None, signer: Signer) -> AuditCheckpoint | None:
    """Sign the chain's head now, after linking its pending events (none for a chain without
    events); an already signed head gives its existing checkpoint."""
    chain = chain_of(org_id)
    link_chain(session, org_id=org_id)
    head = queries.HEAD.first(session, chain_id=chain)
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
    query = select(AuditEvent).where(AuditEvent.chain_id == chain_of(org_id), AuditEvent.seq.is_not(None))
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
        page = [event_fields(event) for event in events_page(session, org_id=org_id, after=last, limit=chunk,
                                                             where=EventFilter())]
        for fields in page:
            yield _line({"type": "event", **fields})
        if page:
            last = page[-1]["seq"]
        if len(page) < chunk:
            break
    for signed in checkpoints(session, org_id=org_id, upto=last):
        yield _line({"type": "checkpoint", **checkpoint_fields(signed)})


def _line(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n"
