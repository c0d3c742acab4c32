"""PostgreSQL's claim in one function (``qistas_take``, migrations 0024 and 0027) against the claim a
statement at a time (``claim_by_statements``, SQLite's): at every step of a project's life the
two must lease the same task, give back the same held lease, refuse the same annotator and sweep
the same expired leases (``SWEPT_PER_CLAIM`` of them first, the rest when they find no task).

Each step runs both claims in one transaction, each inside a savepoint rolled back after it is
read (the database as it was for both), then lets one of them happen, alternately, so the
project moves on through started tasks, unstarted ones, gold, a paused batch, a canceled one,
expired leases, a blocked annotator and one on probation.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from qistas.db.engine import Database
from qistas.db.enums import LeaseStatus
from qistas.db.models import Assignment, Batch, Project, Task, User, WorkerStats
from qistas.db.types import utcnow
from qistas.domain import annotations, assignments, imports, projects, users
from qistas.errors import Forbidden
from tests.conftest import BACKEND
from tests.factories import CLASSIFICATION

pytestmark = pytest.mark.skipif(BACKEND != "postgresql", reason="the function is PostgreSQL's")

LEASE = 600


def _state(session: Session, project_id: int) -> list[tuple[Any, ...]]:
    """What a claim may change: every task's slots and every lease of the project."""
    tasks = session.execute(select(Task.id, Task.status, Task.n_claimed, Task.required)
                            .where(Task.project_id == project_id).order_by(Task.id)).all()
    leases = session.execute(select(Assignment.id, Assignment.task_id, Assignment.annotator_id, Assignment.status)
                             .where(Assignment.project_id == project_id).order_by(Assignment.id)).all()
    return [tuple(row) for row in tasks] + [("lease", *row[1:]) for row in leases]


def _outcome(claim: Any, session: Session, **kwargs: Any) -> tuple[Any, ...]:
    savepoint = session.begin_nested()
    try:
        claimed = claim(session, **kwargs)
        outcome: tuple[Any, ...] = ("none",) if claimed is None else (
            "lease", claimed[0].task_id, claimed[0].status, claimed[0].expires_at, claimed[1].status,
            claimed[1].data)
    except Forbidden:
        outcome = ("blocked",)
    after = _state(session, kwargs["project"].id)
    savepoint.rollback()
    return outcome, after


@pytest.mark.parametrize("sweep", [assignments.SWEPT_PER_CLAIM, 1], ids=["every expired lease", "one at a time"])
@pytest.mark.parametrize("ranked", [False, True], ids=["import order", "active learning's order"])
def test_the_function_claims_as_the_statements_do(database: Database, ranked: bool, sweep: int,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """``sweep``: the expired leases a claim gives back before it looks (one: the rest are left to
    the next claims, or given back when the claim finds nothing)."""
    monkeypatch.setattr(assignments, "SWEPT_PER_CLAIM", sweep)
    rng = random.Random(7)
    with database.writer.begin() as session:
        org = users.create_org(session, name="Acme", slug="acme")
        owner = users.create_user(session, email="owner@acme.test", role="owner", org_id=org.id)
        project = projects.create_project(session, org_id=org.id, actor=owner, name="claims", task=CLASSIFICATION,
                                          redundancy={"min": 2, "max": 2})
        project.gold_policy = {"share": 0.3, "min_answers": 3, "min_accuracy": 0.9}
        batch = projects.create_batch(session, project=project, name="b")
        imports.import_tasks(session, project=project, rows=[(n, {"data": {"text": f"batched {n}"}, "batch": "b"})
                                                             for n in range(6)])
        projects.change_batch(session, batch=batch, action="finalize")
        rows = [(n, {"data": {"text": f"free {n}"}}) for n in range(10)]
        rows += [(10 + n, {"data": {"text": f"gold {n}"}, "gold": {"label": "positive"}}) for n in range(6)]
        imports.import_tasks(session, project=project, rows=rows)
        if ranked:  # unstarted tasks served by the background job's rank
            project.active_learning = {"enabled": True}
            for task in session.scalars(select(Task).where(Task.project_id == project.id)):
                task.serve_rank = rng.randrange(100)
        people = [users.create_user(session, email=f"w{n}@crowd.test", role="annotator").id for n in range(5)]
        holder = users.create_user(session, email="holder@crowd.test", role="annotator").id
        project_id, batch_id = project.id, batch.id
    seen: set[str] = set()
    now = utcnow()
    for step in range(60):
        now += timedelta(seconds=rng.choice([1, 1, 1, LEASE + 1]) if step > 5 else 1)  # now and then, all expire
        annotator_id = rng.choice(people)
        gold = (rng.random() < 0.3, rng.random() < 0.6)
        with database.writer.begin() as session:
            if step == 5:  # a batch canceled under a lease (its tasks come first): its holder asks for work
                annotator_id = holder
                held = assignments.claim_by_statements(session, project=session.get_one(Project, project_id),
                                                       annotator=session.get_one(User, annotator_id), now=now,
                                                       lease_seconds=LEASE, gold=(False, False))
                assert held is not None and session.get_one(Task, held[1].id).batch_id == batch_id
                projects.change_batch(session, batch=session.get_one(Batch, batch_id), action="cancel")
            if step == 12:  # one annotator blocked, another on probation
                for who, values in ((people[0], {"blocked": True}), (people[1], {"fraud_status": "probation"})):
                    if session.get(WorkerStats, (project_id, who)) is None:
                        session.add(WorkerStats(project_id=project_id, annotator_id=who, n_annotations=0,
                                                seconds_total=0.0, n_gold=0, n_gold_correct=0, blocked=False))
                        session.flush()
                    session.execute(update(WorkerStats).where(WorkerStats.project_id == project_id,
                                                              WorkerStats.annotator_id == who).values(**values))
            project = session.get_one(Project, project_id)
            annotator = session.get_one(User, annotator_id)
            kwargs = {"project": project, "annotator": annotator, "now": now, "lease_seconds": LEASE, "gold": gold}
            by_function = _outcome(assignments.claim_in_database, session, **kwargs)
            by_statements = _outcome(assignments.claim_by_statements, session, **kwargs)
            assert by_function == by_statements, f"step {step}"
            seen.add(by_function[0][0] if by_function[0][0] != "lease" else
                     ("held" if any(row[0] == "lease" and row[3] == LeaseStatus.ACTIVE and row[2] == annotator_id
                                    for row in _state(session, project_id)) else "new"))
            claimed = (assignments.claim_in_database if step % 2 else assignments.claim_by_statements)(
                session, **kwargs) if by_function[0] != ("blocked",) else None
            if claimed is not None and rng.random() < 0.6:  # most leases are answered, the rest left to expire
                annotations.submit(session, assignment_id=claimed[0].id, annotator=annotator,
                                   answer={"label": "positive"}, seconds=1.0, now=now)
    assert {"new", "held", "blocked", "none"} <= seen, seen
