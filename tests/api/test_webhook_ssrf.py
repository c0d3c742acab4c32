"""Destinations that are not public are refused when registered and again at connect time
(the default: QISTAS_WEBHOOK_ALLOW_PRIVATE is off). No traffic leaves the loopback."""

from __future__ import annotations

import ipaddress

import pytest
from sqlalchemy import select

from qistas.config import Settings
from qistas.db.engine import Database
from qistas.db.models import Delivery, Task, Webhook
from qistas.domain import outbox
from qistas.domain.destinations import Policy
from qistas.workers.dispatcher import Dispatcher
from tests.conftest import SECRET
from tests.factories import Tenant
from tests.factories import sealed_webhook_secret as sealed
from tests.receiver import receiver

REFUSED = [
    "http://127.0.0.1:8000/hook",
    "http://10.1.2.3/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:8000/hook",
    "http://localhost:8000/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0/",
    "http://192.168.1.1/",
    "http://100.100.100.200/",  # a cloud metadata address in shared space
    "http://[fd00:ec2::254]/",
    "http://2130706433/",  # 127.0.0.1 spelled as one number
    "http://0x7f.0.0.1/",
    "http://127.1/",
    "http://[::]/",
    # IPv6 forms that carry a private IPv4 address.
    "http://[::ffff:10.0.0.1]/",  # IPv4-mapped
    "http://[::10.0.0.1]/",  # IPv4-compatible
    "http://[::ffff:0:10.0.0.1]/",  # IPv4-translated
    "http://[64:ff9b::10.0.0.1]/",  # NAT64
    "http://[64:ff9b::127.0.0.1]/",
    "http://[64:ff9b:1::808:808]/",  # local-use NAT64: the IPv4 address sits where its operator chose
    "http://[2002:a9fe:a9fe::1]/",  # 6to4 of 169.254.169.254
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/",  # Teredo, client 10.0.0.1
    "http://[2606:4700::5efe:a00:1]/",  # ISATAP interface id of 10.0.0.1
    "ftp://example.com/",
    "file:///etc/passwd",
]


@pytest.mark.parametrize("url", REFUSED)
def test_non_public_webhook_destinations_are_refused(tenant: Tenant, url: str) -> None:
    pid = tenant.project()["id"]
    answer = tenant.owner.post(f"/projects/{pid}/webhooks", json={"url": url, "events": ["task.completed"]})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["details"] == {"field": "url"}
    assert tenant.owner.get(f"/projects/{pid}/webhooks").json() == []


@pytest.mark.parametrize("url", ["http://localhost:8000/hook", "http://no-such-host.invalid/hook",
                                 "http://[64:ff9b::a9fe:a9fe]/"])
def test_a_refusal_does_not_say_what_a_name_resolves_to(tenant: Tenant, url: str) -> None:
    pid = tenant.project()["id"]
    answer = tenant.owner.post(f"/projects/{pid}/webhooks", json={"url": url, "events": ["task.completed"]})
    message = answer.json()["error"]["message"]
    assert answer.status_code == 422
    assert message == "url: this destination is not allowed; webhooks and callbacks go to public addresses only"


@pytest.mark.parametrize("address", ["8.8.8.8", "::ffff:8.8.8.8", "64:ff9b::8.8.8.8", "2002:808:808::1",
                                     "2606:4700::1111"])
def test_public_addresses_stay_allowed_in_every_form(address: str) -> None:
    assert Policy().permits(ipaddress.ip_address(address))


def test_allowed_networks_reach_the_embedded_address() -> None:
    policy = Policy(allowed_networks=(ipaddress.ip_network("10.0.0.0/8"),))
    assert policy.permits(ipaddress.ip_address("::ffff:10.1.2.3"))
    assert policy.permits(ipaddress.ip_address("64:ff9b::10.1.2.3"))
    assert not policy.permits(ipaddress.ip_address("64:ff9b::192.168.0.1"))


def test_callbacks_are_checked_too(tenant: Tenant) -> None:
    pid = tenant.project()["id"]
    batch = tenant.owner.post(f"/projects/{pid}/batches", json={"name": "b", "callback_url": "http://10.0.0.7/cb"})
    assert batch.status_code == 422
    assert batch.json()["error"]["details"] == {"field": "callback_url"}
    rows = [{"data": {"text": "a"}, "callback_url": "http://localhost/cb"},
            {"data": {"text": "b"}, "callback_url": "http://169.254.169.254/"}]
    answer = tenant.owner.post(f"/projects/{pid}/tasks", json=rows)
    assert answer.status_code == 422
    assert [r["row"] for r in answer.json()["error"]["details"]["rows"]] == [1, 2]
    assert tenant.owner.get(f"/projects/{pid}/tasks").json()["items"] == []


def test_connect_time_check_refuses_what_became_private(tenant: Tenant, database: Database,
                                                        settings: Settings) -> None:
    """A destination allowed once (or a name that now resolves to loopback) is checked again."""
    pid = tenant.project()["id"]
    tenant.add_tasks(pid, [{"data": {"text": "x"}}])
    with receiver() as rx:
        with database.writer.begin() as session:
            session.add(Webhook(project_id=pid, url=rx.url + "/hook", events=["task.completed"],
                                secret_sealed=sealed(SECRET), is_active=True))
            session.flush()
            task = session.scalars(select(Task).where(Task.project_id == pid)).one()
            assert outbox.enqueue(session, event="task.completed", task=task) == 1
        dispatcher = Dispatcher(settings, database)
        try:
            assert dispatcher.step() is True
        finally:
            dispatcher.close()
        assert rx.received == []
    with database.reader() as session:
        delivery = session.scalars(select(Delivery)).one()
    assert delivery.status == "pending" and delivery.attempts == 1
    assert delivery.last_error is not None and "not allowed" in delivery.last_error
    assert "127.0.0.1" not in delivery.last_error
