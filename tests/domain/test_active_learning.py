"""Active learning on the server: the training pass ranks and pre-labels pending tasks, the claim
serves by rank only where it is on and keeps every other rule of the claim, a pass never blocks
a take, runs once per project under its lease, and fits in a training process of its own."""

from __future__ import annotations

import os
import random
import signal
import socket
import time
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select, text, update

from qistas.config import Settings
from qistas.db.engine import Database
from qistas.db.models import Project, Task, User, WorkerLease
from qistas.db.types import utcnow
from qistas.db.unit_of_work import write
from qistas.domain import active_learning, assignments, imports, leases, predictions, projects, users
from qistas.domain.active_learning import check_setting, parse_setting
from qistas.domain.tasktypes import parse_spec, type_of
from qistas.errors import Invalid
from qistas.quality.active import serving_order
from qistas.training_process import PROCESS_NAME
from qistas.workers.trainer import Trainer
from tests.domain.test_engine_concurrency import hammer, make_project, submit, take
from tests.engine_checks import check, status_counts

# The training process runs at nice 19; on a loaded test machine that can starve it for minutes.
NICE = 5
SPEC = {"type": "classification", "labels": ["pos", "neg"], "text_field": "text"}
# Completed by the annotator first (import order): clear positives and negatives.
LABELED = [("good great lovely", "pos"), ("awful bad boring", "neg"), ("great good fun", "pos"),
           ("bad awful dull", "neg"), ("lovely fun great", "pos"), ("boring dull awful", "neg")]
# Pending: confident ones first in import order, the ambiguous one last.
PENDING = ["good great", "bad awful", "lovely great fun", "boring bad", "good bad great awful"]


def make(database: Database, *, slug: str, enabled: bool, seed_labels: int = 0,
         gold: dict[str, Any] | None = None) -> tuple[int, list[int]]:
    with database.writer.begin() as session:
        org = users.create_org(session, name=slug.title(), slug=slug)
        owner = users.create_user(session, email=f"owner@{slug}.test", role="owner", org_id=org.id)
        project = projects.create_project(
            session, org_id=org.id, actor=owner, name="al", task=SPEC, gold=gold,
            active_learning={"enabled": True, "random_share": 0, "seed_labels": seed_labels} if enabled else {})
        texts = [t for t, _ in LABELED] + PENDING
        imports.import_tasks(session, project=project, rows=[(n, {"data": {"text": t}}) for n, t in enumerate(texts)])
        annotators = [users.create_user(session, email=f"w{n}-{slug}@crowd.test", role="annotator").id
                      for n in range(3)]
        return project.id, annotators


def complete_labeled(database: Database, project_id: int, annotator: int) -> None:
    for label_text, label in LABELED:
        lease_id, task_id = take(database, project_id, annotator)  # type: ignore[misc]
        assert text_of(database, task_id) == label_text  # import order so far
        submit(database, lease_id, annotator, label)


def text_of(database: Database, task_id: int) -> str:
    with database.reader() as session:
        return str(session.scalar(select(Task.data).where(Task.id == task_id))["text"])


def pending_rows(database: Database, project_id: int) -> list[Any]:
    with database.reader() as session:
        return session.execute(select(Task.data, Task.serve_rank, Task.predictions).where(
            Task.project_id == project_id, Task.status == "pending").order_by(Task.id)).all()


def trained(database: Database, project_id: int) -> tuple[int, int]:
    with database.reader() as session:
        project = session.get(Project, project_id)
        assert project is not None
        return project.active_version, project.active_trained_on


def test_training_ranks_pending_tasks_and_the_claim_serves_by_rank(database: Database) -> None:
    on, (a, b, _) = make(database, slug="on", enabled=True)
    off, (c, d, _) = make(database, slug="off", enabled=False)
    complete_labeled(database, on, a)
    complete_labeled(database, off, c)
    assert active_learning.projects_due(database, every=6) == [(on, 6)]  # the disabled one is never due
    active_learning.train_step(database, every=6)
    assert trained(database, on) == (1, 6)
    rows = pending_rows(database, on)
    assert sorted(r.serve_rank for r in rows) == [1, 2, 3, 4, 5]
    by_rank = {r.serve_rank: r for r in rows}
    assert by_rank[1].data["text"] == "good bad great awful"  # the most uncertain first
    for r in rows:
        (prediction,) = r.predictions
        assert prediction["model"] == "qistas-active-v1" and 0.5 <= prediction["score"] <= 1
    labels = {r.data["text"]: r.predictions[0]["answer"]["label"] for r in rows}
    assert labels["good great"] == "pos" and labels["bad awful"] == "neg"
    # another annotator is served in rank order, not import order
    assert text_of(database, take(database, on, b)[1]) == "good bad great awful"  # type: ignore[index]
    # the disabled project: untouched, served in import order
    assert all(r.serve_rank == 0 and r.predictions is None for r in pending_rows(database, off))
    assert text_of(database, take(database, off, d)[1]) == "good great"  # type: ignore[index]
    # nothing new completed: not due again
    assert active_learning.projects_due(database, every=6) == []


def test_the_models_prediction_is_a_prefill_like_any_other(database: Database) -> None:
    on, (a, b, _) = make(database, slug="prefill", enabled=True)
    complete_labeled(database, on, a)
    with database.writer.begin() as session:
        project = session.get(Project, on)
        assert project is not None
        projects.update_project(session, project=project, actor=session.get(User, a), now=utcnow(),
                                changes={"prefill": {"mode": "always", "show_model": True}})
    assert active_learning.train(database, project_id=on, every=6) == 1
    lease_id, task_id = take(database, on, b)  # type: ignore[misc]

    def shown(session: Any) -> Any:
        project = assignments.load_project(session, on)
        return assignments.prefill(session, project=project, task_id=task_id)

    view = write(database, shown)
    assert view == {"answer": {"label": view["answer"]["label"]}, "model": "qistas-active-v1"}
    assert view["answer"]["label"] in ("pos", "neg")
    submit(database, lease_id, b, view["answer"]["label"])
    with database.reader() as session:
        project = session.get(Project, on)
        spec = parse_spec(project.task_spec)
        report = predictions.model_report(session, project=project, spec=spec, task_type=type_of(spec))
    (entry,) = report
    assert entry["model"] == "qistas-active-v1" and entry["prefilled"] == 1 and entry["kept"] == 1


def test_before_the_seed_labels_the_order_is_random_not_the_models(database: Database) -> None:
    on, (a, _, _) = make(database, slug="seeds", enabled=True, seed_labels=7)
    complete_labeled(database, on, a)  # 6 labels, one short
    assert active_learning.train(database, project_id=on, every=6) == 1
    ranks = [r.serve_rank for r in pending_rows(database, on)]
    random_order = serving_order(np.zeros(len(PENDING)), random_share=1.0, random_state=1)
    assert ranks == (np.argsort(random_order) + 1).tolist()
    assert all(r.predictions for r in pending_rows(database, on))  # pre-labels all the same


def test_a_retrain_replaces_its_own_prediction_and_keeps_other_models(database: Database) -> None:
    on, (a, _, _) = make(database, slug="keep", enabled=True)
    complete_labeled(database, on, a)
    with database.writer.begin() as session:
        first, second = session.scalars(select(Task).where(Task.project_id == on, Task.status == "pending")
                                        .order_by(Task.id).limit(2)).all()
        first.predictions = [{"model": "imported-v1", "answer": {"label": "neg"}, "score": 0.3}]
        # a task carrying the most predictions it may keeps them all and gets none of ours
        second.predictions = [{"model": f"m{n}", "answer": {"label": "neg"}, "score": 0.3}
                              for n in range(predictions.MAX_PREDICTIONS)]
    assert active_learning.train(database, project_id=on, every=6) == 1
    assert active_learning.train(database, project_id=on, every=6) is None  # not due: nothing new completed
    assert active_learning.train(database, project_id=on, every=0) == 2
    rows = pending_rows(database, on)
    assert [p["model"] for p in rows[0].predictions] == ["imported-v1", "qistas-active-v2"]
    assert [p["model"] for p in rows[1].predictions] == [f"m{n}" for n in range(predictions.MAX_PREDICTIONS)]
    assert rows[1].serve_rank > 0  # ranked all the same


def test_a_training_pass_never_blocks_a_take(database: Database) -> None:
    on, (a, b, c) = make(database, slug="busy", enabled=True)
    complete_labeled(database, on, a)
    waited: dict[str, float] = {}

    def take_now(stage: str) -> None:  # runs between the pass's own transactions
        annotator = b if stage == "fitted" else c
        started = time.perf_counter()
        assert take(database, on, annotator) is not None
        waited[stage] = time.perf_counter() - started

    assert active_learning.train(database, project_id=on, every=6, pause=take_now) == 1
    assert set(waited) == {"fitted", "chunk"}
    assert max(waited.values()) < 2.0, waited


def test_one_pass_per_project_under_its_lease(database: Database) -> None:
    on, (a, _, _) = make(database, slug="lease", enabled=True)
    complete_labeled(database, on, a)
    # another process holds the project's lease: this one trains nothing
    assert write(database, lambda session: leases.claim(session, name=f"active:{on}", holder="elsewhere",
                                                        seconds=60, now=utcnow()))
    active_learning.train_step(database, every=6)
    assert trained(database, on) == (0, 0)
    assert all(r.serve_rank == 0 for r in pending_rows(database, on))
    with database.writer.begin() as session:
        session.execute(text("DELETE FROM worker_leases"))

    # the lease taken over while this one fits: it writes nothing and records no pass
    def taken_over(stage: str) -> None:
        if stage == "fitted":
            with database.writer.begin() as session:
                session.execute(update(WorkerLease).values(holder="elsewhere"))

    assert active_learning.train(database, project_id=on, every=6, pause=taken_over) is None
    assert trained(database, on) == (0, 0)  # still due: the next pass runs it
    assert all(r.serve_rank == 0 and r.predictions is None for r in pending_rows(database, on))
    with database.writer.begin() as session:
        session.execute(text("DELETE FROM worker_leases"))
    assert active_learning.projects_due(database, every=6) == [(on, 6)]
    assert active_learning.train(database, project_id=on, every=6) == 1
    with database.reader() as session:  # released
        assert session.scalars(select(WorkerLease)).all() == []


def test_the_ranked_claim_keeps_gold_and_never_serves_gold_by_rank(database: Database) -> None:
    on, (a, b, _) = make(database, slug="gold", enabled=True, gold={"share": 0.0})
    with database.writer.begin() as session:
        project = session.get(Project, on)
        assert project is not None
        imports.import_tasks(session, project=project,
                             rows=[(0, {"data": {"text": "gold one"}, "gold": {"label": "pos"}})])
        # the gold task first in rank: the ranked order still never serves gold as a regular task
        session.execute(update(Task).where(Task.project_id == on).values(serve_rank=Task.id))
        session.execute(update(Task).where(Task.project_id == on, Task.is_gold.is_(True)).values(serve_rank=-1))
    served = []
    while (taken := take(database, on, a)) is not None:
        served.append(text_of(database, taken[1]))
        submit(database, taken[0], a, "pos")
    assert "gold one" not in served and len(served) == len(LABELED) + len(PENDING)
    with database.writer.begin() as session:
        project = session.get(Project, on)
        assert project is not None
        project.gold_policy = {"share": 0.99}
    # gold is still served at the policy's share (0.99: in the first few takes but for 1e-10)
    # (every regular task is done: a take that does not draw gold finds nothing)
    seen = []
    for _ in range(5):
        if (taken := take(database, on, b)) is not None:
            seen.append(text_of(database, taken[1]))
            break
    assert seen == ["gold one"]


def test_a_crowd_on_a_ranked_project_keeps_every_invariant(database: Database) -> None:
    setup = make_project(database, n_tasks=40, n_annotators=16, redundancy={"min": 3, "max": 3}, slug="ranked")
    shuffled = list(range(1, 41))
    random.Random(7).shuffle(shuffled)
    with database.writer.begin() as session:
        project = session.get(Project, setup.project_id)
        assert project is not None
        project.active_learning = {"enabled": True}
        ids = session.scalars(select(Task.id).where(Task.project_id == setup.project_id).order_by(Task.id)).all()
        for task_id, rank in zip(ids, shuffled, strict=True):
            session.execute(update(Task).where(Task.id == task_id).values(serve_rank=rank))
    tally = hammer(database, setup)
    assert tally.errors == []
    assert check(database, setup.project_id) == []
    assert status_counts(database, setup.project_id) == {"completed": 40}


def test_the_setting_is_validated_and_needs_single_label_text_classification(database: Database) -> None:
    assert parse_setting(None).enabled is False
    assert parse_setting({"enabled": True}).random_share == 0.1
    assert parse_setting({"enabled": True}).seed_labels == 200
    for raw, field in [({"enabled": "yes"}, "active_learning.enabled"),
                       ({"enabled": True, "random_share": 2}, "active_learning.random_share"),
                       ({"enabled": True, "random_share": True}, "active_learning.random_share"),
                       ({"enabled": True, "seed_labels": -1}, "active_learning.seed_labels"),
                       ({"enabled": True, "seed_labels": 2.5}, "active_learning.seed_labels"),
                       ({"order": "x"}, "active_learning.order"), ([1], "active_learning")]:
        with pytest.raises(Invalid) as err:
            parse_setting(raw)
        assert err.value.details == {"field": field}
    for spec in ({**SPEC, "multi": True}, {"type": "classification", "labels": ["a", "b"]},
                 {"type": "rating", "min": 1, "max": 5}):
        with pytest.raises(Invalid, match="single-label classification"):
            check_setting({"enabled": True}, spec)
        assert check_setting({"enabled": False}, spec) == {"enabled": False}
    on, _ = make(database, slug="patch", enabled=True)
    with database.writer.begin() as session:
        project = session.get(Project, on)
        owner = users.create_user(session, email="o2@patch.test", role="owner", org_id=project.org_id)
        projects.update_project(session, project=project, actor=owner, now=project.created_at,
                                changes={"active_learning": {"enabled": False}})
        assert project.active_learning == {"enabled": False}


def make_trainer(settings: Settings, database: Database) -> Trainer:
    return Trainer(settings.model_copy(update={"active_learning_every": 6}), database, nice=NICE)


def test_the_fit_runs_in_a_training_process_at_lowest_priority(database: Database, settings: Settings) -> None:
    on, (a, b, _) = make(database, slug="child", enabled=True)
    trainer = make_trainer(settings, database)
    try:
        trainer.step()
        assert trainer.process is None  # nothing due: no process
        complete_labeled(database, on, a)
        trainer.step()
        child = trainer.process
        assert child is not None and child.pid != os.getpid() and child.is_alive()
        assert all(r.serve_rank > 0 for r in pending_rows(database, on))
        assert os.getpriority(os.PRIO_PROCESS, child.pid) == os.getpriority(os.PRIO_PROCESS, 0) + NICE
        with open(f"/proc/{child.pid}/comm") as comm:
            assert comm.read().strip() == PROCESS_NAME
        assert text_of(database, take(database, on, b)[1]) == "good bad great awful"  # type: ignore[index]
        # a training process that died is replaced at the next fit
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        trainer._rest_until = 0.0
        assert active_learning.train(database, project_id=on, every=0, fit=trainer.fit) == 2
        assert trainer.process is not child and trainer.process.is_alive()
    finally:
        trainer.close()
    assert trainer.process.exitcode == 0  # ended by its pipe closing, not killed


def test_the_training_process_ends_when_its_parent_goes(database: Database, settings: Settings) -> None:
    on, (a, _, _) = make(database, slug="orphan", enabled=True)
    complete_labeled(database, on, a)
    trainer = make_trainer(settings, database)
    trainer.step()
    child = trainer.process
    assert child is not None and trainer._conn is not None
    # what a dead parent leaves: its end of the pipe gone
    with socket.socket(fileno=os.dup(trainer._conn.fileno())) as end:
        end.shutdown(socket.SHUT_RDWR)
    child.join(30)
    assert child.exitcode == 0
    trainer.close()


def test_stopping_ends_a_pass_without_writing(database: Database, settings: Settings) -> None:
    on, (a, _, _) = make(database, slug="stop", enabled=True)
    complete_labeled(database, on, a)
    trainer = make_trainer(settings, database)
    trainer.stopping.set()
    try:
        assert trainer.step() is False
        assert trainer.process is None
        assert trained(database, on) == (0, 0)
    finally:
        trainer.close()

