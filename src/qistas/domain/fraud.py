"""Fraud and low effort: reading the signals of ``qistas.quality.fraud`` from a project's
answers, and what an owner does about a flagged annotator.

Times are the server's: from the lease (``assignments.created_at``) to the submit
(``annotations.created_at``), never what the client reports. Imported answers have no lease
time and are judged on their answers only; models' answers are not judged.

Actions, each recorded in the audit log with its reason:

- ``probation``: the annotator is served more gold (``gold.PROBATION_GOLD_SHARE``), and in a
  project with a review stage every task they answered waits for a reviewer.
- ``block``: no more of the project's tasks; their live leases are given back.
- ``exclude``: blocked, and every answer they gave in the project stops counting: it is marked
  excluded (and rejected, so nothing counts it), each task they answered loses their answer
  and is decided again from the answers left (``annotations.settle``): it goes back to pending
  when it no longer has enough. Idempotent: a second call finds nothing left to exclude.
- ``clear``: the end of a probation (a block is lifted by ``gold.unblock``).

Detection runs on request (``report``): reading and testing a project's answers takes time in
proportion to them, and the annotation loop does none of it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Text, cast, select, update
from sqlalchemy.orm import Session

from qistas.db.enums import BatchStatus, LeaseStatus, ReviewStatus, Role, TaskStatus
from qistas.db.models import Annotation, Assignment, Batch, Project, Task, User, WorkerStats
from qistas.db.rawrows import DecodedTexts, RawValues
from qistas.domain import audit, gold
from qistas.domain.annotations import settle
from qistas.domain.assignments import release_all
from qistas.domain.tasktypes import parse_spec
from qistas.errors import Conflict, Invalid
from qistas.quality.fraud import SIGNALS, FraudDetector

ACTIONS = ("probation", "block", "exclude", "clear")
MAX_REASON = 2000
EXCLUDED = "excluded"


@dataclass
class AnnotatorSignals:
    annotator_id: int
    answers: int
    signals: dict[str, Any]
    flags: list[str]
    status: str | None = None  # the fraud status: probation | blocked | excluded
    reason: str | None = None
    blocked: bool = False
    copies: list[int] = field(default_factory=list)  # annotator ids of the flagged pairs


@dataclass(frozen=True)
class _Rows:
    annotator_ids: list[int]
    workers: np.ndarray
    tasks: np.ndarray
    answers: np.ndarray
    gold: np.ndarray
    seconds: np.ndarray
    submitted: np.ndarray
    groups: np.ndarray
    n_categories: int


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _read(session: Session, projects: Sequence[Project]) -> _Rows:
    """Every counted person's answer in the projects, as the detector's arrays.

    Read raw (``db/rawrows.py``): answers and gold answers as the database's JSON text, coded
    through their canonical key once per distinct text; times as numbers subtracted for every
    answer at once. Building a Python value, a key and two datetimes per answer was most of the
    report's time."""
    ids = [p.id for p in projects]
    models = list(session.scalars(select(User.id).where(User.role == Role.MODEL,
                                                        User.org_id.in_({p.org_id for p in projects}))))
    values = RawValues(session)
    counted = [Annotation.project_id.in_(ids), Annotation.excluded_at.is_(None)]
    if models:
        counted.append(Annotation.annotator_id.not_in(models))
    found = session.connection().execute(
        select(Annotation.annotator_id, Annotation.task_id, Annotation.project_id, cast(Annotation.answer, Text),
               Annotation.gold_correct, values.instant(Annotation.created_at, "submitted"),
               values.instant(Assignment.created_at, "leased"), Assignment.status == LeaseStatus.IMPORTED,
               Task.is_gold, cast(Task.gold, Text))
        .join(Assignment, Assignment.id == Annotation.assignment_id)
        .join(Task, Task.id == Annotation.task_id)
        .where(*counted)
        .order_by(Annotation.id)
    ).all()
    if not found:
        empty = np.zeros(0, dtype=np.int64)
        return _Rows(annotator_ids=[], workers=empty, tasks=empty, answers=empty, gold=empty,
                     seconds=np.zeros(0), submitted=np.zeros(0), groups=empty, n_categories=0)
    annotators, tasks, in_project, answers, correct, submitted, leased, imported, is_gold, gold_answers = zip(
        *found, strict=True)
    codes: dict[str, int] = {}  # canonical key -> code, in the order the answers first give them
    code_of: dict[str | None, int] = {}  # the database's text -> code
    decoded = DecodedTexts()

    def code(text: str | None) -> int:
        if text not in code_of:
            code_of[text] = codes.setdefault(_key(decoded[text]), len(codes))
        return code_of[text]

    gold_codes: list[int] = []
    answer_codes: list[int] = []
    for on_gold, gold_text, right, text in zip(is_gold, gold_answers, correct, answers, strict=True):
        truth = code(gold_text) if on_gold else -1
        gold_codes.append(truth)
        answer_codes.append(truth if on_gold and right else code(text))
    at = values.micros(submitted)
    timed = ~np.array(imported, dtype=bool)
    seconds = np.where(timed, (at - values.micros(leased)) / 1e6, math.nan)
    annotator_ids, workers = _in_order_of_appearance(np.array(annotators, dtype=np.int64))
    project_index = {project_id: i for i, project_id in enumerate(ids)}
    return _Rows(annotator_ids=annotator_ids, workers=workers,
                 tasks=_in_order_of_appearance(np.array(tasks, dtype=np.int64))[1],
                 answers=np.array(answer_codes, dtype=np.int64), gold=np.array(gold_codes, dtype=np.int64),
                 seconds=seconds, submitted=np.where(timed, (at - at.min()) / 1e6, math.nan),
                 groups=np.array([project_index[p] for p in in_project], dtype=np.int64), n_categories=len(codes))


def _in_order_of_appearance(ids: np.ndarray) -> tuple[list[int], np.ndarray]:
    """The distinct ``ids`` in the order they first appear, and each entry's index among them."""
    distinct, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return distinct[order].tolist(), rank[inverse]


def detect(session: Session, *, projects: Sequence[Project], min_seconds: float | None = None,
           detector: FraudDetector | None = None) -> tuple[list[AnnotatorSignals], FraudDetector]:
    """The signals and flags of every annotator who answered in the projects (one project: its
    report; several: each annotator over all of them, bursts across projects included)."""
    rows = _read(session, projects)
    fitted = detector or FraudDetector(min_seconds=min_seconds)
    fitted.fit(rows.workers, rows.tasks, rows.answers, rows.seconds, rows.submitted, gold=rows.gold,
               groups=rows.groups, n_workers=len(rows.annotator_ids), n_categories=max(rows.n_categories, 1))
    found: list[AnnotatorSignals] = []
    for i, annotator_id in enumerate(rows.annotator_ids):
        signals = {
            "fast_share": round(float(fitted.fast_share_[i]), 4),
            "burst_share": round(float(fitted.burst_share_[i]), 4),
            "top_answer_share": round(float(fitted.top_share_[i]), 4),
            "entropy_ratio": round(float(fitted.entropy_ratio_[i]), 4),
            "one_answer_p": float(fitted.one_answer_p_[i]),
            "chance_log_bf": round(float(fitted.chance_log_bf_[i]), 3),
        }
        flags = [name for name in SIGNALS if name in fitted.flags_[i]]
        found.append(AnnotatorSignals(annotator_id=annotator_id, answers=int(fitted.n_answers_[i]),
                                      signals=signals, flags=flags))
    for pair in fitted.pairs_:
        found[pair.a].copies.append(rows.annotator_ids[pair.b])
        found[pair.b].copies.append(rows.annotator_ids[pair.a])
    if len(projects) == 1:
        # Their standing read as plain rows: an ORM object per annotator was a second per 100,000.
        standing = {row.annotator_id: row for row in session.connection().execute(
            select(WorkerStats.annotator_id, WorkerStats.fraud_status, WorkerStats.fraud_reason, WorkerStats.blocked)
            .where(WorkerStats.project_id == projects[0].id))}
        for item in found:
            stats = standing.get(item.annotator_id)
            if stats is not None:
                item.status, item.reason, item.blocked = stats.fraud_status, stats.fraud_reason, bool(stats.blocked)
    return found, fitted


def floor_of(detector: FraudDetector) -> float:
    """The speed floor the report used for its (first) project, in seconds."""
    return float(detector.floors_[0]) if len(detector.floors_) else 0.0


# --- actions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionResult:
    status: str | None
    blocked: bool
    excluded: int = 0  # answers newly excluded
    reopened: int = 0  # tasks that went back to pending
    redecided: int = 0  # tasks decided again from the answers left


def _reason(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise Invalid("give a reason", details={"field": "reason"})
    if len(raw) > MAX_REASON:
        raise Invalid(f"reason is longer than {MAX_REASON} characters", details={"field": "reason"})
    return raw.strip()


def act(session: Session, *, project: Project, annotator_id: int, name: str, action: str, reason: Any,
        actor: User, now: datetime) -> ActionResult:
    """Apply a fraud action to an annotator of the project (see the module docstring); ``name``
    is how the audit log names them (their pseudonym in the project)."""
    if action not in ACTIONS:
        raise Invalid(f"action must be one of {', '.join(ACTIONS)}", details={"field": "action"})
    text = _reason(reason) if action != "clear" else (reason if isinstance(reason, str) else "")
    stats = session.scalar(select(WorkerStats).where(WorkerStats.project_id == project.id,
                                                     WorkerStats.annotator_id == annotator_id).with_for_update())
    annotator = session.get(User, annotator_id)
    if stats is None or annotator is None:
        raise Conflict("this annotator has not answered in this project", details={"field": "annotator"})
    if annotator.role == Role.MODEL:
        raise Conflict("a model's answers are governed by the project's model settings, not fraud actions",
                       details={"field": "annotator"})
    before = (stats.fraud_status, stats.blocked)
    result = ActionResult(status=stats.fraud_status, blocked=stats.blocked)
    if action == "probation":
        if stats.blocked:
            raise Conflict("this annotator is blocked in this project; unblock them first",
                           details={"field": "annotator"})
        stats.fraud_status, stats.fraud_reason = gold.PROBATION, text
    elif action == "clear":
        if stats.fraud_status != gold.PROBATION:
            raise Conflict("this annotator is not on probation in this project", details={"field": "annotator"})
        stats.fraud_status = stats.fraud_reason = None
    else:
        if stats.fraud_status != EXCLUDED:
            stats.fraud_status = "blocked" if action == "block" else EXCLUDED
            stats.fraud_reason = text
        stats.blocked = True
        session.flush()
        release_all(session, annotator_id=annotator_id, now=now, project_id=project.id)
        if action == "exclude":
            result = _exclude_answers(session, project=project, annotator_id=annotator_id, reason=text, now=now)
    session.flush()
    done = ActionResult(status=stats.fraud_status, blocked=stats.blocked, excluded=result.excluded,
                        reopened=result.reopened, redecided=result.redecided)
    if (stats.fraud_status, stats.blocked) != before or done.excluded:
        audit.record(session, actor=actor, action=f"annotator.{action}", object_type="project", object_id=project.id,
                     org_id=project.org_id,
                     details={"annotator": name, "reason": text, "excluded": done.excluded,
                              "reopened": done.reopened})
    return done


def _exclude_answers(session: Session, *, project: Project, annotator_id: int, reason: str,
                     now: datetime) -> ActionResult:
    mine = select(Annotation.id, Annotation.task_id, Annotation.rejected_at).where(
        Annotation.project_id == project.id, Annotation.annotator_id == annotator_id,
        Annotation.excluded_at.is_(None))
    rows = session.execute(mine).all()
    if not rows:
        return ActionResult(status=EXCLUDED, blocked=True)
    counting = sorted({task_id for _, task_id, rejected in rows if rejected is None})
    ids = [row.id for row in rows]
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        session.execute(update(Annotation).where(Annotation.id.in_(chunk), Annotation.rejected_at.is_(None))
                        .values(rejected_at=now, rejection_reason=f"excluded: {reason}")
                        .execution_options(synchronize_session=False))
        session.execute(update(Annotation).where(Annotation.id.in_(chunk)).values(excluded_at=now)
                        .execution_options(synchronize_session=False))
    reopened, redecided = _redecide(session, project=project, task_ids=counting, now=now)
    return ActionResult(status=EXCLUDED, blocked=True, excluded=len(ids), reopened=reopened, redecided=redecided)


def _redecide(session: Session, *, project: Project, task_ids: Iterable[int], now: datetime) -> tuple[int, int]:
    """Each task lost one counted answer: take it out of the counts and decide the task again
    from what is left. Tasks are locked in id order (as every writer of several tasks does)."""
    spec = parse_spec(project.task_spec)
    reopened = redecided = 0
    reopened_batches: set[int] = set()
    for task_id in task_ids:
        task = session.scalar(select(Task).where(Task.id == task_id).with_for_update())
        assert task is not None
        task.n_annotations -= 1
        task.n_claimed -= 1
        if task.is_gold or task.status == TaskStatus.CANCELED:
            session.flush()
            continue
        was_done = task.status in (TaskStatus.COMPLETED, TaskStatus.REVIEW)
        task.status, task.completed_at, task.review_until = TaskStatus.PENDING, None, None
        task.response = task.confidence = task.method = task.details = None
        task.needs_review, task.below_target = False, False
        if task.review_status == ReviewStatus.PENDING:
            task.review_status = ReviewStatus.NONE
        session.flush()
        settle(session, task=task, project=project, spec=spec, now=now)
        if task.status == TaskStatus.PENDING:
            reopened += was_done
            if was_done and task.batch_id is not None:
                reopened_batches.add(task.batch_id)
        else:
            redecided += 1
    for batch_id in sorted(reopened_batches):
        batch = session.get(Batch, batch_id)
        if batch is not None and batch.status == BatchStatus.COMPLETED:
            batch.status = BatchStatus.IN_PROGRESS  # a reopened task is served again
    session.flush()
    return reopened, redecided
