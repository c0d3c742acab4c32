"""Reading a project's tasks and results: keyset pages, streamed exports, stats.

Exports walk the tasks in keyset chunks and fetch the chunk's annotations in one query, so
memory stays flat whatever the project's size, and the database does a bounded amount of
work per chunk.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qistas.db.models import Annotation, Assignment, Batch, Project, Task
from qistas.errors import Invalid

EXPORT_CHUNK = 500
TASK_STATUSES = ("pending", "completed", "canceled")
EXPORT_FORMATS = ("jsonl", "csv")
CSV_COLUMNS = (
    "task_id", "unique_id", "batch", "status", "data", "metadata",
    "response", "confidence", "method", "annotations",
)


def task_page(
    session: Session, *, project_id: int, status: str | None, after: int | None, limit: int
) -> list[Task]:
    query = select(Task).where(Task.project_id == project_id)
    if status is not None:
        if status not in TASK_STATUSES:
            raise Invalid(f"status must be one of {', '.join(TASK_STATUSES)}", details={"field": "status"})
        query = query.where(Task.status == status)
    if after is not None:
        query = query.where(Task.id > after)
    return list(session.scalars(query.order_by(Task.id).limit(limit)))


def results_page(session: Session, *, project_id: int, after: int | None, limit: int) -> list[Task]:
    return task_page(session, project_id=project_id, status="completed", after=after, limit=limit)


def _annotations_by_task(session: Session, task_ids: list[int]) -> dict[int, list[Annotation]]:
    grouped: dict[int, list[Annotation]] = defaultdict(list)
    rows = session.scalars(
        select(Annotation).where(Annotation.task_id.in_(task_ids)).order_by(Annotation.id)
    )
    for annotation in rows:
        grouped[annotation.task_id].append(annotation)
    return grouped


def iter_export_records(
    session: Session, *, project: Project, pseudonym: Callable[[int], str]
) -> Iterator[dict[str, Any]]:
    batch_query = select(Batch.id, Batch.name).where(Batch.project_id == project.id)
    batch_names = dict(session.execute(batch_query).tuples().all())
    after = 0
    names: dict[int, str] = {}
    while True:
        tasks = list(
            session.scalars(
                select(Task)
                .where(Task.project_id == project.id, Task.id > after)
                .order_by(Task.id)
                .limit(EXPORT_CHUNK)
            )
        )
        if not tasks:
            return
        annotations = _annotations_by_task(session, [t.id for t in tasks])
        for task in tasks:
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
                "annotations": [
                    {
                        "annotator": names.setdefault(a.annotator_id, pseudonym(a.annotator_id)),
                        "answer": a.answer,
                        "seconds": a.seconds,
                        "created_at": a.created_at.isoformat(),
                    }
                    for a in annotations.get(task.id, [])
                ],
            }
        after = tasks[-1].id
        session.expunge_all()  # keep the identity map from growing with the export


def _jsonl(records: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    for record in records:
        yield (json.dumps(record, ensure_ascii=False) + "\n").encode()


def spreadsheet_safe(cell: str) -> str:
    """Keep spreadsheets from running a cell as a formula (CSV injection)."""
    if cell and cell[0] in "=+-@\t\r":
        return "'" + cell
    return cell


def _csv(records: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for record in records:
        cells = []
        for column in CSV_COLUMNS:
            value = record[column]
            if value is None:
                cells.append("")
            elif isinstance(value, dict | list):
                cells.append(spreadsheet_safe(json.dumps(value, ensure_ascii=False)))
            else:
                cells.append(spreadsheet_safe(str(value)))
        writer.writerow(cells)
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def export_stream(
    session: Session, *, project: Project, fmt: str, pseudonym: Callable[[int], str]
) -> Iterator[bytes]:
    if fmt not in EXPORT_FORMATS:
        raise Invalid(f"format must be one of {', '.join(EXPORT_FORMATS)}", details={"field": "format"})
    records = iter_export_records(session, project=project, pseudonym=pseudonym)
    return _in_blocks(_jsonl(records) if fmt == "jsonl" else _csv(records))


EXPORT_BLOCK = 64 * 1024


def _in_blocks(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """Join per-record pieces into blocks of about 64 KiB.

    The server sends each yielded piece as its own chunk, from a worker thread: one per
    record made a 100k-task export cost 100k thread round trips.
    """
    block: list[bytes] = []
    size = 0
    for piece in pieces:
        block.append(piece)
        size += len(piece)
        if size >= EXPORT_BLOCK:
            yield b"".join(block)
            block, size = [], 0
    if block:
        yield b"".join(block)


def project_stats(session: Session, *, project_id: int, now: datetime) -> dict[str, Any]:
    by_status = dict(
        session.execute(
            select(Task.status, func.count()).where(Task.project_id == project_id).group_by(Task.status)
        ).tuples().all()
    )
    annotations = select(func.count()).select_from(Annotation).where(Annotation.project_id == project_id)
    last_hour = session.scalar(annotations.where(Annotation.created_at > now - timedelta(hours=1))) or 0
    return {
        "tasks": {status: by_status.get(status, 0) for status in TASK_STATUSES},
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
                Assignment.project_id == project_id, Assignment.status == "active", Assignment.expires_at > now
            )
        ) or 0,
        "throughput": {
            "annotations_last_hour": last_hour,
            "annotations_last_day": session.scalar(
                annotations.where(Annotation.created_at > now - timedelta(days=1))
            ) or 0,
        },
    }
