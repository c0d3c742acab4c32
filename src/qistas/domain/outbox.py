"""The outbox: events written in the transaction of the change that caused them.

``enqueue`` is the one hook the rest of the domain calls (a task completed, a batch
completed, a result changed). It writes one ``Delivery`` row per destination: each active
project webhook subscribed to the event, and the object's own ``callback_url``. Because the
rows commit or roll back with the change, a delivery is never sent for a change that did not
happen, nor lost for one that did. The dispatcher (``qistas.workers.dispatcher``) sends them
after commit.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qistas.db.models import Batch, Delivery, Task
from qistas.db.queries import outbox as queries
from qistas.db.types import utcnow

EVENTS = ("task.completed", "batch.completed", "result.changed", "task.audit_rejected")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def task_body(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "unique_id": task.unique_id,
        "batch_id": task.batch_id,
        "status": task.status,
        "response": task.response,
        "confidence": task.confidence,
        "method": task.method,
        "n_annotations": task.n_annotations,
        "metadata": task.meta,
        "completed_at": _iso(task.completed_at),
    }


def _batch_body(session: Session, batch: Batch) -> dict[str, Any]:
    rows = session.execute(select(Task.status, func.count()).where(Task.batch_id == batch.id).group_by(Task.status))
    counts = {status: count for status, count in rows}
    return {"id": batch.id, "name": batch.name, "status": batch.status, "counts": counts}


def _hooks_for(session: Session, *, project_id: int, event: str) -> list[tuple[str, int | None, str]]:
    """The project's active webhooks subscribed to ``event``, as ``enqueue``'s destinations."""
    return [("webhook", hook.id, hook.url) for hook in queries.ACTIVE_HOOKS.all(session, project_id=project_id)
            if event in hook.events]


def listened(session: Session, *, project_id: int, event: str) -> bool:
    """Whether an active webhook of the project listens to ``event``: for a task's event other
    than ``task.completed`` (which also goes to the task's callback), whether ``enqueue`` would
    write anything."""
    return bool(_hooks_for(session, project_id=project_id, event=event))


def enqueue(
    session: Session,
    *,
    event: str,
    task: Task | None = None,
    batch: Batch | None = None,
    previous: Any = None,
    audit: dict[str, Any] | None = None,
) -> int:
    """Write the deliveries of one event; return how many. Only flushes. ``audit``: the
    customer's verdict a ``task.audit_rejected`` announces (``reason``, ``at``)."""
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}")
    if batch is not None:
        project_id = batch.project_id
        callback = batch.callback_url
    elif task is not None:
        project_id = task.project_id
        callback = task.callback_url if event == "task.completed" else None
    else:
        raise ValueError("enqueue needs a task or a batch")
    destinations = _hooks_for(session, project_id=project_id, event=event)
    if callback:
        destinations.append(("batch_callback" if batch is not None else "task_callback", None, callback))
    if not destinations:
        return 0  # most completions: nobody listens, so no body is built
    now = utcnow()
    event_id = uuid.uuid4().hex
    subject: dict[str, Any]
    if batch is not None:
        subject = {"batch": _batch_body(session, batch)}
    else:
        assert task is not None
        subject = {"task": task_body(task)}
        if event == "result.changed":
            subject["previous"] = previous
        if event == "task.audit_rejected":
            subject["audit"] = audit
    payload = {"id": event_id, "event": event, "created_at": now.isoformat(), "project_id": project_id, **subject}
    for kind, webhook_id, url in destinations:
        session.add(Delivery(
            event_id=event_id, project_id=project_id, webhook_id=webhook_id, kind=kind, url=url,
            event=event, payload=payload, status="pending", attempts=0, next_attempt_at=now, created_at=now,
        ))
    session.flush()
    return len(destinations)


def resend(session: Session, *, delivery: Delivery) -> Delivery:
    """Queue the same event (same ``id`` in the body) again to the same destination."""
    now = utcnow()
    copy = Delivery(
        event_id=delivery.event_id, project_id=delivery.project_id, webhook_id=delivery.webhook_id,
        kind=delivery.kind, url=delivery.url, event=delivery.event, payload=delivery.payload,
        status="pending", attempts=0, next_attempt_at=now, created_at=now,
    )
    session.add(copy)
    session.flush()
    return copy
