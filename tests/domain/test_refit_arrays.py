"""The refit of a single-label project reads its answers in chunks into integer arrays
(``quality._load_coded``): it must fit exactly what the answer-by-answer path fits, with
gold tasks clamped, rejected answers left out and tasks only a model answered skipped."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import insert, select

from qistas.db.engine import Database
from qistas.db.enums import ReviewStatus, Role
from qistas.db.models import Annotation, Assignment, Project, Task, User
from qistas.domain import projects, quality, users
from qistas.domain.tasktypes import parse_spec, type_of
from tests.sqlite_trace import written_during

LABELS = ["cat", "dog", "bird"]
T0 = datetime(2026, 3, 1, tzinfo=UTC)
TASKS = re.compile(r"\b(FROM|UPDATE|JOIN)\s+tasks\b")


def _build(database: Database, n_tasks: int = 120) -> int:
    rng = random.Random(3)
    with database.writer.begin() as session:
        org = users.create_org(session, name="Acme", slug="acme")
        owner = users.create_user(session, email="o@acme.test", role="owner", org_id=org.id)
        people = [users.create_user(session, email=f"w{i}@x.test", role="annotator").id for i in range(5)]
        model = User(email="model@acme.test", role=Role.MODEL, org_id=org.id)
        session.add(model)
        session.flush()
        pid = projects.create_project(session, org_id=org.id, actor=owner, name="p",
                                      task={"type": "classification", "labels": LABELS}).id
        model_id = model.id
    accuracy = [0.95, 0.8, 0.6, 0.4, 0.9]
    tasks, leases, answers = [], [], []
    for t in range(1, n_tasks + 1):
        truth = rng.choice(LABELS)
        gold = t % 17 == 0 or t == 22  # 22: a gold task only the model answered
        tasks.append({"id": t, "project_id": pid, "data": {"text": f"t{t}"}, "gold": {"label": truth} if gold else None,
                      "is_gold": gold, "status": "completed", "required": 3, "response": {"label": truth},
                      "confidence": 0.5, "method": "x", "created_at": T0, "completed_at": T0})
        who = [model_id] if t % 11 == 0 else [model_id, *rng.sample(people, 3)]  # some tasks: the model alone
        for worker in who:
            right = rng.random() < (0.7 if worker == model_id else accuracy[people.index(worker)])
            label = truth if right else rng.choice([x for x in LABELS if x != truth])
            n = len(answers) + 1
            at = T0 + timedelta(seconds=n)
            leases.append({"id": n, "task_id": t, "project_id": pid, "annotator_id": worker, "status": "submitted",
                           "created_at": at, "expires_at": at, "ended_at": at})
            answers.append({"id": n, "assignment_id": n, "task_id": t, "project_id": pid, "annotator_id": worker,
                            "answer": {"label": label}, "seconds": 1.0, "created_at": at,
                            "rejected_at": at if n % 23 == 0 else None})
    ids = list(range(1, len(answers) + 1))
    rng.shuffle(ids)  # answer ids not in task order: the fit must still see them by task, then id
    for lease, answer, new_id in zip(leases, answers, ids, strict=True):
        lease["id"] = answer["id"] = answer["assignment_id"] = new_id
    with database.engine.begin() as connection:
        connection.execute(insert(Task.__table__), tasks)
        connection.execute(insert(Assignment.__table__), leases)
        connection.execute(insert(Annotation.__table__), answers)
    return pid


def test_the_arrays_fit_exactly_what_the_answer_lists_fit(database: Database) -> None:
    pid = _build(database)
    with database.reader() as session:
        project = session.get(Project, pid)
        assert project is not None
        spec = parse_spec(project.task_spec)
        loaded = quality._load_answers(session, project, spec)
        coded = quality._load_coded(session, project, LABELS)
    assert coded.task_ids.tolist() == loaded.task_ids and coded.worker_ids == loaded.worker_ids
    assert coded.n_answers == loaded.n_answers
    assert coded.tasks.tolist() == [i for i, answers in enumerate(loaded.items) for _ in answers]
    assert coded.workers.tolist() == [w for answers in loaded.items for w, _ in answers]
    assert coded.labels.tolist() == [LABELS.index(a["label"]) for answers in loaded.items for _, a in answers]
    assert 0 < len(loaded.task_ids) < 120  # the tasks only the model answered are left out
    assert (coded.gold >= 0).sum() == 8  # gold tasks, clamped, even the one only the model answered

    by_lists = type_of(spec).aggregator(spec).fit(loaded.items, n_workers=len(loaded.worker_ids),
                                                   contexts=loaded.contexts)
    by_arrays = type_of(spec).aggregator(spec).fit_arrays(
        coded.tasks, coded.workers, coded.labels, n_tasks=len(coded.task_ids), n_workers=len(coded.worker_ids),
        gold=coded.gold)
    assert by_arrays.params_ == by_lists.params_ and by_arrays.method_ == by_lists.method_
    assert list(by_arrays.results_) == list(by_lists.results_)


def test_refit_rescores_in_chunks_and_stores_the_same_model(database: Database,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    pid = _build(database)
    monkeypatch.setattr(quality, "REFIT_CHUNK", 7)
    monkeypatch.setattr(quality, "REFIT_WRITE_CHUNK", 10)
    found = quality.refit(database, project_id=pid)
    assert found is not None
    with database.reader() as session:
        project = session.get(Project, pid)
        assert project is not None
        spec = parse_spec(project.task_spec)
        loaded = quality._load_answers(session, project, spec)
        expected = type_of(spec).aggregator(spec).fit(loaded.items, n_workers=len(loaded.worker_ids),
                                                      contexts=loaded.contexts)
        stored = quality.load_model(session, pid)
        rows = session.execute(select(Task.id, Task.response, Task.confidence, Task.is_gold)
                               .where(Task.project_id == pid)).all()
    assert stored is not None and stored.params == expected.params_
    assert found.n_answers == loaded.n_answers and found.n_workers == len(loaded.worker_ids)
    position = {t: i for i, t in enumerate(loaded.task_ids)}
    rescored = [r for r in rows if not r.is_gold and r.id in position]
    assert rescored
    for row in rescored:
        result = expected.results_[position[row.id]]
        assert (row.response, row.confidence) == (result.response, pytest.approx(float(result.confidence)))
    unchanged = [r for r in rows if r.id not in position]
    assert unchanged and all(r.confidence == 0.5 for r in unchanged)  # the model's own tasks: untouched
    assert sorted(found.changed) == found.changed and len(np.unique(found.changed)) == len(found.changed)


@pytest.mark.sqlite_only
def test_a_refit_that_changes_nothing_writes_no_task(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A refit compares each chunk's results with what is stored before it opens a write
    transaction: one that finds every result as stored takes SQLite's write lock, which the
    annotation loop waits for, for its lease and its model only, never for a task."""
    pid = _build(database)
    monkeypatch.setattr(quality, "REFIT_WRITE_CHUNK", 10)
    first: list[quality.RefitResult | None] = []
    written = written_during(database, lambda: first.append(quality.refit(database, project_id=pid)))
    assert first[0] is not None and first[0].changed
    assert [s for s in written if TASKS.search(s)]  # the changed tasks were loaded and written
    again: list[quality.RefitResult | None] = []
    written = written_during(database, lambda: again.append(quality.refit(database, project_id=pid)))
    assert again[0] is not None and again[0].changed == []
    assert written and not [s for s in written if TASKS.search(s)], written
    assert [s for s in written if "quality_models" in s]  # the model, stored again


def test_a_task_changed_after_the_comparison_is_written_as_it_then_is(database: Database) -> None:
    """A refit compares a chunk's results with the stored ones before its write transaction
    opens; in it, each task is read again. One a reviewer accepted meanwhile keeps the reviewer's
    result; one whose answers settled it again is written as the refit decides and the change
    of its answer is counted (and announced) against what it then held."""
    pid = _build(database)
    fit = quality._fit(database, pid, quality.REFIT_SAMPLE_ANSWERS)
    assert fit is not None
    method = quality.method_name(fit.estimator)
    with database.reader() as session:
        ids = [int(t) for t in quality._rescorable_ids(session, pid)]
    planned = quality._to_write(database, quality._fitted_results(fit)(ids), method)
    same_answer = [t for t, plan in planned.items() if not plan.moved]
    assert len(same_answer) >= 2
    accepted, settled = same_answer[0], same_answer[1]
    with database.writer.begin() as session:
        session.get_one(Task, accepted).review_status = ReviewStatus.ACCEPTED
        task = session.get_one(Task, settled)
        before = planned[settled].result.response
        task.response = {"label": next(label for label in LABELS if label != before["label"])}
    with database.writer.begin() as session:
        changed = quality._write_chunk(session, project_id=pid, planned=planned, method=method)
    with database.reader() as session:
        rows = {r.id: r for r in session.execute(select(Task.id, Task.response, Task.confidence, Task.method)
                                                 .where(Task.project_id == pid))}
    assert (rows[accepted].confidence, rows[accepted].method) == (0.5, "x")  # the reviewer's, untouched
    assert rows[settled].response == before and rows[settled].method == method
    assert settled in changed and accepted not in changed
    assert changed == sorted(changed) and set(changed) == {settled} | {t for t, p in planned.items() if p.moved}
    for task_id, plan in planned.items():
        if task_id != accepted:
            assert rows[task_id].response == plan.result.response
            assert rows[task_id].confidence == pytest.approx(float(plan.result.confidence))
