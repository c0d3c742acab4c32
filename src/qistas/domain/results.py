"""Reading a project's tasks and results: keyset pages, export selections, stats.

Exports walk the tasks in keyset chunks and fetch the chunk's annotations in one query, so
memory stays flat whatever the project's size, and the database does a bounded amount of
work per chunk.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from qistas.db.enums import LeaseStatus, TaskStatus
from qistas.db.models import Annotation, Assignment, Batch, Project, Task
from qistas.domain import outbox
from qistas.domain.model_annotators import model_names
from qistas.domain.tasktypes import plain_response
from qistas.errors import Invalid

EXPORT_CHUNK = 500
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def task_page(
    session: Session, *, project_id: int, status: str | None, after: int | None, limit: int,
    unique_id: str | None = None,
) -> list[Task]:
    """A keyset page of the project's tasks in id order; every filter given must hold."""
    query = select(Task).where(Task.project_id == project_id)
    if unique_id is not None:
        query = query.where(Task.unique_id == unique_id)  # exact: the (project_id, unique_id) index
    if status is not None:
        if status not in list(TaskStatus):
            raise Invalid(f"status must be one of {', '.join(TaskStatus)}", details={"field": "status"})
        query = query.where(Task.status == status)
    if after is not None:
        query = query.where(Task.id > after)
    return list(session.scalars(query.order_by(Task.id).limit(limit)))


def results_page(session: Session, *, project_id: int, after: int | None, limit: int) -> list[Task]:
    return task_page(session, project_id=project_id, status=TaskStatus.COMPLETED, after=after, limit=limit)


# --- cursors: completion order ----------------------------------------------------------


def make_cursor(completed_at: datetime, task_id: int) -> str:
    """An opaque position in completion order: microseconds since the epoch, then the task id."""
    micros = (completed_at - EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{task_id}"


def parse_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        micros, task_id = cursor.split(".")
        position = EPOCH + timedelta(microseconds=int(micros)), int(task_id)
        if not 0 <= position[1] < 2**63:  # ids are 64-bit: a larger one cannot even be bound
            raise ValueError(task_id)
        return position
    except (ValueError, OverflowError):
        raise Invalid("since is not a cursor this server gave out", details={"field": "since"}) from None


def _after(position: tuple[datetime, int]) -> Any:
    at, task_id = position
    return or_(Task.completed_at > at, and_(Task.completed_at == at, Task.id > task_id))


def change_result(session: Session, *, task: Task, response: Any, confidence: float | None,
                  method: str | None) -> bool:
    """Replace a completed task's result (e.g. after a refit of the quality model).

    Announces ``result.changed`` (with the previous response) when the answer itself
    changed; a new confidence alone changes the record but sends nothing. Only flushes.
    """
    previous = task.response
    task.response, task.confidence, task.method = response, confidence, method
    session.flush()
    if task.status != TaskStatus.COMPLETED or plain_response(previous) == plain_response(response):
        return False
    outbox.enqueue(session, event="result.changed", task=task, previous=previous)
    return True


def results_since(session: Session, *, project_id: int, since: str, limit: int,
                  settled_before: datetime) -> tuple[list[Task], str]:
    """Completed tasks after the cursor, in completion order, and the cursor to continue from.

    Only completions stamped before ``settled_before`` are handed out (see ``select_export``).
    """
    query = select(Task).where(Task.project_id == project_id, Task.status == TaskStatus.COMPLETED,
                               _after(parse_cursor(since)), Task.completed_at <= settled_before)
    page = list(session.scalars(query.order_by(Task.completed_at, Task.id).limit(limit)))
    if not page or page[-1].completed_at is None:
        return page, since
    return page, make_cursor(page[-1].completed_at, page[-1].id)


# --- what an export holds ---------------------------------------------------------------


@dataclass(frozen=True)
class ExportOptions:
    """Which tasks an export holds. ``since`` (a cursor) implies completed tasks only."""

    completed: bool = False
    min_confidence: float | None = None
    batch: str | None = None
    since: str | None = None

    def validate(self) -> ExportOptions:
        if self.min_confidence is not None and not 0 <= self.min_confidence <= 1:
            raise Invalid("min_confidence must be between 0 and 1", details={"field": "min_confidence"})
        if self.since is not None:
            parse_cursor(self.since)
        return self

    def as_dict(self) -> dict[str, Any]:
        return {"completed": self.completed, "min_confidence": self.min_confidence, "batch": self.batch,
                "since": self.since}


def filters(session: Session, project: Project, options: ExportOptions) -> list[Any]:
    where: list[Any] = [Task.project_id == project.id]
    if options.completed or options.since is not None or options.min_confidence is not None:
        where.append(Task.status == TaskStatus.COMPLETED)
    if options.min_confidence is not None:
        where.append(Task.confidence >= options.min_confidence)
    if options.batch is not None:
        batch_id = session.scalar(select(Batch.id).where(Batch.project_id == project.id, Batch.name == options.batch))
        if batch_id is None:
            raise Invalid(f"unknown batch {options.batch!r}", details={"field": "batch"})
        where.append(Task.batch_id == batch_id)
    return where


@dataclass(frozen=True)
class Selection:
    """An export's tasks, fixed when it starts: ``cursor`` is where the next ``since`` begins."""

    project: Project
    options: ExportOptions
    where: tuple[Any, ...]
    cursor: str | None
    total: int


def select_export(session: Session, *, project: Project, options: ExportOptions,
                  settled_before: datetime) -> Selection:
    """Fix what an export holds and the cursor it hands out.

    A completion is stamped when its transaction starts, and a transaction that waited for a
    lock may commit after a later-stamped one. So the cursor only covers completions stamped
    before ``settled_before`` (the server passes now minus ``cursor_settle_seconds``): a
    completion that commits late is picked up by the next ``since`` export, never skipped.
    """
    options.validate()
    where = filters(session, project, options)
    last = session.execute(
        select(Task.completed_at, Task.id)
        .where(*where, Task.completed_at.is_not(None), Task.completed_at <= settled_before)
        .order_by(Task.completed_at.desc(), Task.id.desc())
        .limit(1)
    ).first()
    newest = (last[0], last[1]) if last is not None and last[0] is not None else None
    cursor = make_cursor(*newest) if newest is not None else options.since
    if options.since is not None:
        start = parse_cursor(options.since)
        if newest is None or newest <= start:
            cursor = options.since  # nothing new: the cursor never moves back
        # Bounded by the cursor handed out, so the next export starts exactly after it.
        where += [_after(start), Task.completed_at <= settled_before]
    total = session.scalar(select(func.count()).select_from(Task).where(*where)) or 0
    return Selection(project=project, options=options, where=tuple(where), cursor=cursor, total=total)


def _provenance(task: Any, annotations: list[Any], models: dict[int, str]) -> dict[str, Any]:
    """What training code weighs or filters by: how many people (and models) labelled it, how
    much they agreed."""
    agreement = None
    if task.response is not None and annotations:
        # Answers are stored normalised, so equal answers are equal values.
        plain = plain_response(task.response)
        agreement = sum(a.answer == plain for a in annotations) / len(annotations)
    who = {a.annotator_id for a in annotations}
    return {"annotators": len(who - models.keys()), "models": len(who & models.keys()), "agreement": agreement,
            "confidence": task.confidence, "method": task.method, "needs_review": task.needs_review}


def source_of(annotator_id: int, models: dict[int, str]) -> dict[str, Any]:
    """Who gave an answer, for owners and customers: ``{"source": "human"}`` or
    ``{"source": "model", "model": "name/model"}`` (never shown to annotators)."""
    model = models.get(annotator_id)
    return {"source": "human"} if model is None else {"source": "model", "model": model}


_TASK_COLUMNS = (Task.id, Task.unique_id, Task.batch_id, Task.status, Task.data, Task.meta, Task.response,
                 Task.confidence, Task.method, Task.needs_review, Task.details, Task.completed_at,
                 Task.review_status, Task.audit_status, Task.predictions)
_ANNOTATION_COLUMNS = (Annotation.task_id, Annotation.annotator_id, Annotation.answer, Annotation.seconds,
                       Annotation.created_at, Annotation.rejected_at, Annotation.excluded_at)


def iter_export_records(
    session: Session, *, selection: Selection, pseudonym: Callable[[int], str],
    progress: Callable[[int], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """The selected tasks in keyset chunks (completion order with ``since``, else id order).

    Plain rows, not ORM objects: an export reads every row once and changes none.
    """
    project = selection.project
    batch_query = select(Batch.id, Batch.name).where(Batch.project_id == project.id)
    batch_names = {batch_id: name for batch_id, name in session.execute(batch_query)}
    by_completion = selection.options.since is not None
    order = (Task.completed_at, Task.id) if by_completion else (Task.id,)
    position: Any = None
    names: dict[int, str] = {}
    models = model_names(session, org_id=project.org_id)
    done = 0
    while True:
        query = select(*_TASK_COLUMNS).where(*selection.where)
        if position is not None:
            query = query.where(_after(position) if by_completion else Task.id > position)
        tasks = session.execute(query.order_by(*order).limit(EXPORT_CHUNK)).all()
        if not tasks:
            return
        grouped: dict[int, list[Any]] = defaultdict(list)
        found = session.execute(select(*_ANNOTATION_COLUMNS).where(Annotation.task_id.in_([t.id for t in tasks]))
                                .order_by(Annotation.id))
        for annotation in found:
            grouped[annotation.task_id].append(annotation)
        rejected: dict[int, list[Any]] = {}
        for task_id, mine in grouped.items():  # a rejected answer is listed, marked, and counts for nothing
            if any(a.rejected_at is not None for a in mine):
                rejected[task_id] = [a for a in mine if a.rejected_at is not None]
                grouped[task_id] = [a for a in mine if a.rejected_at is None]
        for task in tasks:
            mine = grouped.get(task.id, [])
            yield {
                "task_id": task.id,
                "unique_id": task.unique_id,
                "batch": batch_names.get(task.batch_id) if task.batch_id else None,
                "status": task.status,
                "data": task.data,
                "metadata": task.meta,
                "response": task.response,
                "confidence": task.confidence,
                "method": task.method,
                "needs_review": task.needs_review,
                "details": task.details,
                "completed_at": task.completed_at.isoformat() if task.completed_at else None,
                "review": {"status": task.review_status, "audit": task.audit_status},
                "provenance": _provenance(task, mine, models),
                "predictions": task.predictions,
                "annotations": [
                    {
                        "annotator": names[a.annotator_id] if a.annotator_id in names
                        else names.setdefault(a.annotator_id, pseudonym(a.annotator_id)),
                        **source_of(a.annotator_id, models),
                        "answer": a.answer,
                        "seconds": a.seconds,
                        "created_at": a.created_at.isoformat(),
                        **({"rejected": True} if a.rejected_at is not None else {}),
                        **({"excluded": True} if a.excluded_at is not None else {}),
                    }
                    for a in [*mine, *rejected.get(task.id, [])]
                ],
            }
        last = tasks[-1]
        position = (last.completed_at, last.id) if by_completion else last.id
        done += len(tasks)
        if progress is not None:
            progress(done)


def project_stats(session: Session, *, project_id: int, now: datetime) -> dict[str, Any]:
    rows = session.execute(select(Task.status, func.count()).where(Task.project_id == project_id).group_by(Task.status))
    by_status = {status: count for status, count in rows}
    annotations = select(func.count()).select_from(Annotation).where(Annotation.project_id == project_id)
    last_hour = session.scalar(annotations.where(Annotation.created_at > now - timedelta(hours=1))) or 0
    return {
        "tasks": {status: by_status.get(status, 0) for status in TaskStatus},
        "tasks_total": sum(by_status.values()),
        "below_target": session.scalar(
            select(func.count()).select_from(Task).where(Task.project_id == project_id, Task.below_target.is_(True))
        ) or 0,
        "annotations": session.scalar(annotations) or 0,
        "annotators": session.scalar(
            select(func.count(func.distinct(Annotation.annotator_id))).where(Annotation.project_id == project_id)
        ) or 0,
        "active_leases": session.scalar(
            select(func.count()).select_from(Assignment).where(
                Assignment.project_id == project_id, Assignment.status == LeaseStatus.ACTIVE,
                Assignment.expires_at > now,
            )
        ) or 0,
        "throughput": {
            "annotations_last_hour": last_hour,
            "annotations_last_day": session.scalar(
                annotations.where(Annotation.created_at > now - timedelta(days=1))
            ) or 0,
        },
    }
