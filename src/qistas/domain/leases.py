"""Named leases: a claim on background work that has no row of its own to lock (a project's refit).

A lease is one row of ``worker_leases``: a name, the claim that holds it and until when.
Claiming inserts the row, or takes it over once its ``until`` has passed, in one statement
whose row lock settles a race (on PostgreSQL the loser's UPDATE re-reads the row and finds it
held; SQLite runs one writer at a time). While the work runs, a thread renews the lease; a
process that dies stops renewing, and its lease runs out for another to take. Work that
writes its result checks in that same transaction that it still holds the lease
(``holds``), so a process that lost its lease (paused past it) never writes over the work of
the one that took over.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from qistas.db.dialect import insert_skipping_conflicts
from qistas.db.engine import Database
from qistas.db.models import WorkerLease, table
from qistas.db.types import utcnow
from qistas.db.unit_of_work import write

_leases = table(WorkerLease)
log = logging.getLogger("qistas.workers")


@dataclass
class Lease:
    name: str
    holder: str
    seconds: float
    lost: threading.Event = field(default_factory=threading.Event)


def new_holder() -> str:
    """A name for one claim: the machine and process (for whoever reads the table), and a nonce."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def claim(session: Session, *, name: str, holder: str, seconds: float, now: datetime) -> bool:
    """Take the lease ``name`` for ``holder`` if nobody holds it or its holder's time ran out."""
    until = now + timedelta(seconds=seconds)
    inserted = session.execute(
        insert_skipping_conflicts(session, _leases, ["name"]).returning(_leases.c.name),
        {"name": name, "holder": holder, "until": until},
    ).first()
    if inserted is not None:
        return True
    taken = session.execute(
        update(_leases).where(_leases.c.name == name, _leases.c.until < now)
        .values(holder=holder, until=until).returning(_leases.c.name)
    ).first()
    return taken is not None


def renew(session: Session, *, lease: Lease, now: datetime) -> bool:
    renewed = session.execute(
        update(_leases).where(_leases.c.name == lease.name, _leases.c.holder == lease.holder)
        .values(until=now + timedelta(seconds=lease.seconds)).returning(_leases.c.name)
    ).first()
    return renewed is not None


def holds(session: Session, *, lease: Lease) -> bool:
    """Whether ``lease`` is still this claim's; its row stays locked until the transaction ends,
    so no one takes it over before the work's result is committed."""
    if lease.lost.is_set():
        return False
    row = session.execute(select(_leases.c.holder).where(_leases.c.name == lease.name).with_for_update()).first()
    return row is not None and row.holder == lease.holder


def release(session: Session, *, lease: Lease) -> None:
    session.execute(delete(_leases).where(_leases.c.name == lease.name, _leases.c.holder == lease.holder))


@contextmanager
def held(db: Database, name: str, *, seconds: float) -> Iterator[Lease | None]:
    """The lease ``name`` while the block runs (None: another process holds it), renewed every
    third of ``seconds`` and released at the end."""
    lease = Lease(name=name, holder=new_holder(), seconds=seconds)
    if not write(db, lambda session: claim(session, name=name, holder=lease.holder, seconds=seconds, now=utcnow())):
        yield None
        return
    done = threading.Event()

    def keep() -> None:
        while not done.wait(seconds / 3):
            try:
                still = write(db, lambda session: renew(session, lease=lease, now=utcnow()))
            except Exception:  # the database is away: try again; the work's own write checks the lease
                log.warning("lease %s: renewal failed", name, exc_info=True)
                continue
            if not still:
                lease.lost.set()
                return

    renewer = threading.Thread(target=keep, name=f"qistas-lease-{name}", daemon=True)
    renewer.start()
    try:
        yield lease
    finally:
        done.set()
        renewer.join()
        write(db, lambda session: release(session, lease=lease))
