"""A structured type's refit past ``sample_answers``: the worker model is fitted on every kth
task (a bounded sample), then every completed task is decided with it chunk by chunk, as the
online path decides one task; below the bound the refit fits every answer, as before."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from qistas.db.engine import Database
from qistas.db.enums import Role
from qistas.db.models import Annotation, Assignment, Project, QualityModel, Task, User
from qistas.domain import leases, projects, quality, users
from qistas.domain.tasktypes import parse_spec, type_of

T0 = datetime(2026, 3, 1, tzinfo=UTC)
N_TASKS = 240
SPECS: dict[str, dict[str, Any]] = {
    "rating": {"type": "rating", "min": 1, "max": 5},
    "boxes": {"type": "boxes", "labels": ["car", "person"]},
}
ACCEPTED, MODEL_ONLY = 7, 11  # the reviewer's result, and a task only the model answered


def _answer(kind: str, rng: random.Random, truth: Any, noise: float) -> dict[str, Any]:
    if kind == "rating":
        return {"rating": min(max(round(truth + rng.gauss(0, noise)), 1), 5)}
    return {"boxes": [{**box, "x": max(box["x"] + rng.gauss(0, 8 * noise), 0.0)} for box in truth
                      if rng.random() > noise / 4]}


def _truth(kind: str, rng: random.Random) -> Any:
    if kind == "rating":
        return rng.randint(1, 5)
    return [{"x": rng.uniform(0, 300), "y": rng.uniform(0, 200), "w": 40.0, "h": 30.0,
             "label": rng.choice(["car", "person"])} for _ in range(rng.randint(1, 2))]


def _build(database: Database, kind: str, *, pid: int | None = None, n_tasks: int = N_TASKS) -> tuple[int, int]:
    """A completed project of ``kind`` (or the tasks and answers of project ``pid``), task ids
    1..n_tasks, three answers each by six annotators of different noise; returns the project
    and how many answers count (the rejected ones do not)."""
    rng = random.Random(5)
    with database.writer.begin() as session:
        if pid is None:
            org_id = users.create_org(session, name="Acme", slug="acme").id
            owner = users.create_user(session, email="o@acme.test", role="owner", org_id=org_id)
            pid = projects.create_project(session, org_id=org_id, actor=owner, name="p", task=SPECS[kind]).id
        else:
            org_id = session.get_one(Project, pid).org_id
        people = [users.create_user(session, email=f"w{i}@x.test", role="annotator").id for i in range(6)]
        model = User(email="model@x.test", role=Role.MODEL, org_id=org_id)
        session.add(model)
        session.flush()
        model_id = model.id
    noise = {person: 0.2 + 0.5 * i for i, person in enumerate(people)} | {model_id: 0.6}
    tasks, leases_, answers = [], [], []
    for t in range(1, n_tasks + 1):
        truth = _truth(kind, rng)
        tasks.append({"id": t, "project_id": pid, "data": {"image": f"{t}.png", "width": 640, "height": 480},
                      "is_gold": False, "status": "completed", "required": 3, "response": {"stale": t},
                      "confidence": 0.5, "method": "x", "created_at": T0, "completed_at": T0,
                      "review_status": "accepted" if t == ACCEPTED else "none"})
        who = [model_id] if t == MODEL_ONLY else rng.sample(people, 3)
        for worker in who:
            n = len(answers) + 1
            at = T0 + timedelta(seconds=n)
            leases_.append({"id": n, "task_id": t, "project_id": pid, "annotator_id": worker,
                            "status": "submitted", "created_at": at, "expires_at": at, "ended_at": at})
            answers.append({"id": n, "assignment_id": n, "task_id": t, "project_id": pid, "annotator_id": worker,
                            "answer": _answer(kind, rng, truth, noise[worker]), "seconds": 1.0, "created_at": at,
                            "rejected_at": at if n % 29 == 0 else None})
    with database.engine.begin() as connection:
        connection.execute(insert(Task.__table__), tasks)
        connection.execute(insert(Assignment.__table__), leases_)
        connection.execute(insert(Annotation.__table__), answers)
    return pid, sum(a["rejected_at"] is None for a in answers)


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_a_sampled_refit_decides_every_task_as_the_online_path_does(database: Database, kind: str) -> None:
    pid, n_answers = _build(database, kind)
    fit = quality._fit(database, pid, sample_answers=-(-n_answers // 3))
    assert fit is not None and fit.sampled
    assert set(fit.task_ids.tolist()) == {t for t in range(3, N_TASKS + 1, 3) if t != MODEL_ONLY}  # every third

    found = quality.refit(database, project_id=pid, sample_answers=-(-n_answers // 3))
    assert found is not None
    assert found.n_answers == n_answers  # every answer that counts, not only the sample's
    with database.reader() as session:
        project = session.get(Project, pid)
        assert project is not None
        spec = parse_spec(project.task_spec)
        fitted = quality.load_model(session, pid)
        assert fitted is not None
        sample = quality._load_answers(session, project, spec, stride=3)
        assert fitted.params == type_of(spec).aggregator(spec).fit(  # fitted on the sample alone
            sample.items, n_workers=len(sample.worker_ids), contexts=sample.contexts).params_
        assert list(fitted.rows) == sample.worker_ids
        rows = {row.id: row for row in session.scalars(select(Task).where(Task.project_id == pid))}
        changed = []
        for task_id, task in rows.items():
            if task_id in (ACCEPTED, MODEL_ONLY):
                assert task.response == {"stale": task_id} and task.method == "x"  # not the refit's to change
                continue
            answers = session.execute(select(Annotation.annotator_id, Annotation.answer).where(
                Annotation.task_id == task_id, Annotation.rejected_at.is_(None)).order_by(Annotation.id)).all()
            online = quality.task_consensus(session, project=project, spec=spec, task_id=task_id, data=task.data,
                                            answers=[tuple(a) for a in answers])
            assert (task.response, task.method, task.needs_review) == (online.response, online.method,
                                                                       online.needs_review)
            assert task.confidence == pytest.approx(online.confidence)
            changed.append(task_id)
    assert found.changed == sorted(changed)  # every one had a stale result


def test_below_the_bound_the_refit_fits_every_answer(database: Database) -> None:
    pid, n_answers = _build(database, "rating")
    fit = quality._fit(database, pid, sample_answers=n_answers)
    assert fit is not None and not fit.sampled
    assert len(fit.task_ids) == N_TASKS - 1  # all but the task only the model answered


def test_a_sampled_refit_that_lost_its_lease_writes_nothing(database: Database) -> None:
    pid, n_answers = _build(database, "rating")
    someone_elses = leases.Lease(name=f"refit:{pid}", holder="another process", seconds=60)
    assert quality._refit(database, project_id=pid, lease=someone_elses, sample_answers=-(-n_answers // 3)) is None
    with database.reader() as session:
        assert session.get(QualityModel, pid) is None
        assert session.scalar(select(func.count()).select_from(Task).where(
            Task.project_id == pid, Task.method != "x")) == 0
