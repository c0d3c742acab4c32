"""What the owner console shows about a project: progress, throughput, annotators, agreement.

Read-only. Agreement here is the simple kind — the share of pairs of annotations of one task
that agree exactly, and each annotator's agreement with the aggregated response — computed
over the most recent annotations (``SAMPLE``) so a page stays fast on a big project.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qistas.db.models import Annotation, Project, Task
from qistas.domain.tasktypes import answer_key, parse_spec, type_of

SAMPLE = 20_000


@dataclass
class AnnotatorRow:
    annotator_id: int
    annotations: int = 0
    seconds: list[float] = field(default_factory=list)
    scored: int = 0
    agreed: float = 0.0  # the sum of the task type's per-answer scores against the response

    @property
    def median_seconds(self) -> float | None:
        if not self.seconds:
            return None
        ordered = sorted(self.seconds)
        mid = len(ordered) // 2
        return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.scored if self.scored else None


@dataclass
class Insights:
    annotators: list[AnnotatorRow]
    pair_agreement: float | None
    pairs: int
    categories: list[str]
    confusion: list[list[int]]  # rows: an annotator's answer; columns: the aggregated response
    sampled: int


def status_counts(session: Session, *, project_ids: list[int]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    if not project_ids:
        return counts
    rows = session.execute(
        select(Task.project_id, Task.status, func.count()).where(Task.project_id.in_(project_ids))
        .group_by(Task.project_id, Task.status)
    )
    for project_id, status, n in rows:
        counts[project_id][status] = n
    return counts


def answer_counts(session: Session, *, project_ids: list[int]) -> dict[int, int]:
    """Annotations per project: progress people can see before any task completes."""
    if not project_ids:
        return {}
    rows = session.execute(
        select(Annotation.project_id, func.count()).where(Annotation.project_id.in_(project_ids))
        .group_by(Annotation.project_id)
    )
    return {project_id: n for project_id, n in rows}


def hourly_throughput(
    session: Session, *, project_id: int, now: datetime, hours: int = 24
) -> list[tuple[datetime, int]]:
    """Annotations per hour over the last ``hours`` hours, oldest first."""
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=hours)
    stamps = session.scalars(
        select(Annotation.created_at).where(Annotation.project_id == project_id, Annotation.created_at >= start)
    )
    buckets = Counter(int((s - start).total_seconds() // 3600) for s in stamps)
    return [(start + timedelta(hours=i), buckets.get(i, 0)) for i in range(hours)]


def categories_of(project: Project) -> list[str]:
    """The categories of the confusion matrix: the task type's (empty when it has none)."""
    spec = parse_spec(project.task_spec)
    return type_of(spec).categories(spec)


def project_insights(session: Session, *, project: Project) -> Insights:
    rows = session.execute(
        select(Annotation.annotator_id, Annotation.task_id, Annotation.answer, Annotation.seconds, Task.response)
        .join(Task, Task.id == Annotation.task_id)
        .where(Annotation.project_id == project.id)
        .order_by(Annotation.id.desc())
        .limit(SAMPLE)
    ).all()
    people: dict[int, AnnotatorRow] = {}
    by_task: dict[int, list[str]] = defaultdict(list)
    spec = parse_spec(project.task_spec)
    task_type = type_of(spec)
    categories = task_type.categories(spec)
    index = {c: i for i, c in enumerate(categories)}
    confusion = [[0] * len(categories) for _ in categories]
    for annotator_id, task_id, answer, seconds, response in rows:
        row = people.setdefault(annotator_id, AnnotatorRow(annotator_id))
        row.annotations += 1
        if seconds is not None:
            row.seconds.append(seconds)
        key = answer_key(answer)
        by_task[task_id].append(key)
        if response is not None:
            row.scored += 1
            row.agreed += task_type.answer_score(spec, {}, answer, response)
            given, final = task_type.category(spec, answer), task_type.category(spec, response)
            if given in index and final in index:
                confusion[index[given]][index[final]] += 1
    pairs = agreeing = 0
    for keys in by_task.values():
        counts = Counter(keys)
        n = len(keys)
        pairs += n * (n - 1) // 2
        agreeing += sum(c * (c - 1) // 2 for c in counts.values())
    return Insights(
        annotators=sorted(people.values(), key=lambda r: -r.annotations),
        pair_agreement=agreeing / pairs if pairs else None,
        pairs=pairs, categories=categories, confusion=confusion, sampled=len(rows),
    )
