"""The review stage and the customer's audit, over real HTTP: who may review, what a reviewer
sees, accept / correct / reject, stale and repeated reviews, audits that reopen a task."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from qistas.db.engine import Database
from qistas.db.models import Delivery
from tests.api.helpers import answer_label, error_of, field_of, take, take_if_any
from tests.conftest import LiveServer
from tests.factories import Tenant, make_reviewer


@pytest.fixture
def reviewer(server: LiveServer, database: Database) -> Iterator[httpx.Client]:
    with make_reviewer(database, server.url, "rita") as client:
        yield client


def _rows(n: int) -> list[dict[str, Any]]:
    return [{"data": {"text": f"t {i}"}, "unique_id": f"t{i}"} for i in range(n)]


def _annotate_all(worker: httpx.Client, pid: int, label: str = "positive") -> int:
    done = 0
    while (lease := take_if_any(worker, pid)) is not None:
        assert answer_label(worker, lease, label).status_code == 201
        done += 1
    return done


def _task(client: httpx.Client, task_id: int) -> dict[str, Any]:
    response = client.get(f"/tasks/{task_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _take_review(reviewer: httpx.Client, pid: int) -> dict[str, Any]:
    response = reviewer.post(f"/projects/{pid}/reviews")
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_held_tasks_wait_for_a_reviewer_who_accepts_corrects_and_rejects(
        tenant: Tenant, reviewer: httpx.Client) -> None:
    project = tenant.project(review={"share": 1})
    pid = project["id"]
    assert project["review"] == {"share": 1}
    tenant.add_tasks(pid, _rows(3))
    first = tenant.annotators[0]
    assert _annotate_all(first, pid) == 3
    # Held for review: not delivered, not in the results.
    assert tenant.owner.get(f"/projects/{pid}/results").json()["items"] == []
    waiting = tenant.owner.get(f"/projects/{pid}/tasks", params={"status": "review"}).json()["items"]
    assert len(waiting) == 3 and {t["review"]["status"] for t in waiting} == {"pending"}

    lease = _take_review(reviewer, pid)
    assert set(lease) == {"id", "project_id", "task", "answers", "response", "confidence", "expires_at"}
    assert set(lease["task"]) == {"id", "data"}  # no metadata, no organization
    assert lease["response"] == {"label": "positive"}
    [shown] = lease["answers"]
    assert shown["annotator"].startswith("annotator-") and shown["answer"] == {"label": "positive"}
    assert shown["agrees"] is True  # matches the aggregated answer
    # The reviewer sees the annotator under the project's pseudonym, the one its customer sees.
    export = tenant.owner.get(f"/projects/{pid}/export", params={"format": "jsonl"}).text
    named = {a["annotator"] for line in export.splitlines() for a in json.loads(line)["annotations"]}
    assert shown["annotator"] in named
    assert _take_review(reviewer, pid)["id"] == lease["id"]  # a retried take gets the same lease back

    accepted = reviewer.post(f"/reviews/{lease['id']}", json={"action": "accept"})
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["action"] == "accept"
    repeat = reviewer.post(f"/reviews/{lease['id']}", json={"action": "reject", "reason": "x"})
    assert repeat.status_code == 200 and repeat.json()["action"] == "accept"  # one review stored
    done = _task(tenant.owner, lease["task"]["id"])
    assert done["status"] == "completed" and done["review"] == {"status": "accepted", "audit": "none"}

    # Correct: validated by the task type; a refused answer changes nothing.
    lease = _take_review(reviewer, pid)
    bad = reviewer.post(f"/reviews/{lease['id']}", json={"action": "correct", "answer": {"label": "purple"}})
    assert error_of(bad, 422)
    assert _task(tenant.owner, lease["task"]["id"])["status"] == "review"
    fixed = reviewer.post(f"/reviews/{lease['id']}", json={"action": "correct", "answer": {"label": "negative"}})
    assert fixed.status_code == 201, fixed.text
    corrected = _task(tenant.owner, lease["task"]["id"])
    assert corrected["response"] == {"label": "negative"} and corrected["method"] == "review"
    assert corrected["review"]["status"] == "corrected"

    # Reject: a reason is required; the answer stops counting and the task needs one more.
    lease = _take_review(reviewer, pid)
    assert field_of(reviewer.post(f"/reviews/{lease['id']}", json={"action": "reject"})) == "reason"
    assert field_of(reviewer.post(f"/reviews/{lease['id']}",
                                  json={"action": "reject", "reason": "no", "annotation": 999999})) == "annotation"
    sent_back = reviewer.post(f"/reviews/{lease['id']}", json={"action": "reject", "reason": "Sarcasm: negative"})
    assert sent_back.status_code == 201, sent_back.text
    reopened = _task(tenant.owner, lease["task"]["id"])
    assert (reopened["status"], reopened["n_annotations"], reopened["review"]["status"]) == ("pending", 0, "rejected")
    told = first.get(f"/projects/{pid}/rejections").json()
    assert [(r["task_id"], r["reason"]) for r in told] == [(lease["task"]["id"], "Sarcasm: negative")]
    assert tenant.annotators[1].get(f"/projects/{pid}/rejections").json() == []
    assert take_if_any(first, pid) is None  # never the same task twice
    second = tenant.annotators[1]
    again = take(second, pid)
    assert again["task"]["id"] == lease["task"]["id"]
    assert answer_label(second, again, "negative").status_code == 201
    assert take_if_any(second, pid) is None  # exactly one more annotation
    # Sent back once, so checked again; the rejected answer is not shown.
    lease = _take_review(reviewer, pid)
    assert [a["answer"] for a in lease["answers"]] == [{"label": "negative"}]
    assert reviewer.post(f"/reviews/{lease['id']}", json={"action": "accept"}).status_code == 201
    assert reviewer.post(f"/projects/{pid}/reviews").status_code == 204

    results = tenant.owner.get(f"/projects/{pid}/results").json()["items"]
    assert sorted(r["review"]["status"] for r in results) == ["accepted", "accepted", "corrected"]
    exported = [json.loads(line) for line in
                tenant.owner.get(f"/projects/{pid}/export", params={"format": "jsonl"}).text.splitlines()]
    assert sorted(r["review"]["status"] for r in exported) == ["accepted", "accepted", "corrected"]
    [twice] = [r for r in exported if len(r["annotations"]) == 2]
    assert [a.get("rejected", False) for a in twice["annotations"]] == [False, True]  # listed, marked
    report = tenant.owner.get(f"/projects/{pid}/quality").json()["review"]
    assert report["waiting"] == 0 and report["reviews"] == {"accept": 2, "correct": 1, "reject": 1}
    rates = {a["annotator"]: (a["reviewed"], a["pass_rate"]) for a in report["annotators"]}
    # The first annotator: one answer accepted, one corrected, one rejected; the second: accepted.
    assert sorted(rates.values()) == [(1, 1.0), (3, 0.3333)]


def test_who_may_review_and_what_is_stale(tenant: Tenant, rival: Tenant, reviewer: httpx.Client,
                                          server: LiveServer, database: Database) -> None:
    project = tenant.project(review={"share": 1})
    pid = project["id"]
    tenant.add_tasks(pid, _rows(2))
    assert _annotate_all(tenant.annotators[0], pid) == 2
    assert error_of(tenant.annotators[1].post(f"/projects/{pid}/reviews"), 403)  # not a reviewer
    assert error_of(rival.owner.post(f"/projects/{pid}/reviews"), 404)
    with make_reviewer(database, server.url, "globex-staff", role="member", org_id=rival.org_id) as outsider:
        assert error_of(outsider.post(f"/projects/{pid}/reviews"), 404)  # another tenant's reviewer
    with make_reviewer(database, server.url, "acme-staff", role="member", org_id=tenant.org_id) as staff:
        lease = _take_review(staff, pid)
        assert error_of(reviewer.post(f"/reviews/{lease['id']}", json={"action": "accept"}), 404)  # not theirs
        # Canceled under the lease: the review is stale.
        assert tenant.owner.post(f"/tasks/{lease['task']['id']}/cancel").status_code == 200
        stale = staff.post(f"/reviews/{lease['id']}", json={"action": "accept"})
        assert error_of(stale, 409)["code"] == "conflict"
    # Nobody reviews their own answers.
    with make_reviewer(database, server.url, "self-checker") as checker:
        own = tenant.project(review={"share": 1}, redundancy={"min": 1, "max": 1})
        tenant.add_tasks(own["id"], _rows(1))
        assert _annotate_all(checker, own["id"]) == 1
        assert checker.post(f"/projects/{own['id']}/reviews").status_code == 204
    for bad, field in (({"share": 2}, "review.share"), ({"colour": 1}, "review.colour"),
                       ({"reopen": "never"}, "review.reopen"), ({"probation": -1}, "review.probation")):
        assert field_of(tenant.owner.patch(f"/projects/{pid}", json={"review": bad})) == field
    assert tenant.owner.get(f"/projects/{pid}").json()["review"] == {"share": 1}


def test_the_policy_holds_low_confidence_and_disagreement_only(tenant: Tenant, reviewer: httpx.Client) -> None:
    project = tenant.project(redundancy={"min": 3, "max": 3}, review={"disagreement": True})
    pid = project["id"]
    tenant.add_tasks(pid, _rows(2))
    labels = {0: ["positive", "positive", "positive"], 1: ["positive", "negative", "positive"]}
    for n, worker in enumerate(tenant.annotators):
        while (lease := take_if_any(worker, pid)) is not None:
            index = int(lease["task"]["data"]["text"].split()[1])
            assert answer_label(worker, lease, labels[index][n]).status_code == 201
    tasks = {t["unique_id"]: t for t in tenant.owner.get(f"/projects/{pid}/tasks").json()["items"]}
    assert tasks["t0"]["status"] == "completed" and tasks["t0"]["review"]["status"] == "none"
    assert tasks["t1"]["status"] == "review"
    lease = _take_review(reviewer, pid)
    assert len(lease["answers"]) == 3
    # Which answers differ from the aggregated one: the dissenting "negative" only.
    assert [a["agrees"] for a in lease["answers"]] == [a["answer"] != {"label": "negative"} for a in lease["answers"]]
    assert [a["agrees"] for a in lease["answers"]].count(False) == 1
    unnamed = reviewer.post(f"/reviews/{lease['id']}", json={"action": "reject", "reason": "wrong"})
    assert field_of(unnamed) == "annotation"  # three answers: say which


def test_the_customer_audits_a_delivered_task(tenant: Tenant, rival: Tenant, database: Database) -> None:
    project = tenant.project()
    pid = project["id"]
    hook = tenant.owner.post(f"/projects/{pid}/webhooks", json={"url": "https://93.184.215.14/hook",
                                                                "events": ["task.audit_rejected"]})
    assert hook.status_code == 201, hook.text
    tenant.add_tasks(pid, _rows(2))
    pending = tenant.owner.get(f"/projects/{pid}/tasks").json()["items"][0]["id"]
    assert error_of(tenant.owner.post(f"/tasks/{pending}/audit", json={"accepted": True}), 409)
    assert _annotate_all(tenant.annotators[0], pid) == 2
    first, second = (t["id"] for t in tenant.owner.get(f"/projects/{pid}/tasks").json()["items"])
    assert error_of(rival.owner.post(f"/tasks/{first}/audit", json={"accepted": True}), 404)
    assert error_of(tenant.annotators[0].post(f"/tasks/{first}/audit", json={"accepted": True}), 403)
    ok = tenant.owner.post(f"/tasks/{first}/audit", json={"accepted": True})
    assert ok.status_code == 201 and ok.json()["review"] == {"status": "none", "audit": "accepted"}
    assert error_of(tenant.member.post(f"/tasks/{first}/audit", json={"accepted": False, "reason": "x"}), 409)
    assert field_of(tenant.member.post(f"/tasks/{second}/audit", json={"accepted": False})) == "reason"
    rejected = tenant.member.post(f"/tasks/{second}/audit", json={"accepted": False, "reason": "it is mixed"})
    assert rejected.status_code == 201, rejected.text
    body = rejected.json()
    assert (body["status"], body["required"], body["review"]["audit"]) == ("pending", 2, "rejected")
    with database.reader() as session:
        deliveries = session.scalars(select(Delivery).where(Delivery.project_id == pid)).all()
    assert [d.event for d in deliveries] == ["task.audit_rejected"]
    announced = deliveries[0].payload
    assert announced["audit"]["reason"] == "it is mixed" and announced["task"]["id"] == second
    # One more annotation, then delivered again; its earlier answer still counts.
    assert _annotate_all(tenant.annotators[1], pid, "mixed") == 1
    again = _task(tenant.owner, second)
    assert again["status"] == "completed" and again["n_annotations"] == 2
    report = tenant.owner.get(f"/projects/{pid}/quality").json()["review"]
    assert report["audits"] == {"accept": 1, "reject": 1}


def test_a_review_lease_is_renewed_only_by_its_reviewer_while_live(tenant: Tenant, reviewer: httpx.Client,
                                                                   server: LiveServer, database: Database) -> None:
    project = tenant.project(review={"share": 1})
    pid = project["id"]
    tenant.add_tasks(pid, _rows(1))
    assert _annotate_all(tenant.annotators[0], pid) == 1
    lease = _take_review(reviewer, pid)
    renewed = reviewer.post(f"/reviews/{lease['id']}/renew")
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["expires_at"] >= lease["expires_at"]
    with make_reviewer(database, server.url, "other") as other:
        assert error_of(other.post(f"/reviews/{lease['id']}/renew"), 404)
    assert tenant.owner.post(f"/tasks/{lease['task']['id']}/cancel").status_code == 200
    assert error_of(reviewer.post(f"/reviews/{lease['id']}/renew"), 409)["code"] == "conflict"


def test_probation_holds_an_annotators_first_answers_only(tenant: Tenant) -> None:
    project = tenant.project(review={"probation": 2})
    pid = project["id"]
    tenant.add_tasks(pid, _rows(4))
    assert _annotate_all(tenant.annotators[0], pid) == 4
    tasks = tenant.owner.get(f"/projects/{pid}/tasks").json()["items"]
    assert [t["status"] for t in tasks] == ["review", "review", "completed", "completed"]


def test_a_deactivated_reviewers_lease_goes_back_at_once(
        tenant: Tenant, reviewer: httpx.Client, admin: httpx.Client, server: LiveServer, database: Database) -> None:
    pid = tenant.project(review={"share": 1})["id"]
    tenant.add_tasks(pid, _rows(1))
    assert _annotate_all(tenant.annotators[0], pid) == 1
    lease = _take_review(reviewer, pid)
    with make_reviewer(database, server.url, "ravi") as second:
        assert second.post(f"/projects/{pid}/reviews").status_code == 204  # held by the first
        rita = reviewer.get("/me").json()["id"]
        done = admin.post(f"/users/{rita}/deactivate")
        assert done.status_code == 200, done.text
        assert done.json()["released_leases"] == 1
        taken = _take_review(second, pid)
        assert taken["task"]["id"] == lease["task"]["id"]  # not after the lease would have run out
        assert second.post(f"/reviews/{taken['id']}", json={"action": "accept"}).status_code == 201
