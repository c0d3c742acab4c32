"""The bridge between the database and ``qistas.quality``: rows in, fitted models and labels out.

Every task type decides its tasks through its own aggregator (``TaskType.aggregator``).
Online: after each answer, the task's consensus comes from the project's last fitted worker
model (or, before the first fit, from each annotator's gold accuracy where the type can use
it), at a cost of the task's answers only. Offline: ``refit`` fits the type's aggregator on
every answer of the project, stores the worker model, and re-scores completed tasks; it reads
in one transaction, fits with no transaction open, and writes in short ones, a chunk of tasks
each, so annotators are never held up by a fit. Single-label classification fits every answer as integer arrays
(about 130 bytes an answer); the other types take each answer as its structure (one to a few
kilobytes in memory), so past ``sample_answers`` (``QISTAS_REFIT_SAMPLE_ANSWERS``) they fit a sample of the project's
tasks and then decide every completed task with that model a chunk at a time, as the online
path decides one: memory stays bounded whatever the project's size.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import func, or_, select
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from qistas.db.dialect import locks_claimed_rows
from qistas.db.engine import Database
from qistas.db.enums import ReviewStatus, Role, TaskStatus
from qistas.db.models import Annotation, Project, QualityModel, Task, User, WorkerStats
from qistas.db.prepared import Converted
from qistas.db.queries import quality as queries
from qistas.db.types import utcnow
from qistas.domain import gold as gold_rules
from qistas.domain import leases, outbox, results
from qistas.domain.aggregation import Consensus
from qistas.domain.tasktypes import Spec, parse_spec, plain_response, type_of
from qistas.errors import Conflict
from qistas.quality.structured import TaskResult

GOLD_METHOD = "gold_weighted"  # before the first fit, annotators weighted by their gold accuracy
PRIOR_METHOD = "equal_weights"  # ... and when none of them has answered a gold task yet
MIN_ANSWERS_TO_FIT = 50
REFIT_GROWTH = 0.2  # refit once the project has 20% more answers than at the last fit
REFIT_CHUNK = 50_000  # answers read at a time
REFIT_WRITE_CHUNK = 1000  # completed tasks re-scored at a time
# Structured types: a project with more answers fits the tasks whose id is a multiple of
# ceil(answers / this) (every kth task: spread evenly over the project's life) and decides the
# rest with the model so fitted (QISTAS_REFIT_SAMPLE_ANSWERS).
REFIT_SAMPLE_ANSWERS = 200_000


@dataclass(frozen=True)
class FittedModel:
    fitted_at: datetime
    method: str
    rows: dict[int, int]  # annotator id -> the worker's index in the model
    params: dict[str, Any]  # the aggregator's ``params_``


_cache: dict[int, FittedModel] = {}
_cache_lock = threading.Lock()
# The aggregator with the fitted model loaded, per project: built once per fit (loading turns
# the stored lists into arrays), not after every answer.
_loaded: dict[int, tuple[datetime, Spec, Any]] = {}


def _fitted_aggregator(project_id: int, fitted: FittedModel, spec: Spec) -> Any:
    found = _loaded.get(project_id)
    if found is not None and found[0] == fitted.fitted_at and found[1] == spec:
        return found[2]
    estimator = type_of(spec).aggregator(spec).load_params(fitted.params)
    with _cache_lock:
        _loaded[project_id] = (fitted.fitted_at, spec, estimator)
    return estimator


def method_name(estimator: Any) -> str:
    """A result's ``method``: the estimator's own name for what it chose, else its class."""
    chosen = getattr(estimator, "method_", None)
    if isinstance(chosen, str):
        return chosen[:32]
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(estimator).__name__).lower()[:32]


def load_model(session: Session, project_id: int) -> FittedModel | None:
    """The project's fitted model; parsed once per fit and cached in the process."""
    found = queries.FITTED_AT.first(session, project_id=project_id)
    if found is None:
        return None
    cached = _cache.get(project_id)
    if cached is not None and cached.fitted_at == found.fitted_at:
        return cached
    row = session.get(QualityModel, project_id)
    assert row is not None
    stored = row.params
    # Models stored before every type had one hold the classifier's arrays at the top level.
    params = stored.get("model", {k: v for k, v in stored.items() if k != "workers"})
    fitted = FittedModel(fitted_at=row.fitted_at, method=row.method,
                         rows={int(a): i for i, a in enumerate(stored.get("workers", []))}, params=params)
    with _cache_lock:
        _cache[project_id] = fitted
    return fitted


def _consensus(result: TaskResult, method: str) -> Consensus:
    return Consensus(result.response, float(result.confidence), method, needs_review=result.needs_review,
                     details=dict(result.extra))


def agreement(spec: Spec, answers: Sequence[Any], response: Any) -> float:
    """The share of answers that match the response within the type's tolerance."""
    if not answers:
        return 0.0
    task_type, plain = type_of(spec), plain_response(response)
    return sum(task_type.gold_matches(spec, a, plain) for a in answers) / len(answers)


def task_consensus(
    session: Session, *, project: Project, spec: Spec, task_id: int, data: dict[str, Any],
    answers: Sequence[tuple[int, Any]],
) -> Consensus:
    """The consensus of one task from its answers so far: (annotator id, answer) pairs."""
    task_type = type_of(spec)
    annotators = [annotator for annotator, _ in answers]
    fitted = load_model(session, project.id)
    if fitted is not None:
        workers = [fitted.rows.get(a, -1) for a in annotators]
        estimator = _fitted_aggregator(project.id, fitted, spec)
        method = fitted.method
    elif not task_type.weighs_gold(spec):
        workers, method = [-1] * len(answers), ""
        estimator = task_type.aggregator(spec)
    else:
        # Before the first fit: each annotator weighed by their gold accuracy.
        found = queries.GOLD_COUNTS_OF.all(session, project_id=project.id, task_id=task_id)
        accuracy = {row.annotator_id: gold_rules.accuracy_of(row.n_gold_correct, row.n_gold) for row in found}
        prior = gold_rules.accuracy_of(0, 0)
        params = task_type.prior_params(spec, [accuracy.get(a, prior) for a in annotators])
        graded = any(row.n_gold > 0 for row in found)
        workers, method = list(range(len(answers))), GOLD_METHOD if graded else PRIOR_METHOD
        estimator = task_type.aggregator(spec).load_params(params)
    result: TaskResult = estimator.aggregate(list(zip(workers, (a for _, a in answers), strict=True)),
                                             task_type.context(spec, data, None))
    return _consensus(result, method or method_name(estimator))


# --- refits -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefitResult:
    method: str
    n_answers: int
    n_workers: int
    changed: list[int]  # completed tasks whose answer changed


@dataclass(frozen=True)
class _Loaded:
    task_ids: list[int]
    worker_ids: list[int]
    items: list[list[tuple[int, Any]]]
    contexts: list[Any]
    n_answers: int


@dataclass(frozen=True)
class _Coded:
    task_ids: np.ndarray  # sorted; task i of the fit is task_ids[i]
    worker_ids: list[int]  # sorted; worker j of the fit
    tasks: np.ndarray  # per answer: task index, worker index, label index
    workers: np.ndarray
    labels: np.ndarray
    gold: np.ndarray  # per task: the gold label's index, or -1
    n_answers: int


def _load_answers(session: Session, project: Project, spec: Spec, *, stride: int = 1) -> _Loaded:
    """The project's answers by task (with ``stride`` > 1, those of the tasks whose id is a
    multiple of it), their workers and the tasks' contexts."""
    task_type = type_of(spec)
    by_task: dict[int, list[tuple[int, Any]]] = defaultdict(list)
    n_answers = 0
    query = (select(Annotation.task_id, Annotation.annotator_id, Annotation.answer)
             .where(Annotation.project_id == project.id, Annotation.rejected_at.is_(None)).order_by(Annotation.id))
    if stride > 1:
        query = query.where(Annotation.task_id % stride == 0)
    for task_id, annotator_id, answer in session.execute(query):
        by_task[task_id].append((annotator_id, answer))
        n_answers += 1
    models = _model_ids(session, project)
    contexts: dict[int, Any] = {}
    ids = sorted(by_task)
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        for task_id, data, gold, is_gold in session.execute(
                select(Task.id, Task.data, Task.gold, Task.is_gold).where(Task.id.in_(chunk))):
            if not is_gold and _only_models(by_task[task_id], models):
                del by_task[task_id]  # still counted in n_answers
                continue
            contexts[task_id] = task_type.context(spec, data, gold)
    task_ids = sorted(by_task)
    worker_ids = sorted({a for answers in by_task.values() for a, _ in answers})
    w_pos = {w: i for i, w in enumerate(worker_ids)}
    return _Loaded(
        task_ids=task_ids, worker_ids=worker_ids,
        items=[[(w_pos[a], answer) for a, answer in by_task[t]] for t in task_ids],
        contexts=[contexts.get(t) for t in task_ids], n_answers=n_answers,
    )


def _model_ids(session: Session, project: Project) -> set[int]:
    """The organization's model annotators (domain.model_annotators)."""
    return set(session.scalars(select(User.id).where(User.org_id == project.org_id, User.role == Role.MODEL)))


def _only_models(answers: Sequence[tuple[int, Any]], models: set[int]) -> bool:
    """Only models answered the task (yet): it says nothing of anyone's reliability, and fitted
    or re-scored it would only confirm the model by itself (domain.model_annotators)."""
    return bool(models) and all(a in models for a, _ in answers)


class RefitRunning(Conflict):
    """Another process is refitting the project right now."""


def refit(db: Database, *, project_id: int, lease_seconds: float = 60.0,
          sample_answers: int = REFIT_SAMPLE_ANSWERS) -> RefitResult | None:
    """Fit the project's worker model and re-score its completed tasks, under the project's
    refit lease: one process at a time, however many run (``RefitRunning`` otherwise).

    Returns None for a project with no answers yet, or when the lease was lost to another
    process before the result was written (which then writes its own). A structured type's
    project of more than ``sample_answers`` answers is fitted on a sample of its tasks.
    """
    with leases.held(db, f"refit:{project_id}", seconds=lease_seconds) as lease:
        if lease is None:
            raise RefitRunning("a refit of this project is running; try again shortly")
        return _refit(db, project_id=project_id, lease=lease, sample_answers=sample_answers)



def _load_coded(session: Session, project: Project, labels: list[str]) -> _Coded:
    """Every answer of a single-label project as integer arrays, read in chunks.

    The database extracts each answer's label; a chunk at a time becomes rows of three
    int64 (task id, annotator id, label index), so 10M answers take ~240 MB of arrays and no
    Python object per answer. The order is ``_load_answers``'s (by task, then answer id), so
    the fit sees exactly the same input.
    """
    index = {label: i for i, label in enumerate(labels)}
    connection = session.connection()
    found = connection.execute(  # yield_per on the statement: the session's later ones are not cursors
        select(Annotation.task_id, Annotation.annotator_id, Annotation.answer["label"].as_string())
        .where(Annotation.project_id == project.id, Annotation.rejected_at.is_(None)).order_by(Annotation.id)
        .execution_options(yield_per=REFIT_CHUNK))
    with found:
        parts = [np.array([(t, a, index.get(label, -1)) for t, a, label in rows], dtype=np.int64).reshape(-1, 3)
                 for rows in found.partitions()]
    coded = np.concatenate(parts) if parts else np.empty((0, 3), dtype=np.int64)
    n_answers = len(coded)
    gold_rows = connection.execute(
        select(Task.id, Task.is_gold, Task.gold["label"].as_string())
        .where(Task.project_id == project.id,
               or_(Task.is_gold.is_(True), Task.gold["label"].as_string().is_not(None)))).all()
    gold_ids = np.array([row[0] for row in gold_rows], dtype=np.int64)
    gold_task_ids = np.array([row[0] for row in gold_rows if row[1]], dtype=np.int64)
    models = np.array(sorted(session.scalars(select(User.id).where(User.org_id == project.org_id,
                                                                   User.role == Role.MODEL))), dtype=np.int64)
    if models.size:
        # Tasks only models answered (yet) say nothing of anyone's reliability (see _load_answers);
        # their answers still count in n_answers.
        task_ids, position = np.unique(coded[:, 0], return_inverse=True)
        keep = np.zeros(len(task_ids), dtype=bool)
        keep[position[~np.isin(coded[:, 1], models)]] = True
        keep |= np.isin(task_ids, gold_task_ids)
        coded = coded[keep[position]]
    task_ids, position = np.unique(coded[:, 0], return_inverse=True)
    worker_ids, worker = np.unique(coded[:, 1], return_inverse=True)
    order = np.argsort(position, kind="stable")  # by task, then as read (answer id)
    gold = np.full(len(task_ids), -1, dtype=np.int64)
    if gold_rows:
        at = np.searchsorted(task_ids, gold_ids)
        for i, (task_id, _is_gold, label) in zip(at, gold_rows, strict=True):
            if i < len(task_ids) and task_ids[i] == task_id:
                gold[i] = index.get(label, -1)
    return _Coded(task_ids=task_ids, worker_ids=[int(w) for w in worker_ids], tasks=position[order],
                  workers=worker[order], labels=coded[order, 2], gold=gold, n_answers=n_answers)


@dataclass(frozen=True)
class _Fit:
    project_id: int
    estimator: Any
    spec: Spec
    task_ids: np.ndarray  # the tasks the fit decided, sorted (``estimator.results_`` in this order)
    worker_ids: list[int]  # worker j of the fit
    n_answers: int  # every answer of the project that counts (not rejected), sampled or not
    n_given: int  # the answers given, rejected ones included (``_answers_given``): the refits' pace
    sampled: bool  # fitted on a sample: the other tasks are decided after the fit (``_decider``)


def _fit(db: Database, project_id: int, sample_answers: int) -> _Fit | None:
    """The fitted aggregator and what it was fitted on; None for a project with no answers yet."""
    with db.reader() as session:
        project = session.get(Project, project_id)
        if project is None:
            return None
        spec = parse_spec(project.task_spec)
        estimator = type_of(spec).aggregator(spec)
        given = session.execute(_answers_given().where(WorkerStats.project_id == project_id)).first()
        n_given = int(given[1]) if given is not None else 0
        if hasattr(estimator, "fit_arrays"):
            coded = _load_coded(session, project, estimator.labels)
        else:
            n_answers = session.scalar(select(func.count()).select_from(Annotation).where(
                Annotation.project_id == project_id, Annotation.rejected_at.is_(None))) or 0
            stride = max(1, -(-n_answers // max(sample_answers, 1)))
            loaded = _load_answers(session, project, spec, stride=stride)
    if hasattr(estimator, "fit_arrays"):
        if not len(coded.task_ids):
            return None
        estimator.fit_arrays(coded.tasks, coded.workers, coded.labels, n_tasks=len(coded.task_ids),
                             n_workers=len(coded.worker_ids), gold=coded.gold)
        return _Fit(project_id, estimator, spec, coded.task_ids, coded.worker_ids, coded.n_answers, n_given,
                    sampled=False)
    if not loaded.items:
        return None
    estimator.fit(loaded.items, n_workers=len(loaded.worker_ids), contexts=loaded.contexts)
    return _Fit(project_id, estimator, spec, np.array(loaded.task_ids, dtype=np.int64), loaded.worker_ids,
                n_answers, n_given, sampled=stride > 1)


# A result a reviewer accepted or corrected is theirs: no refit changes it.
_REVIEWERS_OWN = (ReviewStatus.ACCEPTED, ReviewStatus.CORRECTED)


def _rescorable(task: Task | Row[Any]) -> bool:
    """Whether a refit may change the task's result (checked again in the transaction that
    writes it: a reviewer may have accepted it since its id was read)."""
    return task.status == TaskStatus.COMPLETED and not task.is_gold and task.review_status not in _REVIEWERS_OWN


def _rescorable_ids(session: Session, project_id: int) -> np.ndarray:
    """The ids of the project's completed tasks a refit may change, sorted, read in chunks into
    one int64 array (8 bytes a task): the re-scoring then reads each chunk of them by primary
    key (a query with these conditions per chunk made SQLite walk the completed tasks each time)."""
    found = session.connection().execute(  # yield_per on the statement, as in _load_coded
        select(Task.id).where(Task.project_id == project_id, Task.status == TaskStatus.COMPLETED,
                              Task.is_gold.is_(False), Task.review_status.not_in(_REVIEWERS_OWN))
        .order_by(Task.id).execution_options(yield_per=REFIT_CHUNK))
    with found:
        parts = [np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
                 for rows in found.partitions()]
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def _store_model(session: Session, *, project_id: int, method: str, params: dict[str, Any], n_given: int) -> None:
    model = session.get(QualityModel, project_id)
    if model is None:
        model = QualityModel(project_id=project_id, method=method, n_annotations=0, params={})
        session.add(model)
    model.method, model.params, model.fitted_at = method, params, utcnow()
    model.n_annotations = n_given


def _as_stored(task: Task | Row[Any], result: TaskResult, method: str) -> bool:
    """Whether the task (or a row of its columns) holds ``result`` as a refit would write it."""
    return (task.response, task.confidence, task.method, task.needs_review, task.details) == (
        result.response, float(result.confidence), method, result.needs_review, dict(result.extra) or None)


# The columns a refit compares with its results: read with no write transaction open, and read
# again in the one that writes.
_STORED = (Task.id, Task.status, Task.is_gold, Task.review_status, Task.response, Task.confidence, Task.method,
           Task.needs_review, Task.details)


@dataclass(frozen=True)
class _Planned:
    """A task's new result, its columns as read when it was found to differ, whether its answer
    changes, and the parameters that write it (encoded before the write transaction opens)."""

    read: Row[Any]
    result: TaskResult
    moved: bool
    write: Converted


def _to_write(db: Database, decided: dict[int, TaskResult], method: str) -> dict[int, _Planned]:
    """Of ``decided``, the tasks a refit may change whose stored result differs, read with no
    write transaction open: a chunk whose every result is as stored (all of them, in a refit
    that changes nothing) opens none, and ``_write_chunk`` reads only the tasks that change."""
    if not decided:
        return {}
    with db.reader() as session:
        stored = session.execute(select(*_STORED).where(Task.id.in_(sorted(decided)))).all()
    dialect = db.engine.dialect
    return {row.id: _Planned(row, result, results.answer_changed(row.response, result.response),
                             queries.RESCORE.converted(dialect, {
                                 "task_id": row.id, "response": result.response,
                                 "confidence": float(result.confidence), "method": method,
                                 "needs_review": result.needs_review, "details": dict(result.extra) or None}))
            for row in stored if _rescorable(row) and not _as_stored(row, result := decided[row.id], method)}


def _write_chunk(session: Session, *, project_id: int, planned: dict[int, _Planned], method: str) -> list[int]:
    """Store a chunk's planned results, in the write transaction; the ids whose answer changed.

    Each task's columns are read again (its row locked on PostgreSQL): the tasks still as they
    were read, whose change nobody listens to, are written by one statement run for them all,
    a few milliseconds for a thousand; a task changed since (a reviewer accepted it, a late
    answer settled it again) or whose changed answer a webhook awaits is loaded and written
    through ``_write_result``, which checks it again and announces the change. On SQLite the
    writer's lock is held for this transaction: loading and flushing every task of the chunk
    through the ORM held it 110-130 ms per thousand (``benchmarks/refit.py``), now about 20.
    """
    query = select(*_STORED).where(Task.id.in_(sorted(planned))).order_by(Task.id)
    if locks_claimed_rows(session):
        query = query.with_for_update()
    listened = any(plan.moved for plan in planned.values()) and outbox.listened(
        session, project_id=project_id, event="result.changed")
    as_read: list[Converted] = []
    changed: list[int] = []
    again: list[int] = []
    for row in session.execute(query):
        plan = planned[row.id]
        if row != plan.read or (plan.moved and listened):
            again.append(row.id)
            continue
        as_read.append(plan.write)
        if plan.moved:
            changed.append(row.id)
    queries.RESCORE.run_many(session, as_read)
    if again:
        for task in session.scalars(select(Task).where(Task.id.in_(again)).order_by(Task.id)):
            if _rescorable(task) and _write_result(session, task=task, result=planned[task.id].result, method=method):
                changed.append(task.id)
    return sorted(changed)


def _write_result(session: Session, *, task: Task, result: TaskResult, method: str) -> bool:
    """Store a refit's result for one task; True when its answer changed (and is announced,
    as ``result.changed``, in this same transaction). Not flushed."""
    if _as_stored(task, result, method):
        return False  # as stored: nothing to write, nothing to announce
    details, confidence = dict(result.extra) or None, float(result.confidence)
    task.needs_review, task.details = result.needs_review, details
    return results.change_result(session, task=task, response=result.response, confidence=confidence,
                                 method=method, flush=False)


def _refit(db: Database, *, project_id: int, lease: leases.Lease,
           sample_answers: int = REFIT_SAMPLE_ANSWERS) -> RefitResult | None:
    """Fit the project's worker model and re-score its completed tasks (under ``lease``).

    The completed tasks are re-scored ``REFIT_WRITE_CHUNK`` at a time, each chunk decided and
    compared with what is stored with no write transaction open, and what changes written in a
    short transaction of its own that still holds the lease, so annotators never wait on a long
    refit's writes; the model is stored after the last
    chunk, so a refit cut short leaves the project due for the next. Returns None for a project
    with no answers yet, or when the lease was lost (the process that took it over writes the fit).
    """
    fit = _fit(db, project_id, sample_answers)
    if fit is None:
        return None
    method = method_name(fit.estimator)
    decide = _decider(db, fit) if fit.sampled else _fitted_results(fit)
    with db.reader() as session:
        completed = _rescorable_ids(session, project_id)
    changed: list[int] = []
    for start in range(0, len(completed), REFIT_WRITE_CHUNK):
        decided = _to_write(db, decide([int(t) for t in completed[start:start + REFIT_WRITE_CHUNK]]), method)
        if not decided:
            continue
        with db.writer.begin() as session:
            if not leases.holds(session, lease=lease):
                return None
            changed.extend(_write_chunk(session, project_id=project_id, planned=decided, method=method))
    with db.writer.begin() as session:
        if not leases.holds(session, lease=lease):
            return None
        _store_model(session, project_id=project_id, method=method, n_given=fit.n_given,
                     params={"workers": fit.worker_ids, "model": fit.estimator.params_})
    return RefitResult(method=method, n_answers=fit.n_answers, n_workers=len(fit.worker_ids), changed=changed)


Decide = Callable[[list[int]], dict[int, TaskResult]]


def _fitted_results(fit: _Fit) -> Decide:
    """The fit's own results (``results_``), for the tasks it decided."""
    def decide(chunk: list[int]) -> dict[int, TaskResult]:
        ids = np.array(chunk, dtype=np.int64)
        at = np.minimum(np.searchsorted(fit.task_ids, ids), len(fit.task_ids) - 1)
        return {int(t): fit.estimator.results_[int(i)] for t, i in zip(ids, at, strict=True) if fit.task_ids[i] == t}
    return decide


def _decider(db: Database, fit: _Fit) -> Decide:
    """After a fit on a sample: each task decided by the fitted worker model as the online path
    decides one (``aggregate``, annotators the sample missed getting the prior), from its answers
    read by primary key; tasks only models answered are left as they are."""
    task_type = type_of(fit.spec)
    estimator = task_type.aggregator(fit.spec).load_params(fit.estimator.params_)
    workers = {w: i for i, w in enumerate(fit.worker_ids)}
    with db.reader() as session:
        project = session.get_one(Project, fit.project_id)
        models = _model_ids(session, project)

    def decide(chunk: list[int]) -> dict[int, TaskResult]:
        answers: dict[int, list[tuple[int, Any]]] = defaultdict(list)
        with db.reader() as session:
            for task_id, annotator_id, answer in session.execute(
                    select(Annotation.task_id, Annotation.annotator_id, Annotation.answer)
                    .where(Annotation.task_id.in_(chunk), Annotation.rejected_at.is_(None))
                    .order_by(Annotation.id)):
                answers[task_id].append((annotator_id, answer))
            tasks = session.execute(select(Task.id, Task.data, Task.gold).where(Task.id.in_(chunk))).all()
        return {task_id: estimator.aggregate([(workers.get(a, -1), answer) for a, answer in answers[task_id]],
                                             task_type.context(fit.spec, data, gold))
                for task_id, data, gold in tasks if answers[task_id] and not _only_models(answers[task_id], models)}
    return decide


def _answers_given() -> Any:
    """Each project's answers given so far, rejected ones included: the sum of its annotators'
    counts (``worker_stats``, kept at every answer), a row per annotator to read rather than one
    per answer."""
    return select(WorkerStats.project_id, func.sum(WorkerStats.n_annotations)).group_by(WorkerStats.project_id)


def answers_given(session: Session, *, project_id: int) -> int:
    """The project's answers given so far, rejected ones included (``_answers_given``)."""
    found = session.execute(_answers_given().where(WorkerStats.project_id == project_id)).first()
    return int(found[1]) if found is not None else 0


def projects_due_for_refit(db: Database, *, project_id: int | None = None) -> list[int]:
    """Projects (or the one project) whose answers grew enough since their last fit: the
    answers given now against those given when it was fitted, rejected ones counted in both
    (so a project with many rejected answers is not due again until it grows)."""
    with db.reader() as session:
        counts_query = _answers_given()
        fitted_query = select(QualityModel.project_id, QualityModel.n_annotations)
        if project_id is not None:
            counts_query = counts_query.where(WorkerStats.project_id == project_id)
            fitted_query = fitted_query.where(QualityModel.project_id == project_id)
        counts = session.execute(counts_query).all()
        fitted = dict(session.execute(fitted_query).all())
        return [found for found, count in counts
                if count >= MIN_ANSWERS_TO_FIT and (fitted.get(found) is None
                                                    or count >= fitted[found] * (1 + REFIT_GROWTH))]


def refit_step(db: Database, *, lease_seconds: float = 60.0, sample_answers: int = REFIT_SAMPLE_ANSWERS) -> bool:
    """One pass of the background refit loop: refit every project that is due.

    Every worker process runs this loop. A project another process is refitting is skipped,
    and one that process has just refitted is no longer due once its lease is ours: each
    growth of a project's answers is fitted once, not once per process.
    """
    for project_id in projects_due_for_refit(db):
        with leases.held(db, f"refit:{project_id}", seconds=lease_seconds) as lease:
            if lease is None or not projects_due_for_refit(db, project_id=project_id):
                continue
            _refit(db, project_id=project_id, lease=lease, sample_answers=sample_answers)
    return False  # then sleep for the interval
