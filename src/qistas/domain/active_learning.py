"""Active learning: a text model trained on a project's completed tasks orders the pending ones.

A project's ``active_learning`` setting, ``{"enabled": bool, "random_share": 0..1,
"seed_labels": n}``, applies to single-label classification projects whose spec names a
``text_field``. When on, a background pass (``train_step``, run by the ``qistas-active`` loop
of the background workers, ``workers.trainer``) retrains the model
(``qistas.quality.active.TextClassifier``) each time ``active_learning_every`` more tasks of
the project are completed, and writes, for every pending task:

- ``serve_rank``: its place in the serving order, most uncertain first with a share
  ``random_share`` of places drawn at random (:func:`qistas.quality.active.serving_order`),
  or a random order while the model has learned from fewer than ``seed_labels`` labels;
  the claim then serves unstarted tasks by it (started tasks still come first, and gold,
  exams, probation and routing are the claim's as ever: ``domain.assignments``);
- a prediction ``{"model": "qistas-active-v<n>", "answer": {"label": ...}, "score": p}``
  among the task's predictions (``domain.predictions``), replacing the previous version's,
  which the project's ``prefill`` setting may show and the model report compares.

It never blocks the loop: the pass reads in one read transaction, fits outside any
transaction (``fit``: in the training process, ``workers.trainer``), and writes its results in
short chunked transactions (``CHUNK`` tasks each), like staged imports; a take runs between any
two of them. One pass per project at a time, whatever the number of worker processes: the pass
runs under the named lease ``active:<project id>`` (``domain.leases``), checks the project is
still due once it holds it, and every write checks in its own transaction that the lease is
still its own. The project's ``active_trained_on`` moves forward in the last write, so a pass
that died half-way is run again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from qistas.db.engine import Database
from qistas.db.enums import TaskStatus
from qistas.db.models import Project, Task, table
from qistas.db.unit_of_work import write
from qistas.domain import leases
from qistas.domain.predictions import MAX_PREDICTIONS
from qistas.errors import Invalid

log = logging.getLogger("qistas.workers")

CHUNK = 200  # tasks written per transaction
MODEL_PREFIX = "qistas-active-v"
DEFAULT_RANDOM_SHARE = 0.1
# Labels learned from before the order follows the model: until then a pass ranks the pending
# tasks in a random order (a random seed set, whatever order they were imported in), since a
# model from a few dozen labels is sure of the wrong things (benchmarks/active_learning.py).
DEFAULT_SEED_LABELS = 200


@dataclass(frozen=True)
class ActiveLearning:
    enabled: bool = False
    random_share: float = DEFAULT_RANDOM_SHARE
    seed_labels: int = DEFAULT_SEED_LABELS


def parse_setting(raw: Any) -> ActiveLearning:
    """The setting from a project's ``active_learning`` field; a bad field is 422 naming it."""
    if not raw:
        return ActiveLearning()
    if not isinstance(raw, dict):
        raise Invalid("active_learning must be an object", details={"field": "active_learning"})
    unknown = raw.keys() - ActiveLearning.__dataclass_fields__.keys()
    if unknown:
        name = sorted(unknown)[0]
        raise Invalid(f"active_learning.{name} is not a known field", details={"field": f"active_learning.{name}"})
    setting = ActiveLearning(**raw)
    share = setting.random_share
    if not isinstance(setting.enabled, bool):
        raise Invalid("active_learning.enabled must be true or false", details={"field": "active_learning.enabled"})
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
        raise Invalid("active_learning.random_share must be a number in [0, 1]",
                      details={"field": "active_learning.random_share"})
    seeds = setting.seed_labels
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 0:
        raise Invalid("active_learning.seed_labels must be a whole number, 0 or more",
                      details={"field": "active_learning.seed_labels"})
    return setting


def check_setting(raw: Any, task_spec: dict[str, Any]) -> dict[str, Any]:
    """Validate the setting against the project's spec; the value to store."""
    setting = parse_setting(raw)
    if setting.enabled and text_field(task_spec) is None:
        raise Invalid("active_learning is for single-label classification projects with a text_field",
                      details={"field": "active_learning"})
    return dict(raw) if raw else {}


def text_field(task_spec: dict[str, Any]) -> str | None:
    """The field the model reads, or None when the spec is not single-label text classification."""
    if task_spec.get("type") != "classification" or task_spec.get("multi"):
        return None
    field = task_spec.get("text_field")
    return field if isinstance(field, str) and field else None


def serves_ranked(raw: dict[str, Any] | None) -> bool:
    """Whether the claim serves by rank: one dictionary look-up on the take."""
    return bool(raw) and raw.get("enabled") is True  # type: ignore[union-attr]


def model_name(version: int) -> str:
    return f"{MODEL_PREFIX}{version}"


def projects_due(db: Database, *, every: int, project_id: int | None = None) -> list[tuple[int, int]]:
    """(project id, completed tasks) of the projects (or the one project) with active learning
    on and at least ``every`` tasks completed since their last pass."""
    with db.reader() as session:
        query = select(Project.id, Project.active_learning, Project.active_trained_on).where(
            Project.archived_at.is_(None))
        if project_id is not None:
            query = query.where(Project.id == project_id)
        on = [(pid, trained) for pid, setting, trained in session.execute(query) if serves_ranked(setting)]
        if not on:
            return []
        completed = dict(session.execute(
            select(Task.project_id, func.count()).where(Task.project_id.in_([p for p, _ in on]),
                                                        Task.status == TaskStatus.COMPLETED)
            .group_by(Task.project_id)).all())
    return [(pid, completed.get(pid, 0)) for pid, trained in on if completed.get(pid, 0) >= trained + every]


@dataclass(frozen=True)
class FitJob:
    """What the model learns from and what it ranks: plain values, sent to the training process."""

    texts: list[str]
    labels: list[str]
    pending: list[str]
    random_share: float
    version: int


@dataclass(frozen=True)
class Fitted:
    """Per pending text, in the job's order: its serving rank (1 first), label and probability."""

    ranks: list[int]
    labels: list[str]
    scores: list[float]


Fit = Callable[[FitJob], Fitted]


def fit(job: FitJob) -> Fitted:
    """Fit the model on the job's labeled texts and rank its pending ones, here: CPU work, no
    database (the background loop has its training process run the same function)."""
    from qistas.quality.active import rank_pending

    return fitted(rank_pending(job.texts, job.labels, job.pending, random_share=job.random_share,
                               random_state=job.version))


def fitted(arrays: tuple[Any, Any, Any]) -> Fitted:
    """``rank_pending``'s arrays as plain values."""
    ranks, labels, scores = arrays
    return Fitted(ranks=[int(r) for r in ranks], labels=[str(y) for y in labels],
                  scores=[round(float(p), 4) for p in scores])


def train_step(db: Database, *, every: int, lease_seconds: float = 60.0, fit: Fit = fit,
               pause: Callable[[str], None] | None = None) -> float:
    """One pass of the background loop: train every project that is due; the seconds spent fitting."""
    spent = 0.0
    for project_id, _ in projects_due(db, every=every):
        started = time.monotonic()
        train(db, project_id=project_id, every=every, lease_seconds=lease_seconds, fit=fit, pause=pause)
        spent += time.monotonic() - started
    return spent


def train(db: Database, *, project_id: int, every: int, lease_seconds: float = 60.0, fit: Fit = fit,
          pause: Callable[[str], None] | None = None) -> int | None:
    """Retrain one project's model and write its ranks and predictions; the version written,
    or None when another process has the pass, the project is not due, or the lease was lost.

    ``fit`` runs the model outside any transaction (by default here; the background loop hands
    it to its training process). ``pause(stage)`` is called after the fit ("fitted") and after
    each chunk ("chunk"), outside any transaction: the points where the loop's transactions run,
    and where the caller may end the pass by raising.
    """
    with leases.held(db, f"active:{project_id}", seconds=lease_seconds) as lease:
        if lease is None:
            return None
        with db.reader() as session:
            data = _read_pass(session, project_id=project_id, every=every)
        if data is None:
            return None
        version, completed, job, task_ids = data
        if not job.pending or not job.labels:  # nothing to rank, or nothing to learn from yet
            return _finish(db, lease, project_id=project_id, version=None, completed=completed)
        fitted = fit(job)
        if pause:
            pause("fitted")
        name = model_name(version)
        rows = [(task_id, fitted.ranks[i], {"model": name, "answer": {"label": fitted.labels[i]},
                                            "score": fitted.scores[i]})
                for i, task_id in enumerate(task_ids)]
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start:start + CHUNK]
            if not write(db, partial(_write_chunk, lease=lease, chunk=chunk), bulk=True):
                return None  # the lease was lost: the process that took it over writes
            if pause:
                pause("chunk")
        done = _finish(db, lease, project_id=project_id, version=version, completed=completed)
        log.info("active learning: project %s model v%s from %s labels, %s tasks ranked",
                 project_id, version, len(job.labels), len(rows))
        return done


def _read_pass(session: Session, *, project_id: int, every: int) -> tuple[int, int, FitJob, list[int]] | None:
    """What a pass learns from, if the project is (still) due: the next version, the completed
    count, the job (labeled texts, pending texts) and the pending tasks' ids."""
    project = session.get(Project, project_id)
    field = text_field(project.task_spec) if project is not None else None
    if project is None or field is None or not serves_ranked(project.active_learning):
        return None
    done = session.execute(select(Task.data, Task.response).where(
        Task.project_id == project_id, Task.status == TaskStatus.COMPLETED)).all()
    if len(done) < project.active_trained_on + every:
        return None  # another process has just trained it
    pending = session.execute(select(Task.id, Task.data).where(
        Task.project_id == project_id, Task.status == TaskStatus.PENDING).order_by(Task.id)).all()
    labeled = [(str(data.get(field, "")), str(response["label"])) for data, response in done
               if isinstance(response, dict) and "label" in response]
    setting = parse_setting(project.active_learning)
    job = FitJob(texts=[t for t, _ in labeled], labels=[y for _, y in labeled],
                 pending=[str(data.get(field, "")) for _, data in pending],
                 random_share=setting.random_share if len(labeled) >= setting.seed_labels else 1.0,
                 version=project.active_version + 1)
    return job.version, len(done), job, [task_id for task_id, _ in pending]


def _finish(db: Database, lease: leases.Lease, *, project_id: int, version: int | None, completed: int) -> int | None:
    """Record the pass (the version written, the completed tasks it learned from), if the lease
    is still ours."""
    values: dict[str, Any] = {"active_trained_on": completed}
    if version is not None:
        values["active_version"] = version

    def work(session: Session) -> bool:
        if not leases.holds(session, lease=lease):
            return False
        session.execute(update(Project).where(Project.id == project_id).values(**values))
        return True

    return version if write(db, work) else None


_tasks = table(Task)
_SET_RESULT = (update(_tasks).where(_tasks.c.id == bindparam("task_id"))
               .values(serve_rank=bindparam("rank"), predictions=bindparam("preds")))


def _write_chunk(session: Session, *, lease: leases.Lease, chunk: list[tuple[int, int, dict[str, Any]]]) -> bool:
    """Rank and predict the chunk's tasks still pending, keeping other models' predictions (a
    task that carries the most predictions it may keeps them and gets no new one); False, and
    nothing written, when the lease is no longer ours."""
    if not leases.holds(session, lease=lease):
        return False
    ids = [task_id for task_id, _, _ in chunk]
    # Locked (PostgreSQL): a pre-label job adding its prediction meanwhile is not written over.
    current: dict[int, list[dict[str, Any]] | None] = dict(session.execute(
        select(Task.id, Task.predictions).where(Task.id.in_(ids), Task.status == TaskStatus.PENDING)
        .order_by(Task.id).with_for_update()).all())
    rows = []
    for task_id, rank, prediction in chunk:
        if task_id not in current:
            continue  # completed or canceled since the read
        others = [p for p in current[task_id] or () if not str(p.get("model", "")).startswith(MODEL_PREFIX)]
        preds = [*others, prediction] if len(others) < MAX_PREDICTIONS else others
        rows.append({"task_id": task_id, "rank": rank, "preds": preds})
    if rows:
        session.execute(_SET_RESULT, rows)
    return True
