"""Fraud detection on answers given through the engine with a simulated clock, and exclusion.

The engine takes ``now`` for every claim and submit: honest annotators take 6-14 s a task,
a planted fast clicker half a second and always the same label. The server measures the
time from lease to submit itself, so what the test controls is only when each call happens.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qistas.db.engine import Database
from qistas.db.enums import LeaseStatus, Role, TaskStatus
from qistas.db.models import Annotation, Assignment, AuditEvent, Project, Task, User, WorkerStats
from qistas.db.types import utcnow
from qistas.domain import annotations, assignments, fraud, imports, projects, users
from qistas.errors import Conflict, Forbidden, Invalid
from tests.engine_checks import violations
from tests.factories import CLASSIFICATION

LABELS = CLASSIFICATION["labels"]


def _setup(database: Database, *, n_tasks: int = 60, n_gold: int = 20, honest: int = 5,
           gold_share: float = 0.25) -> tuple[int, list[int], int]:
    rng = random.Random(7)
    with database.writer.begin() as session:
        org = users.create_org(session, name="fraud", slug="fraud")
        owner = users.create_user(session, email="owner@fraud.test", role="owner", org_id=org.id)
        project = projects.create_project(session, org_id=org.id, actor=owner, name="p", task=CLASSIFICATION,
                                          redundancy={"min": 3, "max": 3},
                                          gold={"share": gold_share, "min_answers": 5, "min_accuracy": 0.0})
        rows = [(n, {"data": {"text": f"t{n}", "truth": rng.choice(LABELS)}}) for n in range(n_tasks)]
        rows += [(n_tasks + n, {"data": {"text": f"g{n}", "truth": label}, "gold": {"label": label}})
                 for n, label in enumerate(rng.choice(LABELS) for _ in range(n_gold))]
        imports.import_tasks(session, project=project, rows=rows)
        people = [users.create_user(session, email=f"w{n}@fraud.test", role="annotator").id
                  for n in range(honest + 1)]
        return project.id, people, owner.id


def _work(database: Database, project_id: int, people: list[int], clicker: int) -> None:
    """Everyone works until nothing is left; each at their own pace on one shared clock."""
    rng = random.Random(11)
    start = utcnow() - timedelta(days=1)
    clock = {person: start + timedelta(seconds=rng.uniform(0, 5)) for person in people}
    while clock:
        person = min(clock, key=lambda p: clock[p])
        now = clock[person]
        with database.writer.begin() as session:
            project = session.get(Project, project_id)
            annotator = session.get(User, person)
            assert project is not None and annotator is not None
            claimed = assignments.claim(session, project=project, annotator=annotator, now=now, lease_seconds=600)
            if claimed is None:
                del clock[person]
                continue
            lease, task = claimed
            fast = person == clicker
            seconds = rng.uniform(0.3, 0.7) if fast else rng.uniform(6, 14)
            truth = task.data["truth"]
            label = LABELS[0] if fast else (truth if rng.random() < 0.9 else rng.choice(LABELS))
            done = now + timedelta(seconds=seconds)
            annotations.submit(session, assignment_id=lease.id, annotator=annotator, answer={"label": label},
                               seconds=None, now=done)
        clock[person] = done + timedelta(seconds=rng.uniform(0.1, 1.0) if fast else rng.uniform(1, 4))


@pytest.fixture
def worked(database: Database) -> tuple[int, list[int], int]:
    project_id, people, owner_id = _setup(database)
    _work(database, project_id, people, clicker=people[-1])
    return project_id, people, owner_id


def test_a_planted_fast_clicker_is_flagged_and_honest_annotators_are_not(
        database: Database, worked: tuple[int, list[int], int]) -> None:
    project_id, people, _ = worked
    with database.reader() as session:
        project = session.get(Project, project_id)
        assert project is not None
        found, detector = fraud.detect(session, projects=[project])
    by_id = {a.annotator_id: a for a in found}
    clicker = by_id[people[-1]]
    assert {"fast", "one_answer"} <= set(clicker.flags), clicker
    assert clicker.signals["fast_share"] > 0.9 and clicker.signals["top_answer_share"] == 1.0
    for person in people[:-1]:
        assert by_id[person].flags == [], by_id[person]
    # The floor is a quarter of the typical (median of medians) time: between 1.5 and 3.5 s here.
    assert 1.5 < fraud.floor_of(detector) < 3.5


def test_exclusion_reopens_tasks_and_is_idempotent(database: Database, worked: tuple[int, list[int], int]) -> None:
    project_id, people, owner_id = worked
    clicker = people[-1]
    with database.reader() as session:
        completed_with_clicker = set(session.scalars(
            select(Task.id).join(Annotation, Annotation.task_id == Task.id)
            .where(Task.project_id == project_id, Task.status == TaskStatus.COMPLETED, Task.is_gold.is_(False),
                   Annotation.annotator_id == clicker)))
        n_answers = session.scalar(select(func.count()).select_from(Annotation)
                                   .where(Annotation.annotator_id == clicker)) or 0
    assert completed_with_clicker and n_answers

    def exclude() -> fraud.ActionResult:
        with database.writer.begin() as session:
            project, owner = session.get(Project, project_id), session.get(User, owner_id)
            assert project is not None and owner is not None
            return fraud.act(session, project=project, annotator_id=clicker, name="annotator-x", action="exclude",
                             reason="one label, half a second each", actor=owner, now=utcnow())

    done = exclude()
    assert done.status == "excluded" and done.blocked
    assert done.excluded == n_answers
    assert done.reopened == len(completed_with_clicker)  # min = max = 3: each lost answer is one short
    with database.reader() as session:
        for task in session.scalars(select(Task).where(Task.id.in_(completed_with_clicker))):
            assert task.status == TaskStatus.PENDING and task.response is None
            assert task.n_annotations == 2 and task.n_claimed == 2
        left = session.scalar(select(func.count()).select_from(Annotation).where(
            Annotation.annotator_id == clicker, Annotation.excluded_at.is_(None)))
        assert left == 0
        assert violations(session, project_id) == []
        events = session.scalar(select(func.count()).select_from(AuditEvent)
                                .where(AuditEvent.action == "annotator.exclude"))
        stats = session.get(WorkerStats, (project_id, clicker))
        assert stats is not None and stats.fraud_reason == "one label, half a second each"
    assert events == 1

    again = exclude()  # nothing left to exclude, nothing changes, no second event
    assert (again.excluded, again.reopened, again.status) == (0, 0, "excluded")
    with database.reader() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)
                              .where(AuditEvent.action == "annotator.exclude")) == 1

    with database.writer.begin() as session:  # blocked: no more tasks
        project, annotator = session.get(Project, project_id), session.get(User, clicker)
        assert project is not None and annotator is not None
        with pytest.raises(Forbidden):
            assignments.claim(session, project=project, annotator=annotator, now=utcnow(), lease_seconds=600)
    # An honest annotator finishes the re-opened tasks; the results no longer carry the clicker.
    _work(database, project_id, people[:-1], clicker=-1)
    with database.reader() as session:
        reopened = list(session.scalars(select(Task).where(Task.id.in_(completed_with_clicker))))
        assert all(t.status == TaskStatus.COMPLETED and t.n_annotations == 3 for t in reopened)
        assert violations(session, project_id) == []


def _answer_some(database: Database, project_id: int, person: int, n: int) -> int:
    """Take and answer ``n`` tasks; how many were gold."""
    served_gold = 0
    for _ in range(n):
        with database.writer.begin() as session:
            project, annotator = session.get(Project, project_id), session.get(User, person)
            assert project is not None and annotator is not None
            claimed = assignments.claim(session, project=project, annotator=annotator, now=utcnow(),
                                        lease_seconds=600)
            assert claimed is not None
            task = session.get(Task, claimed[1].id)
            assert task is not None
            served_gold += task.is_gold
            annotations.submit(session, assignment_id=claimed[0].id, annotator=annotator,
                               answer={"label": LABELS[0]}, seconds=None, now=utcnow())
    return served_gold


def test_probation_serves_gold_and_clear_ends_it(database: Database) -> None:
    # No gold share: only an annotator on probation is served gold (at least 30% of tasks).
    project_id, people, owner_id = _setup(database, n_tasks=60, n_gold=40, honest=1, gold_share=0.0)
    person = people[0]
    assert _answer_some(database, project_id, person, 10) == 0
    with database.writer.begin() as session:
        project, owner = session.get(Project, project_id), session.get(User, owner_id)
        assert project is not None and owner is not None
        with pytest.raises(Invalid):
            fraud.act(session, project=project, annotator_id=person, name="a", action="probation", reason=" ",
                      actor=owner, now=utcnow())
        with pytest.raises(Conflict):
            fraud.act(session, project=project, annotator_id=person, name="a", action="clear", reason=None,
                      actor=owner, now=utcnow())
        done = fraud.act(session, project=project, annotator_id=person, name="a", action="probation",
                         reason="fast answers", actor=owner, now=utcnow())
        assert done.status == "probation" and not done.blocked
    assert _answer_some(database, project_id, person, 30) >= 1  # P(none) = 0.7^30, about 2e-5
    with database.writer.begin() as session:
        project, owner = session.get(Project, project_id), session.get(User, owner_id)
        assert project is not None and owner is not None
        done = fraud.act(session, project=project, annotator_id=person, name="a", action="clear", reason=None,
                         actor=owner, now=utcnow())
        assert done.status is None
    assert _answer_some(database, project_id, person, 10) == 0


def _read_row_by_row(session: Session, projects: list[Project]) -> fraud._Rows:
    """What the detector is given, read through the ORM a row at a time: its definition."""
    import json
    import math

    import numpy as np

    ids = [p.id for p in projects]
    models = set(session.scalars(select(User.id).where(User.role == Role.MODEL)))
    found = session.execute(
        select(Annotation.annotator_id, Annotation.task_id, Annotation.project_id, Annotation.answer,
               Annotation.gold_correct, Annotation.created_at, Assignment.created_at, Assignment.status,
               Task.is_gold, Task.gold)
        .join(Assignment, Assignment.id == Annotation.assignment_id).join(Task, Task.id == Annotation.task_id)
        .where(Annotation.project_id.in_(ids), Annotation.excluded_at.is_(None)).order_by(Annotation.id)).all()
    key = lambda value: json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)  # noqa: E731
    codes: dict[str, int] = {}
    people: dict[int, int] = {}
    tasks: dict[int, int] = {}
    cols: dict[str, list[Any]] = {k: [] for k in ("w", "t", "a", "g", "s", "at", "p")}
    origin = min(row[5] for row in found if row[0] not in models)
    for annotator, task, project, answer, correct, submitted, leased, status, is_gold, gold_answer in found:
        if annotator in models:
            continue
        truth = codes.setdefault(key(gold_answer), len(codes)) if is_gold else -1
        timed = status != LeaseStatus.IMPORTED
        cols["w"].append(people.setdefault(annotator, len(people)))
        cols["t"].append(tasks.setdefault(task, len(tasks)))
        cols["a"].append(truth if is_gold and correct else codes.setdefault(key(answer), len(codes)))
        cols["g"].append(truth)
        cols["s"].append((submitted - leased).total_seconds() if timed else math.nan)
        cols["at"].append((submitted - origin).total_seconds() if timed else math.nan)
        cols["p"].append(ids.index(project))
    return fraud._Rows(annotator_ids=list(people), workers=np.array(cols["w"]), tasks=np.array(cols["t"]),
                       answers=np.array(cols["a"]), gold=np.array(cols["g"]), seconds=np.array(cols["s"]),
                       submitted=np.array(cols["at"]), groups=np.array(cols["p"]), n_categories=len(codes))


def test_the_answers_are_read_as_each_row_through_the_orm(database: Database,
                                                         worked: tuple[int, list[int], int]) -> None:
    """The arrays read raw (answers coded once per distinct text, times subtracted all at once)
    are those the definition reads row by row: with answers equal but for their keys' order,
    an imported answer (no time), and a model's answer (not judged)."""
    import numpy as np

    project_id, people, owner_id = worked
    with database.writer.begin() as session:
        owner = session.get(User, owner_id)
        assert owner is not None
        model = users.create_user(session, email="model@fraud.test", role="annotator")
        model.role, model.org_id = Role.MODEL, owner.org_id  # as model_annotators.model_user makes one
        mine = session.scalars(select(Annotation).where(Annotation.project_id == project_id)
                               .order_by(Annotation.id)).all()
        # Two answers to tasks that are not gold (a right gold answer is coded as its gold answer).
        first, second = [n for n, answer in enumerate(mine) if n > 0 and answer.gold_correct is None][:2]
        mine[first].answer = {"label": mine[first].answer["label"], "note": "x"}
        mine[second].answer = {"note": "x", "label": mine[first].answer["label"]}
        mine[0].annotator_id = model.id  # the earliest answer is a model's
        lease = session.get(Assignment, mine[5].assignment_id)
        assert lease is not None
        lease.status = LeaseStatus.IMPORTED
    with database.reader() as session:
        project = session.get(Project, project_id)
        assert project is not None
        found, expected = fraud._read(session, [project]), _read_row_by_row(session, [project])
    assert found.annotator_ids == expected.annotator_ids and model.id not in found.annotator_ids
    assert found.n_categories == expected.n_categories == len(LABELS) + 1
    for name in ("workers", "tasks", "answers", "gold", "groups"):
        assert np.array_equal(getattr(found, name), getattr(expected, name)), name
    assert found.answers[second - 1] == found.answers[first - 1]  # the model's answer, the first, is not read
    for name in ("seconds", "submitted"):  # the origin of "submitted" is any instant before the first
        a, b = getattr(found, name), getattr(expected, name)
        assert np.array_equal(a - np.nanmin(a), b - np.nanmin(b), equal_nan=True), name
    assert np.isnan(found.seconds[4]) and np.isnan(found.submitted[4]) and not np.isnan(found.seconds).all()
