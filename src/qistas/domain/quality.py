"""The bridge between the database and ``qistas.quality``: rows in, fitted models and labels out.

Online: after each answer to a single-label classification task, the task's posterior is
computed from the project's last fitted worker model (or, before the first fit, from each
annotator's gold accuracy), in O(answers × labels). Offline: ``refit`` fits the default
estimator on every answer of the project (gold tasks clamped to their gold label), stores the
worker model, and re-scores completed tasks; it reads in one transaction, fits with no
transaction open, and writes in a short one, so annotators are never held up by a fit.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from qistas.db.engine import Database
from qistas.db.models import Annotation, Project, QualityModel, Task, WorkerStats, table
from qistas.db.prepared import Prepared
from qistas.db.types import utcnow
from qistas.domain import gold as gold_rules
from qistas.domain import results
from qistas.domain.aggregation import Consensus
from qistas.domain.tasktypes import ClassificationSpec, parse_spec
from qistas.quality import WorkerModel, best_label, default_classifier, posterior_for_task

GOLD_METHOD = "gold_weighted"
MIN_ANSWERS_TO_FIT = 50
REFIT_GROWTH = 0.2  # refit once the project has 20% more answers than at the last fit


@dataclass(frozen=True)
class FittedModel:
    fitted_at: datetime
    method: str
    rows: dict[int, int]  # annotator id -> row of the confusion array
    model: WorkerModel


_cache: dict[int, FittedModel] = {}
_cache_lock = threading.Lock()


def is_scored(spec: Any) -> bool:
    """Projects whose answers are scored with a posterior (the others use exact-match votes)."""
    return isinstance(spec, ClassificationSpec) and not spec.multi


class _FittedAt(NamedTuple):
    fitted_at: datetime


class _GoldCounts(NamedTuple):
    annotator_id: int
    n_gold: int
    n_gold_correct: int


# Prepared: these run after every answer (see assignments.py and db/prepared.py).
_models = table(QualityModel).c
_stats = table(WorkerStats).c
_answers = table(Annotation).c
_FITTED_AT = Prepared(select(_models.fitted_at).where(_models.project_id == bindparam("project_id")), _FittedAt)
# The gold counts of everyone who answered the task.
_GOLD_COUNTS_OF = Prepared(
    select(_stats.annotator_id, _stats.n_gold, _stats.n_gold_correct).where(
        _stats.project_id == bindparam("project_id"),
        _stats.annotator_id.in_(select(_answers.annotator_id).where(_answers.task_id == bindparam("task_id"))),
    ),
    _GoldCounts,
)


def load_model(session: Session, project_id: int) -> FittedModel | None:
    """The project's fitted model; parsed once per fit and cached in the process."""
    found = _FITTED_AT.first(session, project_id=project_id)
    if found is None:
        return None
    fitted_at = found.fitted_at
    cached = _cache.get(project_id)
    if cached is not None and cached.fitted_at == fitted_at:
        return cached
    row = session.get(QualityModel, project_id)
    assert row is not None
    params = row.params
    fitted = FittedModel(
        fitted_at=row.fitted_at,
        method=row.method,
        rows={int(a): i for i, a in enumerate(params["workers"])},
        model=WorkerModel(np.asarray(params["confusions"], dtype=np.float64),
                          np.asarray(params["priors"], dtype=np.float64)),
    )
    with _cache_lock:
        _cache[project_id] = fitted
    return fitted


def _one_coin(accuracy: float, k: int) -> np.ndarray:
    matrix = np.full((k, k), (1.0 - accuracy) / (k - 1))
    np.fill_diagonal(matrix, accuracy)
    return matrix


def task_consensus(
    session: Session, *, project: Project, spec: ClassificationSpec, task_id: int,
    answers: Sequence[tuple[int, Any]],
) -> Consensus:
    """The posterior consensus of one task from its answers so far: (annotator id, answer) pairs."""
    index = {label: i for i, label in enumerate(spec.labels)}
    annotators = [annotator for annotator, _ in answers]
    labels = np.array([index[answer["label"]] for _, answer in answers], dtype=np.int64)
    k = len(spec.labels)
    fitted = load_model(session, project.id)
    if fitted is not None:
        workers = np.array([fitted.rows.get(a, -1) for a in annotators], dtype=np.int64)
        posterior = fitted.model.posterior(workers, labels)
        method = fitted.method
    else:
        # Before the first fit: each annotator is a one-coin worker with their gold accuracy.
        found = _GOLD_COUNTS_OF.all(session, project_id=project.id, task_id=task_id)
        accuracy = {row.annotator_id: gold_rules.accuracy_of(row.n_gold_correct, row.n_gold) for row in found}
        prior = gold_rules.accuracy_of(0, 0)
        confusions = np.stack([_one_coin(accuracy.get(a, prior), k) for a in annotators]) if k > 1 else None
        if confusions is None:
            posterior = np.ones(1)
        else:
            posterior = posterior_for_task(np.arange(len(annotators)), labels, confusions, np.full(k, 1.0 / k))
        method = GOLD_METHOD
    best = best_label(posterior)  # equal posteriors (within 1e-9): the spec's first label
    return Consensus({"label": spec.labels[best]}, float(posterior[best]), method)


# --- refits -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefitResult:
    method: str
    n_answers: int
    n_workers: int
    changed: list[int]  # completed tasks whose label changed


def _load_answers(session: Session, project: Project, spec: ClassificationSpec) -> dict[str, Any]:
    index = {label: i for i, label in enumerate(spec.labels)}
    rows = session.execute(
        select(Annotation.task_id, Annotation.annotator_id, Annotation.answer)
        .where(Annotation.project_id == project.id)
        .order_by(Annotation.id)
    ).all()
    golds = session.execute(
        select(Task.id, Task.gold).where(Task.project_id == project.id, Task.is_gold.is_(True))
    ).all()
    return {"rows": rows, "golds": golds, "index": index}


def _fit(loaded: dict[str, Any], k: int) -> tuple[Any, list[int], list[int]]:
    rows, index = loaded["rows"], loaded["index"]
    task_ids = sorted({r.task_id for r in rows})
    worker_ids = sorted({r.annotator_id for r in rows})
    t_pos = {t: i for i, t in enumerate(task_ids)}
    w_pos = {w: i for i, w in enumerate(worker_ids)}
    tasks = np.fromiter((t_pos[r.task_id] for r in rows), dtype=np.int64, count=len(rows))
    workers = np.fromiter((w_pos[r.annotator_id] for r in rows), dtype=np.int64, count=len(rows))
    labels = np.fromiter((index[r.answer["label"]] for r in rows), dtype=np.int64, count=len(rows))
    gold = np.full(len(task_ids), -1, dtype=np.int64)
    for task_id, answer in loaded["golds"]:
        if task_id in t_pos and answer and answer.get("label") in index:
            gold[t_pos[task_id]] = index[answer["label"]]
    estimator = default_classifier().fit(tasks, workers, labels, n_labels=k, gold=gold)
    return estimator, task_ids, worker_ids


def refit(db: Database, *, project_id: int) -> RefitResult | None:
    """Fit the project's worker model and re-score its completed tasks.

    Returns None for projects that are not scored (not single-label classification) or
    have no answers yet.
    """
    with db.reader() as session:
        project = session.get(Project, project_id)
        if project is None:
            return None
        spec = parse_spec(project.task_spec)
        if not is_scored(spec):
            return None
        loaded = _load_answers(session, project, spec)
    if not loaded["rows"] or len(spec.labels) < 2:
        return None
    estimator, task_ids, worker_ids = _fit(loaded, len(spec.labels))
    method = type(estimator).__name__.lower()
    labels, probas = estimator.labels_, estimator.probas_
    params = {
        "workers": worker_ids,
        "priors": estimator.priors_.tolist(),
        "confusions": np.round(estimator.confusions_, 6).tolist(),
    }
    changed: list[int] = []
    position = {t: i for i, t in enumerate(task_ids)}
    with db.writer.begin() as session:
        model = session.get(QualityModel, project_id)
        if model is None:
            model = QualityModel(project_id=project_id, method=method, n_annotations=0, params={})
            session.add(model)
        model.method, model.params, model.fitted_at = method, params, utcnow()
        model.n_annotations = len(loaded["rows"])
        completed = session.scalars(
            select(Task).where(Task.project_id == project_id, Task.status == "completed", Task.is_gold.is_(False))
        )
        for task in completed:
            i = position.get(task.id)
            if i is None:
                continue
            label = spec.labels[int(labels[i])]
            # A changed answer is announced (result.changed) in this same transaction.
            if results.change_result(session, task=task, response={"label": label},
                                     confidence=float(probas[i, labels[i]]), method=method):
                changed.append(task.id)
    return RefitResult(method=method, n_answers=len(loaded["rows"]), n_workers=len(worker_ids), changed=changed)


def projects_due_for_refit(db: Database) -> list[int]:
    """Scored projects whose answers grew enough since their last fit."""
    with db.reader() as session:
        counts = session.execute(
            select(Annotation.project_id, func.count()).group_by(Annotation.project_id)
        ).all()
        fitted = dict(session.execute(select(QualityModel.project_id, QualityModel.n_annotations)).all())
        due = []
        for project_id, count in counts:
            last = fitted.get(project_id)
            if count >= MIN_ANSWERS_TO_FIT and (last is None or count >= last * (1 + REFIT_GROWTH)):
                project = session.get(Project, project_id)
                if project is not None and is_scored(parse_spec(project.task_spec)):
                    due.append(project_id)
        return due


def refit_step(db: Database) -> bool:
    """One pass of the background refit loop: refit every project that is due."""
    for project_id in projects_due_for_refit(db):
        refit(db, project_id=project_id)
    return False  # then sleep for the interval
