"""Webhooks and callbacks, end to end: a real server sends signed deliveries to a receiver
on 127.0.0.1, which these tests allow explicitly (QISTAS_WEBHOOK_ALLOW_PRIVATE)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from qistas.config import Settings
from qistas.domain import signing
from tests.factories import Tenant
from tests.receiver import Received, receiver

DONE = ["task.completed"]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={
        "webhook_allow_private": True, "webhook_retry_base_seconds": 0.2, "worker_poll_seconds": 0.05,
    })


def _verified(secret: str, got: Received) -> dict[str, Any]:
    header = got.headers["qistas-signature"]
    assert signing.verify(secret, got.body, header, now=int(time.time())), header
    assert not signing.verify(secret + "x", got.body, header, now=int(time.time()))
    assert not signing.verify(secret, got.body + b" ", header, now=int(time.time()))
    return json.loads(got.body)  # type: ignore[no-any-return]


def _label_all(tenant: Tenant, project_id: int, n: int) -> None:
    for _ in range(n):
        taken = tenant.annotators[0].post(f"/projects/{project_id}/assignments")
        assert taken.status_code == 201, taken.text
        done = tenant.annotators[0].post(f"/assignments/{taken.json()['id']}/submit",
                                         json={"answer": {"label": "positive"}})
        assert done.status_code == 201, done.text


def test_signed_webhooks_and_callbacks_with_a_retry(tenant: Tenant) -> None:
    with receiver({"/hook": [500, 200]}) as rx:
        project = tenant.project()
        pid = project["id"]
        hook = tenant.owner.post(f"/projects/{pid}/webhooks", json={
            "url": rx.url + "/hook", "events": ["task.completed", "batch.completed"]})
        assert hook.status_code == 201, hook.text
        secret = hook.json()["secret"]
        assert secret.startswith("whsec_")
        assert tenant.owner.get(f"/projects/{pid}/webhooks").json()[0]["secret"] is None
        batch = tenant.owner.post(f"/projects/{pid}/batches", json={"name": "b1", "callback_url": rx.url + "/batch"})
        assert batch.status_code == 201, batch.text
        tenant.add_tasks(pid, [{"data": {"text": "good"}, "unique_id": "u1", "batch": "b1",
                                "callback_url": rx.url + "/task"}])
        assert tenant.owner.post(f"/batches/{batch.json()['id']}/finalize").status_code == 200
        _label_all(tenant, pid, 1)

        # The first delivery to /hook gets a 500 and is retried; then all four arrive. (Deliveries
        # go out in parallel, so which event met the 500 is not fixed.)
        rx.wait_for(lambda r: len(r.at("/hook")) >= 3 and r.at("/task") and r.at("/batch"))
        hooks = [_verified(secret, got) for got in rx.at("/hook")]
        events = [h["event"] for h in hooks]
        assert sorted(set(events)) == ["batch.completed", "task.completed"] and len(events) == 3
        (retried,) = (e for e in set(events) if events.count(e) == 2)
        first, retry = (h for h in hooks if h["event"] == retried)
        assert first == retry  # the same event, same id: receivers can deduplicate
        task_event = next(h for h in hooks if h["event"] == "task.completed")
        assert task_event["task"]["unique_id"] == "u1" and task_event["task"]["response"] == {"label": "positive"}
        assert {got.headers["qistas-event"] for got in rx.at("/hook")} == {"task.completed", "batch.completed"}

        callback_key = tenant.owner.get(f"/projects/{pid}/callback-secret").json()["secret"]
        # One answer from an annotator with no gold record: a one-coin worker at accuracy 0.7.
        assert _verified(callback_key, rx.at("/task")[0])["task"]["confidence"] == pytest.approx(0.7)
        batch_event = _verified(callback_key, rx.at("/batch")[0])
        assert batch_event["event"] == "batch.completed"
        assert batch_event["batch"] == {"id": batch.json()["id"], "name": "b1", "status": "completed",
                                        "counts": {"completed": 1}}

        log_url = f"/projects/{pid}/webhooks/{hook.json()['id']}/deliveries"
        # A receipt is logged once the receiver's answer is back: wait for the log to settle.
        rx.wait_for(lambda _r: {d["status"] for d in tenant.owner.get(log_url).json()["items"]} == {"delivered"})
        log = tenant.owner.get(log_url).json()["items"]
        by_event = {d["event"]: d for d in log}
        assert by_event[retried]["attempts"] == 2 and by_event[retried]["last_status_code"] == 200
        assert sum(d["attempts"] for d in log) == 3
        everything = tenant.owner.get(f"/projects/{pid}/deliveries").json()["items"]
        assert sorted(d["kind"] for d in everything) == ["batch_callback", "task_callback", "webhook", "webhook"]

        # Re-send from the log: the receiver sees the same event once more.
        again = tenant.owner.post(f"/projects/{pid}/deliveries/{by_event['batch.completed']['id']}/resend")
        assert again.status_code == 202, again.text
        rx.wait_for(lambda r: len(r.at("/hook")) >= 4)
        assert _verified(secret, rx.at("/hook")[3])["id"] == batch_event["id"]


def test_only_subscribed_events_and_deleted_webhooks_stay_quiet(tenant: Tenant) -> None:
    with receiver() as rx:
        pid = tenant.project()["id"]
        batch_only = tenant.owner.post(f"/projects/{pid}/webhooks",
                                       json={"url": rx.url + "/batches", "events": ["batch.completed"]}).json()
        gone = tenant.owner.post(f"/projects/{pid}/webhooks",
                                 json={"url": rx.url + "/gone", "events": DONE}).json()
        assert tenant.owner.delete(f"/projects/{pid}/webhooks/{gone['id']}").status_code == 204
        assert tenant.owner.delete(f"/projects/{pid}/webhooks/{gone['id']}").status_code == 404
        live = tenant.owner.post(f"/projects/{pid}/webhooks", json={"url": rx.url + "/live", "events": DONE})
        tenant.add_tasks(pid, [{"data": {"text": "x"}}])
        _label_all(tenant, pid, 1)
        rx.wait_for(lambda r: len(r.at("/live")) == 1)
        time.sleep(0.3)
        assert rx.at("/batches") == [] and rx.at("/gone") == []
        assert [w["id"] for w in tenant.owner.get(f"/projects/{pid}/webhooks").json()] == [
            batch_only["id"], live.json()["id"]]


def test_redirects_are_not_followed(tenant: Tenant) -> None:
    with receiver({"/moved": [302]}) as rx:
        pid = tenant.project()["id"]
        hook = tenant.owner.post(f"/projects/{pid}/webhooks", json={"url": rx.url + "/moved", "events": DONE})
        tenant.add_tasks(pid, [{"data": {"text": "x"}}])
        _label_all(tenant, pid, 1)
        rx.wait_for(lambda r: len(r.at("/moved")) >= 2)
        assert rx.at("/redirected") == []
        log = tenant.owner.get(f"/projects/{pid}/webhooks/{hook.json()['id']}/deliveries").json()["items"]
        assert log[0]["status"] == "pending" and log[0]["last_status_code"] == 302
        assert "redirect" in log[0]["last_error"]


def test_webhooks_belong_to_their_tenant(tenant: Tenant, rival: Tenant) -> None:
    pid = tenant.project()["id"]
    hook = tenant.owner.post(f"/projects/{pid}/webhooks", json={"url": "http://127.0.0.1:9/x", "events": DONE})
    assert hook.status_code == 201
    for call in (
        rival.owner.get(f"/projects/{pid}/webhooks"),
        rival.owner.post(f"/projects/{pid}/webhooks", json={"url": "http://127.0.0.1:9/y", "events": DONE}),
        rival.owner.delete(f"/projects/{pid}/webhooks/{hook.json()['id']}"),
        rival.owner.get(f"/projects/{pid}/webhooks/{hook.json()['id']}/deliveries"),
        rival.owner.get(f"/projects/{pid}/callback-secret"),
    ):
        assert call.status_code == 404, call.text
        assert call.json()["error"]["code"] == "not_found"
    assert tenant.annotators[0].get(f"/projects/{pid}/webhooks").status_code == 403
    bad = tenant.owner.post(f"/projects/{pid}/webhooks", json={"url": "http://127.0.0.1:9/", "events": ["task.done"]})
    assert bad.status_code == 422 and bad.json()["error"]["details"] == {"field": "events.0"}


def test_a_host_name_is_resolved_checked_and_named_in_the_host_header(tenant: Tenant) -> None:
    with receiver() as rx:
        pid = tenant.project()["id"]
        url = rx.url.replace("127.0.0.1", "localhost") + "/named"
        assert tenant.owner.post(f"/projects/{pid}/webhooks", json={"url": url, "events": DONE}).status_code == 201
        tenant.add_tasks(pid, [{"data": {"text": "x"}}])
        _label_all(tenant, pid, 1)
        rx.wait_for(lambda r: len(r.at("/named")) == 1)
        assert rx.at("/named")[0].headers["host"] == url.split("/")[2]
