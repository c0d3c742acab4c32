"""What an owner sees of a project's quality: annotators, agreement, confusion, weak tasks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Text, cast, func, select
from sqlalchemy.orm import Session

from qistas.db.enums import TaskStatus
from qistas.db.models import Annotation, Project, QualityModel, Task, WorkerStats
from qistas.db.rawrows import DecodedTexts
from qistas.domain import gold as gold_rules
from qistas.domain import model_annotators, predictions
from qistas.domain.insights import SAMPLE
from qistas.domain.quality import load_model
from qistas.domain.tasktypes import Spec, TaskType, parse_spec, type_of
from qistas.quality import fleiss_kappa, rating_table

BELOW_TARGET_LISTED = 100


@dataclass(frozen=True)
class _Answers:
    """Every kept answer of the project, the latest first, read raw: the answers as the
    database's JSON text, decoded once per distinct text (``DecodedTexts``), not once per answer."""

    task_ids: np.ndarray
    annotator_ids: np.ndarray
    texts: list[str]


def _answers(session: Session, project: Project) -> _Answers:
    rows = session.connection().execute(
        select(Annotation.task_id, Annotation.annotator_id, cast(Annotation.answer, Text)).where(
            Annotation.project_id == project.id, Annotation.rejected_at.is_(None)
        ).order_by(Annotation.id.desc())
    ).all()
    task_ids, annotator_ids, texts = zip(*rows, strict=True) if rows else ((), (), ())
    return _Answers(np.array(task_ids, dtype=np.int64), np.array(annotator_ids, dtype=np.int64), list(texts))


def _category_codes(texts: Sequence[str | None], decoded: DecodedTexts, spec: Spec, task_type: TaskType[Any],
                    index: dict[str, int]) -> np.ndarray:
    """Each text's category as its index in ``index`` (-1 for none): the type's ``category``
    called once per distinct text."""
    code_of: dict[str | None, int] = {}
    for text in set(texts):
        category = task_type.category(spec, decoded[text])
        code_of[text] = -1 if category is None else index.get(category, -1)
    return np.array([code_of[text] for text in texts], dtype=np.int64)


def _specific_agreement(table: np.ndarray) -> np.ndarray:
    """Per label: of all pairs of answers on a task involving the label, the share that agree."""
    n = table.sum(axis=1, keepdims=True)
    pairable = (n >= 2).ravel()
    t, n = table[pairable], n[pairable]
    agree = (t * (t - 1)).sum(axis=0)
    involved = (t * (n - 1)).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(involved > 0, agree / np.maximum(involved, 1), np.nan)


def _category_section(answers: _Answers, responses: dict[int, str], decoded: DecodedTexts, spec: Spec,
                      task_type: TaskType[Any]) -> dict[str, Any]:
    """Agreement per category, Fleiss' kappa and the confusion matrix, for types with categories."""
    labels = task_type.categories(spec)
    index = {label: i for i, label in enumerate(labels)}
    given = _category_codes(answers.texts, decoded, spec, task_type, index)
    kept = given >= 0
    _, tasks = np.unique(answers.task_ids[kept], return_inverse=True)  # tasks in id order
    values = given[kept]
    k = len(labels)
    table = rating_table(tasks, values, n_labels=k) if values.size else np.zeros((0, k), dtype=np.int64)
    specific = _specific_agreement(table) if table.size else np.full(k, np.nan)
    kappa = fleiss_kappa(table) if (table.sum(axis=1) >= 2).any() else None
    # Confusion: consensus category of completed tasks (rows) against each answer given (columns).
    consensus = dict(zip(responses, _category_codes(list(responses.values()), decoded, spec, task_type, index).tolist(),
                         strict=True))
    final = np.array([consensus.get(task_id, -1) for task_id in answers.task_ids.tolist()], dtype=np.int64)
    both = (final >= 0) & kept
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (final[both], given[both]), 1)
    return {
        "fleiss_kappa": None if kappa is None or np.isnan(kappa) else round(float(kappa), 4),
        "labels": [
            {"label": label, "answers": int(table[:, i].sum()),
             "agreement": None if np.isnan(specific[i]) else round(float(specific[i]), 4)}
            for i, label in enumerate(labels)
        ],
        "confusion": {"labels": labels, "rows": "consensus", "columns": "answer", "matrix": confusion.tolist()},
    }


def _agreement_with_results(answers: _Answers, count: int, responses: dict[int, str], decoded: DecodedTexts, spec: Spec,
                            task_type: TaskType[Any]) -> dict[int, float]:
    """Each annotator's mean per-answer score (the task type's) against the completed results,
    over the first ``count`` answers."""
    totals: dict[int, list[float]] = {}
    for task_id, annotator_id, text in zip(answers.task_ids[:count].tolist(), answers.annotator_ids[:count].tolist(),
                                           answers.texts[:count], strict=True):
        if task_id in responses:
            response = decoded[responses[task_id]]
            if response is not None:
                score = task_type.answer_score(spec, {}, decoded[text], response)
                totals.setdefault(annotator_id, []).append(score)
    return {a: sum(v) / len(v) for a, v in totals.items()}


def _seconds_per_task(session: Session, project: Project) -> dict[int, float]:
    """Per annotator, the mean time of the answers that were timed; absent when none was.

    ``WorkerStats.seconds_total`` counts an untimed answer as 0 seconds, so dividing it by
    all answers would say 0.0 for an annotator who never sent a time.
    """
    rows = session.execute(
        select(Annotation.annotator_id, func.avg(Annotation.seconds))
        .where(Annotation.project_id == project.id, Annotation.seconds.is_not(None))
        .group_by(Annotation.annotator_id)
    )
    return {annotator: float(mean) for annotator, mean in rows if mean is not None}


def project_quality(session: Session, *, project: Project, pseudonym: Callable[[int], str]) -> dict[str, Any]:
    spec = parse_spec(project.task_spec)
    task_type = type_of(spec)
    fitted = load_model(session, project.id)
    skills: dict[int, float] = {}
    if fitted is not None and "confusions" in fitted.params and "priors" in fitted.params:
        # P(correct answer) of each modelled annotator: the prior-weighted diagonal.
        diagonal = np.einsum("wkk->wk", np.asarray(fitted.params["confusions"])) @ np.asarray(fitted.params["priors"])
        skills = {annotator: float(diagonal[row]) for annotator, row in fitted.rows.items()}
    answers = _answers(session, project)
    # Completed tasks' responses as JSON text (NULL kept: a task completed without one).
    responses: dict[int, str] = dict(session.connection().execute(
        select(Task.id, cast(Task.response, Text))
        .where(Task.project_id == project.id, Task.status == TaskStatus.COMPLETED)
    ).all())
    decoded = DecodedTexts()
    # The type's score can cost tens of microseconds an answer (box matching): the latest
    # answers only, as the console's insights do.
    agreement = _agreement_with_results(answers, SAMPLE, responses, decoded, spec, task_type)
    seconds = _seconds_per_task(session, project)
    annotators: list[dict[str, Any]] = []
    machines: list[dict[str, Any]] = []
    model_names = model_annotators.model_names(session, org_id=project.org_id)
    # Plain rows: an ORM object per annotator was a second per 100,000 annotators.
    for stats in session.connection().execute(
        select(WorkerStats.annotator_id, WorkerStats.n_annotations, WorkerStats.n_gold, WorkerStats.n_gold_correct,
               WorkerStats.blocked)
        .where(WorkerStats.project_id == project.id).order_by(WorkerStats.annotator_id)
    ):
        # People and models apart: a model annotator is listed under "models", by its name.
        name = model_names.get(stats.annotator_id)
        (annotators if name is None else machines).append({
            **({"annotator": pseudonym(stats.annotator_id)} if name is None else {"model": name}),
            "annotations": stats.n_annotations,
            "gold_answers": stats.n_gold,
            "gold_correct": stats.n_gold_correct,
            "gold_accuracy": round(gold_rules.accuracy_of(stats.n_gold_correct, stats.n_gold), 4),
            "skill": round(skills[stats.annotator_id], 4) if stats.annotator_id in skills else None,
            "agreement": round(agreement[stats.annotator_id], 4) if stats.annotator_id in agreement else None,
            "seconds_per_task": round(seconds[stats.annotator_id], 2) if stats.annotator_id in seconds else None,
            "blocked": bool(stats.blocked),
        })
    below = list(session.scalars(
        select(Task.id).where(Task.project_id == project.id, Task.below_target.is_(True))
        .order_by(Task.id).limit(BELOW_TARGET_LISTED)
    ))
    model = session.get(QualityModel, project.id)
    report: dict[str, Any] = {
        "project_id": project.id,
        "method": model.method if model else None,
        "confidence_means": task_type.confidence,
        "fitted_at": model.fitted_at.isoformat() if model else None,
        "annotators": annotators,
        "models": machines,
        "below_target": {"task_ids": below, "listed_up_to": BELOW_TARGET_LISTED},
    }
    report["predictions"] = predictions.model_report(session, project=project, spec=spec, task_type=task_type)
    if task_type.categories(spec):
        report.update(_category_section(answers, responses, decoded, spec, task_type))
    return report


def annotator_quality(session: Session, *, annotator_id: int) -> list[dict[str, Any]]:
    """Per project, an annotator's counts and accuracy (for admins)."""
    return [
        {
            "project_id": s.project_id,
            "annotations": s.n_annotations,
            "gold_answers": s.n_gold,
            "gold_correct": s.n_gold_correct,
            "gold_accuracy": round(gold_rules.accuracy(s), 4),
            "blocked": s.blocked,
        }
        for s in session.scalars(select(WorkerStats).where(WorkerStats.annotator_id == annotator_id))
    ]
