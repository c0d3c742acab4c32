"""Likely label errors over HTTP: the ranked list of delivered tasks, and sending one to review."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from qistas.db.engine import Database
from qistas.db.models import AuditEvent
from tests.api.helpers import answer_label, error_of, take_if_any
from tests.conftest import LiveServer
from tests.factories import Tenant, make_reviewer

TRUTH = ["positive", "negative", "mixed"]
PLANTED = 5  # truth "mixed"; the first (reliable) annotator slips and says "positive", like the spammer


@pytest.fixture
def reviewer(server: LiveServer, database: Database) -> Iterator[httpx.Client]:
    with make_reviewer(database, server.url, "rita") as client:
        yield client


def _labelled_project(tenant: Tenant) -> int:
    """12 tasks, 3 answers each: annotators 0 and 1 give the truth, annotator 2 always "positive";
    on the planted task annotator 0 says "positive" too, so its majority (delivered) is wrong."""
    pid: int = tenant.project(redundancy={"min": 3, "max": 3})["id"]
    tenant.add_tasks(pid, [{"data": {"text": f"r{i}"}, "unique_id": f"r{i}"} for i in range(12)])
    for _ in range(12):
        for n, worker in enumerate(tenant.annotators):
            lease = take_if_any(worker, pid)
            assert lease is not None
            index = int(lease["task"]["data"]["text"][1:])
            label = "positive" if n == 2 or (n == 0 and index == PLANTED) else TRUTH[index % 3]
            assert answer_label(worker, lease, label).status_code == 201
    return pid


def _errors(client: httpx.Client, pid: int, **params: Any) -> dict[str, Any]:
    response = client.get(f"/projects/{pid}/label-errors", params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_the_planted_wrong_label_comes_first_once_the_model_is_fitted(tenant: Tenant, rival: Tenant,
                                                                      database: Database) -> None:
    pid = _labelled_project(tenant)
    before = _errors(tenant.owner, pid)
    assert (before["ranking"], before["model"]) == ("settled", None)
    # unanimous "positive" tasks are listed last; the 2-1 votes (the planted one among them) first
    assert {item["unique_id"] for item in before["items"][:8]} >= {f"r{PLANTED}"}
    assert before["items"][-1]["agreement"] == 1.0

    assert tenant.owner.post(f"/projects/{pid}/quality/refit").status_code == 200
    after = _errors(tenant.member, pid)
    assert after["ranking"] == "model" and after["model"]
    first = after["items"][0]
    assert first["unique_id"] == f"r{PLANTED}" and first["response"]["label"] == "positive"
    assert first["p_wrong"] == pytest.approx(1 - first["confidence"], abs=1e-6)
    assert first["p_wrong"] > max(item["p_wrong"] for item in after["items"][1:])
    assert first["answers"] == [{"answer": {"label": "positive"}, "n": 2}, {"answer": {"label": "mixed"}, "n": 1}]
    assert first["agreement"] == pytest.approx(2 / 3, abs=1e-4)
    assert len(after["items"]) == 12 and after["next_offset"] is None
    p_wrong = [item["p_wrong"] for item in after["items"]]
    assert p_wrong == sorted(p_wrong, reverse=True)

    # Pages: offset and limit, no task twice.
    page1 = _errors(tenant.owner, pid, limit=5)
    assert len(page1["items"]) == 5 and page1["next_offset"] == 5
    page2 = _errors(tenant.owner, pid, limit=5, offset=page1["next_offset"])
    seen = [i["task_id"] for i in page1["items"] + page2["items"]]
    assert seen == [i["task_id"] for i in after["items"][:10]]
    for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"offset": 1000}, {"limit": "x"}):
        error_of(tenant.owner.get(f"/projects/{pid}/label-errors", params=bad), 422)
    # Another organization's project is not found; annotators may not read it.
    error_of(rival.owner.get(f"/projects/{pid}/label-errors"), 404)
    error_of(tenant.inhouse.get(f"/projects/{pid}/label-errors"), 403)
    with database.reader() as session:
        reads = session.scalars(select(AuditEvent.action).where(AuditEvent.object_id == pid,
                                                                AuditEvent.action == "label_errors.read")).all()
    assert len(reads) == 4  # each answered read; refused requests record nothing


def test_a_listed_task_goes_to_review_and_leaves_the_list(tenant: Tenant, rival: Tenant, reviewer: httpx.Client,
                                                          database: Database) -> None:
    pid = _labelled_project(tenant)
    assert tenant.owner.post(f"/projects/{pid}/quality/refit").status_code == 200
    task_id = _errors(tenant.owner, pid)["items"][0]["task_id"]
    error_of(rival.owner.post(f"/tasks/{task_id}/recheck"), 404)
    error_of(tenant.inhouse.post(f"/tasks/{task_id}/recheck"), 403)
    sent = tenant.member.post(f"/tasks/{task_id}/recheck")
    assert sent.status_code == 200, sent.text
    body = sent.json()
    assert body["status"] == "review" and body["review"]["status"] == "pending"
    assert error_of(tenant.owner.post(f"/tasks/{task_id}/recheck"), 409)["code"]  # no longer delivered
    listed = _errors(tenant.owner, pid)["items"]
    assert task_id not in [i["task_id"] for i in listed] and len(listed) == 11
    with database.reader() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.object_id == task_id,
                                                         AuditEvent.action == "task.recheck")).one()
    assert event.details == {"round": 1}

    # The reviewer corrects it; a result a person vouched for is not listed again.
    lease = reviewer.post(f"/projects/{pid}/reviews")
    assert lease.status_code == 201, lease.text
    assert lease.json()["task"]["id"] == task_id
    done = reviewer.post(f"/reviews/{lease.json()['id']}", json={"action": "correct", "answer": {"label": "mixed"}})
    assert done.status_code == 201, done.text
    task = tenant.owner.get(f"/tasks/{task_id}").json()
    assert (task["status"], task["response"]["label"], task["review"]["status"]) == ("completed", "mixed", "corrected")
    assert task_id not in [i["task_id"] for i in _errors(tenant.owner, pid)["items"]]


def test_only_a_delivered_task_can_be_sent_to_review(tenant: Tenant) -> None:
    pid: int = tenant.project()["id"]
    tenant.add_tasks(pid, [{"data": {"text": "open"}}])
    pending = tenant.owner.get(f"/projects/{pid}/tasks").json()["items"][0]["id"]
    assert error_of(tenant.owner.post(f"/tasks/{pending}/recheck"), 409)["details"] == {"field": "task"}
    error_of(tenant.owner.post("/tasks/999999999/recheck"), 404)
    assert _errors(tenant.owner, pid)["items"] == []
