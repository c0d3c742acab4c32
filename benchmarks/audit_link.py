"""How fast pending audit events are linked into their chain (``audit.link_pending``, what the
background worker runs), and what recording one costs.

Writes N events for one organization, as the annotation loop writes them (``audit.record``
with an annotator's pseudonym and ``{"assignment": id}``), R per transaction, then links them
all and reports events recorded and linked per second. On PostgreSQL the events are written
pending and linked afterwards, and it also reports the WAL bytes per event of recording and
of linking (``pg_current_wal_lsn`` around each phase); SQLite links each as it records it.

    python benchmarks/audit_link.py [--events 100000] [--database-url URL]

Without ``--database-url``, a throw-away SQLite file.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from qistas.db.engine import Database
from qistas.db.migrate import upgrade
from qistas.db.unit_of_work import write
from qistas.domain import audit, users
from qistas.domain.audit_chain import Signer, verify


def _wal(db: Database) -> int | None:
    if db.engine.dialect.name != "postgresql":
        return None
    with db.engine.connect() as connection:
        return int(connection.scalar(text("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")))


def run(url: str, events: int, per_transaction: int) -> None:
    upgrade(url)
    db = Database.from_url(url)
    with db.writer.begin() as session:
        slug = f"bench-{time.time_ns()}"
        org_id = users.create_org(session, name=slug, slug=slug).id
        annotator = users.create_user(session, email=f"{slug}@crowd.test", role="annotator")

    def record(session: object, start: int) -> None:
        for i in range(start, min(start + per_transaction, events)):
            audit.record(session, actor=annotator, action="task.take", object_type="task",  # type: ignore[arg-type]
                         object_id=i, org_id=org_id, details={"assignment": i},
                         pseudonym=lambda user_id: f"annotator-{user_id:010x}")

    wal0 = _wal(db)
    began = time.perf_counter()
    for start in range(0, events, per_transaction):
        write(db, lambda session, start=start: record(session, start))  # type: ignore[misc]
    recorded = time.perf_counter() - began
    wal1 = _wal(db)
    began = time.perf_counter()
    while audit.link_pending(db):
        pass
    linked = time.perf_counter() - began
    wal2 = _wal(db)
    print(f"{db.engine.dialect.name}: {events:,} events, {per_transaction} per transaction")
    if wal0 is None:  # SQLite links each event as it records it
        print(f"  recorded and linked: {recorded:.2f} s, {events / recorded:,.0f} events/s")
    else:
        print(f"  recorded (pending): {recorded:.2f} s, {events / recorded:,.0f} events/s")
        print(f"  linked: {linked:.2f} s, {events / linked:,.0f} events/s "
              f"({audit.LINK_CHUNK} per transaction)")
    if wal0 is not None and wal1 is not None and wal2 is not None:
        print(f"  WAL per event: recording {(wal1 - wal0) / events:,.0f} B, linking {(wal2 - wal1) / events:,.0f} B")
        with db.engine.connect() as connection:  # every event entered it once and left it when linked
            pending_index, events_table = connection.execute(text(
                "SELECT pg_relation_size('ix_audit_events_pending'), pg_total_relation_size('audit_events')")).one()
        print(f"  the pending-events index after: {pending_index / 1024:,.0f} KiB "
              f"(audit_events with its indexes: {events_table / 2**20:,.0f} MiB)")
    with db.reader() as session:
        lines = list(audit.export_lines(session, org_id=org_id, signer=Signer.from_secret("bench" * 8)))
    verdict = verify(lines)
    assert verdict.events == events and verdict.problem is None, verdict.problem
    print(f"  the exported chain verifies: {verdict.events:,} events")
    db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--per-transaction", type=int, default=100, help="events recorded per transaction")
    parser.add_argument("--database-url", help="default: a throw-away SQLite file")
    args = parser.parse_args()
    if args.database_url:
        run(args.database_url, args.events, args.per_transaction)
        return
    with tempfile.TemporaryDirectory() as folder:
        run(f"sqlite:///{Path(folder) / 'audit.db'}", args.events, args.per_transaction)


if __name__ == "__main__":
    main()
