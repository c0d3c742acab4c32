"""Several dispatchers (one per server process) share the outbox: each delivery goes out once."""

from __future__ import annotations

import json
import threading
import time

from sqlalchemy import select

from qistas.config import Settings
from qistas.db.engine import Database
from qistas.db.models import Delivery, Task, Webhook
from qistas.domain import outbox, projects, users
from qistas.workers.dispatcher import Dispatcher
from tests.conftest import SECRET
from tests.factories import sealed_webhook_secret as sealed
from tests.receiver import receiver

N_EVENTS = 40


def test_two_dispatchers_send_each_delivery_once(database: Database, settings: Settings) -> None:
    settings = settings.model_copy(update={"webhook_allow_private": True, "webhook_retry_base_seconds": 0.05})
    with receiver() as rx:
        with database.writer.begin() as session:
            org = users.create_org(session, name="Acme", slug="acme")
            owner = users.create_user(session, email="o@acme.test", role="owner", org_id=org.id)
            project = projects.create_project(session, org_id=org.id, actor=owner, name="p",
                                              task={"type": "classification", "labels": ["x"]})
            session.add(Webhook(project_id=project.id, url=rx.url + "/hook", events=["task.completed"],
                                secret_sealed=sealed(SECRET), is_active=True))
            for i in range(N_EVENTS):
                task = Task(project_id=project.id, data={"i": i}, required=1, unique_id=str(i))
                session.add(task)
                session.flush()
                outbox.enqueue(session, event="task.completed", task=task)
        dispatchers = [Dispatcher(settings, database) for _ in range(2)]
        errors: list[BaseException] = []

        def pending() -> int:
            with database.reader() as session:
                return len(session.scalars(select(Delivery.id).where(Delivery.status == "pending")).all())

        def drain(dispatcher: Dispatcher) -> None:
            # Until every delivery is settled: a busy receiver may refuse one, which is then retried.
            deadline = time.monotonic() + 60
            try:
                while pending() and time.monotonic() < deadline:
                    if not dispatcher.step():
                        time.sleep(0.02)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=drain, args=(d,)) for d in dispatchers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        for dispatcher in dispatchers:
            dispatcher.close()
        assert errors == []
        sent = [json.loads(r.body)["task"]["unique_id"] for r in rx.at("/hook")]
    # At least once, and once only unless an attempt failed and was retried.
    with database.reader() as session:
        attempts = sum(session.scalars(select(Delivery.attempts)).all())
    assert sorted(set(sent), key=int) == [str(i) for i in range(N_EVENTS)]
    assert len(sent) <= attempts
    with database.reader() as session:
        statuses = session.scalars(select(Delivery.status)).all()
    assert statuses == ["delivered"] * N_EVENTS
