"""A receiver cannot hold a sender: each attempt ends within the timeout however slowly the
receiver answers, and no more than 64 KiB of its answer is read."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select

from qistas.config import Settings
from qistas.db.engine import Database
from qistas.db.models import Delivery, Task, Webhook
from qistas.domain import outbox
from qistas.workers.dispatcher import Dispatcher
from qistas.workers.outbound import MAX_RESPONSE_BYTES
from tests.conftest import SECRET
from tests.factories import Tenant
from tests.factories import sealed_webhook_secret as sealed
from tests.receiver import Receiver, receiver

TIMEOUT = 1.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_allow_private": True, "webhook_timeout_seconds": TIMEOUT})


def _one_delivery(tenant: Tenant, database: Database, url: str) -> None:
    pid = tenant.project()["id"]
    tenant.add_tasks(pid, [{"data": {"text": "x"}}])
    with database.writer.begin() as session:
        session.add(Webhook(project_id=pid, url=url, events=["task.completed"],
                            secret_sealed=sealed(SECRET), is_active=True))
        session.flush()
        task = session.scalars(select(Task).where(Task.project_id == pid)).one()
        assert outbox.enqueue(session, event="task.completed", task=task) == 1


def _step_within(settings: Settings, database: Database, rx: Receiver, seconds: float) -> float:
    """Run one dispatcher step; the receiver stops misbehaving after ``seconds`` at the latest."""
    dispatcher = Dispatcher(settings, database)
    started = time.monotonic()
    worker = threading.Thread(target=dispatcher.step, daemon=True)
    worker.start()
    worker.join(seconds)
    took = time.monotonic() - started
    rx.stopped.set()  # unblocks a sender that has no bound, so the test ends either way
    worker.join(30)
    dispatcher.close()
    return took


def test_a_trickling_receiver_cannot_hold_a_delivery(tenant: Tenant, database: Database,
                                                     settings: Settings) -> None:
    with receiver() as rx:
        _one_delivery(tenant, database, rx.url + "/trickle")
        took = _step_within(settings, database, rx, 20 * TIMEOUT)
    assert took < 10 * TIMEOUT  # one byte every 0.3 s never trips a per-read timeout of 1 s
    with database.reader() as session:
        delivery = session.scalars(select(Delivery)).one()
    assert delivery.status == "pending" and delivery.attempts == 1
    assert delivery.last_error is not None and "Timeout" in delivery.last_error


def test_an_endless_answer_is_read_only_so_far(tenant: Tenant, database: Database, settings: Settings) -> None:
    with receiver() as rx:
        _one_delivery(tenant, database, rx.url + "/endless")
        took = _step_within(settings, database, rx, 20 * TIMEOUT)
        sent = rx.sent
    assert took < 10 * TIMEOUT
    # What the receiver got out before the sender hung up: the cap plus what sits in buffers.
    assert sent < MAX_RESPONSE_BYTES + 16 * 2**20
    with database.reader() as session:
        delivery = session.scalars(select(Delivery)).one()
    assert delivery.status == "delivered" and delivery.last_status_code == 200
