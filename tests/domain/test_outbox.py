"""The outbox and the dispatcher's bookkeeping, on the database directly."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from qistas.config import Settings
from qistas.db.engine import Database
from qistas.db.models import Delivery, Project, Task, Webhook
from qistas.db.types import utcnow
from qistas.domain import outbox, projects, users
from qistas.workers.dispatcher import Dispatcher, Outcome, Outgoing, backoff
from tests.conftest import SECRET
from tests.factories import sealed_webhook_secret as sealed


def _project(database: Database) -> tuple[int, int]:
    with database.writer.begin() as session:
        org = users.create_org(session, name="Acme", slug="acme")
        owner = users.create_user(session, email="o@acme.test", role="owner", org_id=org.id)
        project = projects.create_project(session, org_id=org.id, actor=owner, name="p",
                                          task={"type": "classification", "labels": ["x", "y"]})
        task = Task(project_id=project.id, data={}, required=1, callback_url="https://example.com/cb")
        session.add(task)
        session.add(Webhook(project_id=project.id, url="https://example.com/changed", events=["result.changed"],
                            secret_sealed=sealed(SECRET), is_active=True))
        session.add(Webhook(project_id=project.id, url="https://example.com/done", events=["task.completed"],
                            secret_sealed=sealed(SECRET), is_active=True))
        session.flush()
        return project.id, task.id


def test_enqueue_fans_out_to_subscribers_and_callbacks(database: Database) -> None:
    project_id, task_id = _project(database)
    with database.writer.begin() as session:
        task = session.get(Task, task_id)
        assert task is not None
        assert outbox.enqueue(session, event="result.changed", task=task, previous={"label": "y"}) == 1
        assert outbox.enqueue(session, event="task.completed", task=task) == 2
    with database.reader() as session:
        rows = list(session.scalars(select(Delivery).order_by(Delivery.id)))
    assert [(r.event, r.kind, r.url) for r in rows] == [
        ("result.changed", "webhook", "https://example.com/changed"),
        ("task.completed", "webhook", "https://example.com/done"),
        ("task.completed", "task_callback", "https://example.com/cb"),
    ]
    assert rows[0].payload["previous"] == {"label": "y"} and rows[0].payload["project_id"] == project_id
    assert rows[1].event_id == rows[2].event_id != rows[0].event_id


def test_an_outbox_row_rolls_back_with_its_change(database: Database) -> None:
    _, task_id = _project(database)
    try:
        with database.writer.begin() as session:
            task = session.get(Task, task_id)
            assert task is not None
            outbox.enqueue(session, event="task.completed", task=task)
            raise RuntimeError("the change fails")
    except RuntimeError:
        pass
    with database.reader() as session:
        assert session.scalars(select(Delivery)).all() == []


def test_backoff_doubles_to_a_ceiling_and_gives_up_after_the_window(database: Database, settings: Settings) -> None:
    assert [backoff(settings, n) for n in (1, 2, 3)] == [30.0, 60.0, 120.0]
    assert backoff(settings, 30) == settings.webhook_retry_max_delay_seconds
    # The schedule keeps trying for at least a day.
    elapsed, attempts = 0.0, 0
    while elapsed <= settings.webhook_retry_hours * 3600:
        attempts += 1
        elapsed += backoff(settings, attempts)
    assert settings.webhook_retry_hours >= 24 and attempts > 20

    project_id, task_id = _project(database)
    with database.writer.begin() as session:
        task = session.get(Task, task_id)
        assert task is not None and session.get(Project, project_id) is not None
        outbox.enqueue(session, event="task.completed", task=task)
        young, old = session.scalars(select(Delivery).order_by(Delivery.id)).all()
        old.created_at = utcnow() - timedelta(hours=settings.webhook_retry_hours + 1)
    dispatcher = Dispatcher(settings, database)
    try:
        for row in (young, old):
            outgoing = Outgoing(id=row.id, url=row.url, event=row.event, event_id=row.event_id, body=b"{}",
                                secret="s")
            with database.writer.begin() as session:
                dispatcher._record(session, outgoing=outgoing, outcome=Outcome(503, "HTTP 503"))
    finally:
        dispatcher.close()
    with database.reader() as session:
        young, old = session.scalars(select(Delivery).order_by(Delivery.id)).all()
    assert young.status == "pending" and young.attempts == 1 and young.next_attempt_at > utcnow()
    assert old.status == "failed" and old.last_status_code == 503


def test_a_changed_result_is_announced_once_it_differs(database: Database) -> None:
    from qistas.domain import results

    _, task_id = _project(database)
    with database.writer.begin() as session:
        task = session.get(Task, task_id)
        assert task is not None
        task.status, task.response, task.confidence = "completed", {"label": "x"}, 0.6
        assert results.change_result(session, task=task, response={"label": "x"}, confidence=0.9,
                                     method="dawid_skene") is False
        assert results.change_result(session, task=task, response={"label": "y"}, confidence=0.8,
                                     method="dawid_skene") is True
    with database.reader() as session:
        (row,) = session.scalars(select(Delivery)).all()
        task = session.get(Task, task_id)
    assert row.event == "result.changed" and row.url == "https://example.com/changed"
    assert row.payload["previous"] == {"label": "x"} and row.payload["task"]["response"] == {"label": "y"}
    assert task is not None and task.confidence == 0.8 and task.method == "dawid_skene"


def test_old_log_entries_are_purged(database: Database, settings: Settings) -> None:
    _, task_id = _project(database)
    with database.writer.begin() as session:
        task = session.get(Task, task_id)
        assert task is not None
        outbox.enqueue(session, event="task.completed", task=task)
        old, pending = session.scalars(select(Delivery).order_by(Delivery.id)).all()
        old.status = "delivered"
        old.created_at = pending.created_at = utcnow() - timedelta(days=settings.webhook_log_days + 1)
    dispatcher = Dispatcher(settings, database)
    try:
        assert dispatcher.purge(now=utcnow()) == 1
    finally:
        dispatcher.close()
    with database.reader() as session:
        assert session.scalars(select(Delivery.status)).all() == ["pending"]  # still to be sent: kept
