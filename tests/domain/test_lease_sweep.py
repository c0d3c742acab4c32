"""A claim gives back at most ``SWEPT_PER_CLAIM`` expired leases, those that ran out first, and
the rest only when it finds no task: after an outage, the first take of a large project does not
end every lease in one transaction, and nobody is told there is no work while expired leases
hold its slots. On both databases: SQLite's statements and PostgreSQL's ``qistas_take``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from qistas.db.engine import Database
from qistas.db.models import Assignment, Project, User
from qistas.db.types import utcnow
from qistas.domain import annotations, assignments
from tests.domain.test_engine_concurrency import make_project
from tests.engine_checks import violations

LEASE = 600


def _claim(database: Database, project_id: int, annotator_id: int, now: object) -> int | None:
    with database.writer.begin() as session:
        claimed = assignments.claim(session, project=session.get_one(Project, project_id),
                                    annotator=session.get_one(User, annotator_id), now=now, lease_seconds=LEASE)
        return None if claimed is None else claimed[1].id


def _statuses(database: Database, project_id: int) -> dict[int, str]:
    with database.reader() as session:
        return dict(session.execute(select(Assignment.annotator_id, Assignment.status)
                                    .where(Assignment.project_id == project_id)).all())


def test_a_take_gives_back_the_leases_that_ran_out_first_and_no_more(database: Database,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(assignments, "SWEPT_PER_CLAIM", 2)
    setup = make_project(database, n_tasks=6, n_annotators=6, redundancy={"min": 1, "max": 1})
    holders, latecomer = setup.annotator_ids[:5], setup.annotator_ids[5]
    start = utcnow()
    for n, holder in enumerate(holders):  # five leases, each a second after the one before
        assert _claim(database, setup.project_id, holder, start + timedelta(seconds=n)) is not None
    after = start + timedelta(seconds=LEASE + 10)  # every one of them has run out
    assert _claim(database, setup.project_id, latecomer, after) is not None  # the sixth task, still open
    statuses = _statuses(database, setup.project_id)
    assert [statuses[h] for h in holders] == ["expired", "expired", "active", "active", "active"]
    assert _claim(database, setup.project_id, holders[0], after) is not None  # a freed task
    statuses = _statuses(database, setup.project_id)
    assert [statuses[h] for h in holders[2:]] == ["expired", "expired", "active"]
    with database.reader() as session:
        assert violations(session, setup.project_id) == []


def test_a_take_that_finds_nothing_gives_back_the_rest_and_looks_again(database: Database,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The two leases given back first free tasks the annotator already answered; the two that
    fill the last task are past the bound: given back, and the task found, on the second look."""
    monkeypatch.setattr(assignments, "SWEPT_PER_CLAIM", 2)
    setup = make_project(database, n_tasks=3, n_annotators=5, redundancy={"min": 2, "max": 2})
    me, others = setup.annotator_ids[0], setup.annotator_ids[1:]
    start = utcnow()
    with database.writer.begin() as session:  # I answer the first two tasks
        project, annotator = session.get_one(Project, setup.project_id), session.get_one(User, me)
        for n in range(2):
            claimed = assignments.claim(session, project=project, annotator=annotator,
                                        now=start + timedelta(seconds=n), lease_seconds=LEASE)
            assert claimed is not None
            annotations.submit(session, assignment_id=claimed[0].id, annotator=annotator,
                               answer={"label": "positive"}, seconds=1.0, now=start + timedelta(seconds=n))
    # The others, in turn: the first two tasks' last slots, then both slots of the third.
    taken = [_claim(database, setup.project_id, other, start + timedelta(seconds=10 + n))
             for n, other in enumerate(others)]
    assert taken[2] is not None and taken[2] == taken[3] and taken[2] not in taken[:2]
    after = start + timedelta(seconds=LEASE + 60)
    assert _claim(database, setup.project_id, me, after) == taken[2]
    statuses = _statuses(database, setup.project_id)
    assert [statuses[o] for o in others] == ["expired"] * 4
    with database.reader() as session:
        assert violations(session, setup.project_id) == []
