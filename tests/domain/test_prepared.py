"""Prepared statements: the values SQLAlchemy's own execution gives, at a fraction of its cost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pytest
from sqlalchemy import bindparam, inspect, select, update
from sqlalchemy.exc import IntegrityError, InvalidRequestError

from qistas.db.engine import Database
from qistas.db.models import Assignment, Project, Task, table
from qistas.db.prepared import Prepared, Rowcount, insert_of, select_entity
from qistas.db.queries.quality import RESCORE
from qistas.domain import imports, projects, users

_tasks = table(Task).c
_leases = table(Assignment).c
ARABIC = "الخدمة ممتازة"


class Lease(NamedTuple):
    id: int
    status: str
    expires_at: datetime


NEW_LEASE = Prepared(insert_of(table(Assignment), ["task_id", "project_id", "annotator_id", "status", "created_at",
                                                   "expires_at"], returning=["id", "status", "expires_at"]), Lease)
# "active" and the LIMIT are values fixed in the statement: Prepared writes them into its SQL.
LIVE = Prepared(select(_leases.id, _leases.status, _leases.expires_at)
                .where(_leases.task_id == bindparam("task_id"), _leases.status == "active").limit(5), Lease)
END = Prepared(update(table(Assignment)).where(_leases.task_id == bindparam("task_id"))
               .values(status="expired"), Rowcount)
TASK = select_entity(Task, _tasks.id == bindparam("task_id"))


def make_task(database: Database) -> tuple[int, int, int]:
    with database.writer.begin() as session:
        org = users.create_org(session, name="Acme", slug="acme")
        owner = users.create_user(session, email="owner@acme.test", role="owner", org_id=org.id)
        worker = users.create_user(session, email="w@crowd.test", role="annotator")
        project = projects.create_project(session, org_id=org.id, actor=owner, name="p",
                                          task={"type": "classification", "labels": ["a", "b"]})
        rows = [(1, {"data": {"text": ARABIC, "n": 1.5, "tags": ["x", None]}, "metadata": {"src": "ar"}})]
        imports.import_tasks(session, project=project, rows=rows)
        task = session.scalars(select(Task).where(Task.project_id == project.id)).one()
        return project.id, task.id, worker.id


def test_an_object_read_through_prepared_equals_the_orm_one(database: Database) -> None:
    _, task_id, _ = make_task(database)
    with database.reader() as session:
        prepared = TASK.first(session, task_id=task_id)
        orm = session.get(Task, task_id)
        assert prepared is not None and orm is not None and prepared is not orm
        for attribute in inspect(Task).column_attrs:
            assert getattr(prepared, attribute.key) == getattr(orm, attribute.key), attribute.key
        assert prepared.data["text"] == ARABIC and prepared.created_at.tzinfo is not None
        assert inspect(prepared).detached  # in no session: nothing can load behind our back
        assert TASK.first(session, task_id=task_id + 1000) is None


def test_values_round_trip_and_literals_in_the_statement_are_in_its_sql(database: Database) -> None:
    project_id, task_id, worker_id = make_task(database)
    now = datetime.now(UTC)
    with database.writer.begin() as session:
        made = NEW_LEASE.first(session, task_id=task_id, project_id=project_id, annotator_id=worker_id,
                               status="active", created_at=now, expires_at=now + timedelta(seconds=60))
        assert made is not None and made.status == "active" and made.expires_at == now + timedelta(seconds=60)
        assert LIVE.all(session, task_id=task_id) == [made]
        assert END.run(session, task_id=task_id) == 1
        assert LIVE.all(session, task_id=task_id) == []  # "active" really is in the WHERE clause
        compiled = LIVE._compiled[session.connection().dialect.name]
        assert "'active'" in compiled.sql and "active" not in compiled.literals.values()
        orm = session.get(Assignment, made.id)
        assert orm is not None and (orm.status, orm.expires_at) == ("expired", made.expires_at)


def test_runs_converted_before_the_transaction_are_run_in_one_call(database: Database) -> None:
    """``converted`` encodes each run's values (JSON here) with no transaction open; ``run_many``
    runs them all in the transaction, and what they wrote reads back as the ORM reads it."""
    project_id, task_id, _ = make_task(database)
    with database.writer.begin() as session:
        imports.import_tasks(session, project=session.get_one(Project, project_id), rows=[(2, {"data": {"text": "b"}})])
        other = session.scalars(select(Task.id).where(Task.project_id == project_id, Task.id != task_id)).one()
    dialect = database.engine.dialect
    values = [{"task_id": task_id, "response": {"label": "a", "note": ARABIC}, "confidence": 0.75, "method": "ds",
               "needs_review": True, "details": {"p": [0.75, 0.25]}},
              {"task_id": other, "response": {"label": "b"}, "confidence": 0.5, "method": "ds", "needs_review": False,
               "details": None}]
    runs = [RESCORE.converted(dialect, v) for v in values]
    assert all(run.dialect == dialect.name for run in runs)
    with database.writer.begin() as session:
        RESCORE.run_many(session, runs)
    with database.reader() as session:
        for v in values:
            task = session.get_one(Task, v["task_id"])
            assert (task.response, task.confidence, task.method, task.needs_review, task.details) == (
                v["response"], v["confidence"], v["method"], v["needs_review"], v["details"])
    elsewhere = "postgresql" if dialect.name == "sqlite" else "sqlite"
    runs[0] = type(runs[0])(elsewhere, runs[0].arguments)
    with pytest.raises(ValueError, match="another dialect"), database.writer.begin() as session:
        RESCORE.run_many(session, runs)


def test_a_driver_error_is_sqlalchemys_and_the_transaction_rolls_back(database: Database) -> None:
    project_id, task_id, worker_id = make_task(database)
    now = datetime.now(UTC)
    values: dict[str, Any] = {"task_id": task_id, "project_id": project_id, "annotator_id": worker_id,
                              "status": "active", "created_at": now, "expires_at": now}
    with pytest.raises(IntegrityError), database.writer.begin() as session:
        NEW_LEASE.first(session, **values)
        NEW_LEASE.first(session, **values)  # the same (task, annotator) twice
    with database.reader() as session:
        assert LIVE.all(session, task_id=task_id) == []  # the first insert went with the rollback


def test_statements_that_prepared_cannot_run_faithfully_are_refused_when_built() -> None:
    class Wrong(NamedTuple):
        id: int
        state: str

    with pytest.raises(TypeError, match="fields"):
        Prepared(select(_leases.id, _leases.status), Wrong)
    with pytest.raises(TypeError, match="created_at"):
        insert_of(table(Assignment), ["task_id", "project_id", "annotator_id", "status", "expires_at"])
    with pytest.raises(TypeError, match="expanding"):
        Prepared(select(_leases.id).where(_leases.id.in_(bindparam("ids", expanding=True))), tuple)


def test_fixed_words_and_numbers_are_written_into_the_sql_quoted(database: Database) -> None:
    """SQLite compiles a statement again each time a parameter compared with a partial index's
    column is bound (``tasks.status`` of ``ix_tasks_in_flight``): fixed values are in the SQL."""
    project_id, task_id, _ = make_task(database)
    open_ = Prepared(select(_tasks.id).where(_tasks.project_id == bindparam("project_id"), _tasks.status == "pending",
                                             _tasks.n_claimed < 1 + 2), Only)
    quoted = Prepared(select(_tasks.id).where(_tasks.status == "it's pending; --"), Only)
    with database.reader() as session:
        assert open_.all(session, project_id=project_id) == [Only(task_id)]
        assert quoted.all(session) == []  # the quote is doubled, not the end of the string
        compiled = open_._compiled[session.connection().dialect.name]
        assert "tasks.status = 'pending'" in compiled.sql and "tasks.n_claimed < 3" in compiled.sql
        assert compiled.literals == {}


class Only(NamedTuple):
    id: int


def test_each_transaction_of_a_session_runs_its_own_statements(database: Database) -> None:
    """The driver connection is noted per transaction: a statement after a rollback, inside a
    savepoint or after a failed flush runs where ``Session.connection()`` would have run it."""
    project_id, task_id, worker_id = make_task(database)
    now = datetime.now(UTC)
    lease = {"task_id": task_id, "project_id": project_id, "annotator_id": worker_id, "status": "active",
             "created_at": now, "expires_at": now + timedelta(seconds=60)}
    session = database.writer()
    try:
        with session.begin():
            assert NEW_LEASE.first(session, **lease) is not None
            session.rollback()
        with session.begin():
            assert LIVE.all(session, task_id=task_id) == []  # the rolled back insert is gone
            with session.begin_nested() as savepoint:
                NEW_LEASE.first(session, **lease)
                assert len(LIVE.all(session, task_id=task_id)) == 1
                savepoint.rollback()
            assert LIVE.all(session, task_id=task_id) == []
            made = NEW_LEASE.first(session, **lease)
        with session.begin():
            assert made is not None and LIVE.all(session, task_id=task_id) == [made]
            session.add(Assignment(**{**lease, "status": "expired"}))  # the same (task, annotator) again
            with pytest.raises(IntegrityError):
                session.flush()
            with pytest.raises(InvalidRequestError):  # as through the session itself
                LIVE.all(session, task_id=task_id)
    finally:
        session.close()
