"""Imports written in short transactions: a crash at any point leaves either nothing or,
once committed, the whole import (finished by the recovery)."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import func, select, update

from qistas.db.engine import Database
from qistas.db.models import AuditEvent, Batch, Project, StagedTask, Task, TaskImport
from qistas.db.types import utcnow
from qistas.db.unit_of_work import write
from qistas.domain import imports, projects, staged_imports, users
from qistas.errors import Conflict
from tests.factories import CLASSIFICATION


def _setup(database: Database) -> tuple[int, int]:
    with database.writer.begin() as session:
        org = users.create_org(session, name="Acme", slug="acme")
        owner = users.create_user(session, email="owner@acme.test", role="owner", org_id=org.id)
        project = projects.create_project(session, org_id=org.id, actor=owner, name="p", task=CLASSIFICATION,
                                          redundancy={"min": 1, "max": 1})
        return project.id, owner.id


def _checked(database: Database, project_id: int, n: int, batch: str | None = None) -> imports.CheckedRows:
    with database.reader() as session:
        plan = imports.plan_import(session, project=session.get(Project, project_id))
    extra = {"batch": batch} if batch else {}
    rows = [(i + 1, {"data": {"text": f"row {i}"}, "unique_id": f"u{i}", **extra}) for i in range(n)]
    return imports.check_rows(plan, rows)


def _staged(database: Database, project_id: int, owner_id: int, n: int, *, commit: bool,
            batch: str | None = None) -> int:
    import_id = write(database, partial(staged_imports.begin, project_id=project_id, actor_id=owner_id, now=utcnow()))
    with _checked(database, project_id, n, batch) as checked:
        staged_imports.stage_all(database, import_id=import_id, checked=checked)
        if commit:
            write(database, partial(staged_imports.commit, import_id=import_id, batch_ids=checked.batch_ids,
                                    now=utcnow()))
    return import_id


def _age(database: Database, import_id: int) -> None:
    """What the clock does to the import of a process that died."""
    old = utcnow() - staged_imports.STALE_AFTER - timedelta(seconds=1)
    with database.writer.begin() as session:
        session.execute(update(TaskImport).where(TaskImport.id == import_id).values(heartbeat_at=old))


def _count(database: Database, entity: Any, **where: Any) -> int:
    with database.reader() as session:
        query = select(func.count()).select_from(entity)
        for name, value in where.items():
            query = query.where(getattr(entity, name) == value)
        return int(session.scalar(query) or 0)


def test_an_import_that_died_while_staging_leaves_nothing(database: Database) -> None:
    project_id, owner_id = _setup(database)
    import_id = _staged(database, project_id, owner_id, 2500, commit=False)
    assert _count(database, StagedTask, import_id=import_id) == 2500
    assert staged_imports.recover(database) == 0  # alive: its heartbeat is fresh
    _age(database, import_id)
    assert staged_imports.recover(database) == 1
    assert _count(database, StagedTask) == _count(database, TaskImport) == _count(database, Task) == 0
    # The process was only slow, not dead: its next step learns the import is gone.
    with _checked(database, project_id, 3) as checked, pytest.raises(Conflict, match="abandoned"):
        staged_imports.stage_all(database, import_id=import_id, checked=checked)


def test_an_import_that_died_after_committing_is_finished_once(database: Database) -> None:
    project_id, owner_id = _setup(database)
    with database.writer.begin() as session:  # one row already there: a duplicate
        imports.import_tasks(session, project=session.get(Project, project_id),
                             rows=[(1, {"data": {"text": "x"}, "unique_id": "u7"})])
    import_id = _staged(database, project_id, owner_id, 5000, commit=True)
    write(database, partial(staged_imports.move, import_id=import_id, now=utcnow(), limit=1000))  # then it died
    assert _count(database, Task, project_id=project_id) == 1000  # committed: served already
    _age(database, import_id)
    assert staged_imports.recover(database) == 1
    assert staged_imports.recover(database) == 0
    assert _count(database, Task, project_id=project_id) == 5000
    assert _count(database, StagedTask) == _count(database, TaskImport) == 0
    with database.reader() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "tasks.import")).all()
        assert [e.details for e in events] == [{"created": 4999, "duplicates": 1}]
        assert events[0].actor_id == owner_id
        ids = session.scalars(select(Task.unique_id).where(Task.project_id == project_id).order_by(Task.id)).all()
    assert ids[:3] == ["u7", "u0", "u1"] and ids[-1] == "u4999"  # import order kept


def _batch(database: Database, project_id: int, name: str, action: str | None = None) -> int:
    with database.writer.begin() as session:
        batch = projects.create_batch(session, project=session.get(Project, project_id), name=name)
        if action:
            projects.change_batch(session, batch=batch, action=action)
        return batch.id


def _cancel(database: Database, batch_id: int) -> None:
    with database.writer.begin() as session:
        projects.change_batch(session, batch=session.get(Batch, batch_id), action="cancel")


def test_a_batch_canceled_before_the_commit_refuses_the_import(database: Database) -> None:
    project_id, owner_id = _setup(database)
    batch_id = _batch(database, project_id, "b1")
    import_id = _staged(database, project_id, owner_id, 10, commit=False, batch="b1")
    _cancel(database, batch_id)
    with pytest.raises(Conflict, match="canceled"):
        write(database, partial(staged_imports.commit, import_id=import_id, batch_ids={batch_id}, now=utcnow()))
    staged_imports.abandon_all(database, import_id=import_id)
    assert _count(database, TaskImport) == _count(database, StagedTask) == _count(database, Task) == 0


def test_a_batch_canceled_while_a_committed_import_moves_gets_its_tasks_canceled(database: Database) -> None:
    project_id, owner_id = _setup(database)
    batch_id = _batch(database, project_id, "b1", action="finalize")
    import_id = _staged(database, project_id, owner_id, 3000, commit=True, batch="b1")
    write(database, partial(staged_imports.move, import_id=import_id, now=utcnow(), limit=1000))
    _cancel(database, batch_id)
    staged_imports.move_all(database, import_id=import_id)
    with database.reader() as session:
        statuses = session.execute(select(Task.status, func.count()).where(Task.batch_id == batch_id)
                                   .group_by(Task.status)).all()
    assert dict(statuses) == {"canceled": 3000}


def test_a_batch_does_not_complete_while_a_committed_import_still_adds_to_it(database: Database) -> None:
    """Its only task is done, but 2000 more are on their way: completing it then would send
    `batch.completed` before the rest arrived."""
    project_id, owner_id = _setup(database)
    batch_id = _batch(database, project_id, "b1", action="finalize")
    import_id = _staged(database, project_id, owner_id, 2000, commit=True, batch="b1")
    with database.writer.begin() as session:
        batch = session.get(Batch, batch_id)
        session.add(Task(project_id=project_id, batch_id=batch_id, data={"text": "done"}, status="completed",
                         required=1, n_claimed=1, n_annotations=1))
        session.flush()
        assert projects.complete_batch_if_done(session, batch=batch) is False
    staged_imports.move_all(database, import_id=import_id)
    with database.reader() as session:
        assert session.get(Batch, batch_id).status == "in_progress"  # 2000 tasks wait now
