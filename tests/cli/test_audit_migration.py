"""The audit chain migration on a database that already holds events: they are linked into
their organization's chain in the order they were written, and the chain verifies."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import insert, text

from qistas.db.engine import Database
from qistas.db.migrate import upgrade
from qistas.db.models import AuditEvent
from qistas.db.types import utcnow
from qistas.db.unit_of_work import write
from qistas.domain import audit, users
from qistas.domain.audit_chain import Signer, verify
from tests.conftest import BACKEND, SECRET, database_at, fresh_database


def test_existing_events_become_verifiable_chains(tmp_path: Path) -> None:
    with fresh_database(tmp_path, None) as url:
        database = database_at(url, "0007_lifecycle")
        try:
            with database.writer.begin() as session:
                run = session.execute
                run(text("INSERT INTO organizations (id, name, slug, created_at) VALUES (1, 'A', 'a', '2026-01-01')"))
                run(text("INSERT INTO users (id, email, role, org_id, is_reviewer, is_active, created_at) "
                         "VALUES (1, 'w@crowd.test', 'annotator', NULL, false, true, '2026-01-01'), "
                         "(2, 'o@a.test', 'owner', 1, false, true, '2026-01-01')"))
                run(text("INSERT INTO audit_events (at, actor_id, org_id, action, object_type, object_id, details) "
                         "VALUES ('2026-01-01 10:00:00.123456', 2, 1, 'project.create', 'project', 7, NULL), "
                         "('2026-01-01 10:00:01', NULL, NULL, 'org.create', 'org', 1, NULL), "
                         "('2026-01-01 10:00:02', 1, 1, 'task.read', 'task', 9, NULL), "
                         "('2026-01-01 10:00:03', 2, 1, 'export', 'project', 7, "
                         "'{\"format\": \"csv\", \"n\": 2.0}')"))
            database.dispose()
            upgrade(url)
            database = Database.from_url(url)
            signer = Signer.from_secret(SECRET)
            write(database, lambda session: audit.record(session, actor=None, action="after.upgrade",
                                                         object_type="org", object_id=1, org_id=1))
            write(database, lambda session: audit.checkpoint(session, org_id=1, signer=signer))
            with database.reader() as session:
                lines = list(audit.export_lines(session, org_id=1, signer=signer))
                instance = list(audit.export_lines(session, org_id=None, signer=signer))
            verdict = verify(lines, public_key=signer.public_key)
            assert verdict.ok, verdict.problem
            assert verdict.events == 4 and verdict.checkpoints == 1
            # The annotator's account is not in the chain customers read.
            assert '"actor":"annotator"' in lines[2] and '"actor":"owner:2"' in lines[1]
            assert verify(instance).events == 1
        finally:
            database.dispose()


def test_pending_events_are_linked_when_the_migration_is_undone(tmp_path: Path) -> None:
    """Before 0023 every event was linked as it was written: going back links the pending ones
    after their chain's head, as the server would have, and the chain still verifies."""
    from alembic import command

    from qistas.db.migrate import alembic_config

    with fresh_database(tmp_path, None) as url:
        upgrade(url)
        database = Database.from_url(url)
        try:
            with database.writer.begin() as session:
                org_id = users.create_org(session, name="A", slug="a").id
            for i in range(3):
                write(database, lambda session, i=i: audit.record(  # type: ignore[misc]
                    session, actor=None, action="x", object_type="org", object_id=i, org_id=org_id,
                    details={"i": i, "text": "نص", "whole": 2.0}))
            audit.link_pending(database)  # three linked, then two pending (as PostgreSQL records them)
            for i in range(3, 5):
                with database.writer.begin() as session:
                    if BACKEND == "postgresql":  # written pending
                        audit.record(session, actor=None, action="x", object_type="org", object_id=i, org_id=org_id,
                                     details={"whole": 2.0})
                    else:  # SQLite links as it records: a pending row as PostgreSQL writes one
                        session.execute(insert(AuditEvent).values(
                            at=utcnow(), actor_id=None, org_id=org_id, action="x", object_type="org", object_id=i,
                            details={"whole": 2.0}, chain_id=org_id, actor="system"))
            database.dispose()
            command.downgrade(alembic_config(url), "0022_active_learning")
            database = Database.from_url(url)
            with database.reader() as session:
                seqs = session.execute(text("SELECT seq, object_id FROM audit_events ORDER BY id")).all()
            assert [tuple(row) for row in seqs] == [(1, 0), (2, 1), (3, 2), (4, 3), (5, 4)]
            database.dispose()
            upgrade(url)
            database = Database.from_url(url)
            signer = Signer.from_secret(SECRET)
            write(database, lambda session: audit.checkpoint(session, org_id=org_id, signer=signer))
            with database.reader() as session:
                verdict = verify(list(audit.export_lines(session, org_id=org_id, signer=signer)),
                                 public_key=signer.public_key)
            assert verdict.ok and verdict.events == 5, verdict.problem
        finally:
            database.dispose()
