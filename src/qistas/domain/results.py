"""Reading a project's tasks and results: keyset pages, export selections, stats.

Exports walk the selected tasks' ids in one ordered pass, fetch each chunk's rows and
annotations in one query each, and read them raw (db/rawrows.py), so memory stays flat
whatever the project's size and the database reads each row once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, CursorResult, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from qistas.db.enums import LeaseStatus, TaskStatus
from qistas.db.models import Annotation, Assignment, Batch, Project, Task
from qistas.db.rawrows import RawValues, raw
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


def answer_changed(previous: Any, response: Any) -> bool:
    """Whether a new result changes the answer itself, not only its per-part confidences (what
    ``result.changed`` announces)."""
    return bool(plain_response(previous) != plain_response(response))


def change_result(session: Session, *, task: Task, response: Any, confidence: float | None,
                  method: str | None, flush: bool = True) -> bool:
    """Replace a completed task's result (e.g. after a refit of the quality model).

    Announces ``result.changed`` (with the previous response) when the answer itself
    changed; a new confidence alone changes the record but sends nothing. Only flushes
    (``flush=False``: leaves it to the caller, who changes many tasks and flushes them at once).
    """
    previous = task.response
    task.response, task.confidence, task.method = response, confidence, method
    if flush:
        session.flush()
    if task.status != TaskStatus.COMPLETED or not answer_changed(previous, response):
        return False
    outbox.enqueue(session, event="result.changed", task=task, previous=previous)
    return True


def since_query(*, project_id: int, since: str, limit: int, settled_before: datetime) -> Select[Task]:
    """``results_since``'s statement: read in ``ix_tasks_completed``'s order, whose condition
    (``completed_at IS NOT NULL``) its comparisons of ``completed_at`` imply."""
    return (select(Task).where(Task.project_id == project_id, Task.status == TaskStatus.COMPLETED,
                               _after(parse_cursor(since)), Task.completed_at <= settled_before)
            .order_by(Task.completed_at, Task.id).limit(limit))


def results_since(session: Session, *, project_id: int, since: str, limit: int,
                  settled_before: datetime) -> tuple[list[Task], str]:
    """Completed tasks after the cursor, in completion order, and the cursor to continue from.

    Only completions stamped before ``settled_before`` are handed out (see ``select_export``).
    """
    page = list(session.scalars(since_query(project_id=project_id, since=since, limit=limit,
                                            settled_before=settled_before)))
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


def agreement(response: Any, answers: list[Any] | None) -> float | None:
    """The share of the kept answers equal to the response (its per-part confidences left out)."""
    if response is None or not answers:
        return None
    # Answers are stored normalised, so equal answers are equal values.
    return answers.count(plain_response(response)) / len(answers)


def _provenance(response: Any, confidence: float | None, method: str | None, needs_review: bool | None,
                answers: list[Any], who: set[int], models: dict[int, str]) -> dict[str, Any]:
    """What training code weighs or filters by: how many people (and models) labelled it, how
    much they agreed."""
    n_models = len(who & models.keys()) if models else 0
    return {"annotators": len(who) - n_models, "models": n_models, "agreement": agreement(response, answers),
            "confidence": confidence, "method": method, "needs_review": needs_review}


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
# Read raw (db/rawrows.py): 1M answers are 1M JSON and timestamp cells.
_RAW_TASK_COLUMNS = tuple(raw(c) for c in _TASK_COLUMNS)
_RAW_ANNOTATION_COLUMNS = tuple(raw(c) for c in _ANNOTATION_COLUMNS)


def iter_export_records(
    session: Session, *, selection: Selection, pseudonym: Callable[[int], str],
    progress: Callable[[int], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """The selected tasks in chunks (completion order with ``since``, else id order).

    Plain rows read raw through Core (db/rawrows.py), not ORM objects: an export reads every
    row once and changes none. Each chunk's annotations come in one query.
    """
    project = selection.project
    batch_query = select(Batch.id, Batch.name).where(Batch.project_id == project.id)
    batch_names = {batch_id: name for batch_id, name in session.execute(batch_query)}
    order = (Task.completed_at, Task.id) if selection.options.since is not None else (Task.id,)
    models = model_names(session, org_id=project.org_id)
    values = RawValues(session)
    connection = session.connection()
    # SQLite reads the whole export from one snapshot (BEGIN DEFERRED); PostgreSQL's READ
    # COMMITTED sees each statement's own, so there each chunk checks the selection again.
    recheck = () if values.text_values else selection.where
    # One ordered pass over the ids (a server-side cursor on PostgreSQL), then each chunk's
    # rows by primary key. Keyset pages re-planned per chunk on SQLite walked the project's
    # index and sorted every one of its tasks again for each chunk of 500.
    ids = connection.execute(
        select(Task.id).where(*selection.where).order_by(*order).execution_options(yield_per=EXPORT_CHUNK))
    with ids:
        yield from _records(connection, ids, recheck, values, batch_names, models, pseudonym, progress)


def _records(connection: Connection, ids: CursorResult[Any], recheck: tuple[Any, ...], values: RawValues,
             batch_names: dict[int, str], models: dict[int, str], pseudonym: Callable[[int], str],
             progress: Callable[[int], None] | None) -> Iterator[dict[str, Any]]:
    load, iso = values.json, values.iso
    # Per annotator: the start of each of their annotations' dict ("annotator", "source"...).
    heads: dict[int, dict[str, Any]] = {}
    done = 0
    for id_rows in ids.partitions():
        chunk_ids = [row[0] for row in id_rows]
        by_id = {row[0]: row for row in connection.execute(
            select(*_RAW_TASK_COLUMNS).where(Task.id.in_(chunk_ids), *recheck)).fetchall()}
        tasks = [by_id[task_id] for task_id in chunk_ids if task_id in by_id]
        # Per task: its answers' dicts in order, then the rejected ones (listed after the others,
        # marked, counting for nothing); the kept answers' values and annotators for provenance.
        listed: dict[int, list[dict[str, Any]]] = defaultdict(list)
        rejected: dict[int, list[dict[str, Any]]] = defaultdict(list)
        kept_answers: dict[int, list[Any]] = defaultdict(list)
        kept_by: dict[int, set[int]] = defaultdict(set)
        found = connection.execute(select(*_RAW_ANNOTATION_COLUMNS)
                                   .where(Annotation.task_id.in_([t[0] for t in tasks])).order_by(Annotation.id))
        for task_id, annotator_id, answer, seconds, created_at, rejected_at, excluded_at in found.fetchall():
            head = heads.get(annotator_id)
            if head is None:
                head = heads[annotator_id] = {"annotator": pseudonym(annotator_id), **source_of(annotator_id, models)}
            answer = load(answer)
            item = {**head, "answer": answer, "seconds": seconds, "created_at": iso(created_at)}
            if rejected_at is not None:
                item["rejected"] = True
            if excluded_at is not None:
                item["excluded"] = True
            if rejected_at is not None:
                rejected[task_id].append(item)
            else:
                listed[task_id].append(item)
                kept_answers[task_id].append(answer)
                kept_by[task_id].add(annotator_id)
        for (task_id, unique_id, batch_id, status, data, meta, response, confidence, method, needs_review,
             details, completed_at, review_status, audit_status, predictions) in tasks:
            response = load(response)
            needs_review = None if needs_review is None else bool(needs_review)  # SQLite: 0 or 1
            items = listed[task_id] + rejected[task_id]
            yield {
                "task_id": task_id,
                "unique_id": unique_id,
                "batch": batch_names.get(batch_id) if batch_id else None,
                "status": status,
                "data": load(data),
                "metadata": load(meta),
                "response": response,
                "confidence": confidence,
                "method": method,
                "needs_review": needs_review,
                "details": load(details),
                "completed_at": iso(completed_at),
                "review": {"status": review_status, "audit": audit_status},
                "provenance": _provenance(response, confidence, method, needs_review, kept_answers[task_id],
                                          kept_by[task_id], models),
                "predictions": load(predictions),
                "annotations": items,
            }
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
