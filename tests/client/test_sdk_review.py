"""The review stage from the SDK, against a real server: the policy, reviewers' leases and
verdicts, an annotator's rejections, the customer's audit, and what results then say."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from qistas.client import (
    Client,
    Conflict,
    Forbidden,
    Invalid,
    Rejection,
    Review,
    ReviewedAnswer,
    ReviewLease,
    ReviewPolicy,
    ReviewState,
)
from qistas.db.engine import Database
from tests.conftest import LiveServer
from tests.factories import CLASSIFICATION, Tenant, label_everything, new_user


def token_of(client: httpx.Client) -> str:
    return client.headers["Authorization"].split()[1]


@pytest.fixture
def sdk(server: LiveServer, tenant: Tenant) -> Iterator[Client]:
    with Client(server.url, token_of(tenant.owner), backoff=0.01) as client:
        yield client


@pytest.fixture
def reviewer(server: LiveServer, database: Database) -> Iterator[Client]:
    _, token = new_user(database, email="rita@review.test", role="annotator", is_reviewer=True)
    with Client(server.url, token, backoff=0.01) as client:
        yield client


def test_the_review_policy_is_set_and_read(sdk: Client) -> None:
    project = sdk.projects.create(name="checked", task=CLASSIFICATION, review=ReviewPolicy(share=0.2))
    assert project.review == ReviewPolicy(share=0.2)
    assert sdk.projects.create(name="plain", task=CLASSIFICATION).review == ReviewPolicy()  # no review stage
    changed = project.update(review=ReviewPolicy(below_confidence=0.9, disagreement=True, reopen="review"))
    assert changed.review == ReviewPolicy(below_confidence=0.9, disagreement=True, reopen="review")
    assert sdk.projects.get(project.id).review.reopen == "review"
    assert sdk.projects.update(project.id, review={"probation": 5}).review == ReviewPolicy(probation=5)
    with pytest.raises(Invalid) as refused:
        project.update(review=ReviewPolicy(share=2))
    assert refused.value.details["field"] == "review.share"
    assert sdk.projects.get(project.id).review == ReviewPolicy(probation=5)  # a refused change changes nothing


def test_reviewers_judge_annotators_learn_and_the_customer_audits(
        sdk: Client, reviewer: Client, tenant: Tenant, server: LiveServer) -> None:
    project = sdk.projects.create(name="reviewed", task=CLASSIFICATION, redundancy={"min": 2, "max": 2},
                                  review=ReviewPolicy(share=1, reopen="review"))
    project.tasks.add([{"data": {"text": f"t{i}"}, "unique_id": f"u{i}"} for i in range(3)])
    assert label_everything(tenant, project.id, {"label": "positive"}, workers=2) == 6
    assert list(project.results()) == []  # all held for review
    with Client(server.url, token_of(tenant.annotators[2])) as outsider, pytest.raises(Forbidden):
        outsider.reviews.take(project.id)  # not a reviewer

    lease = reviewer.reviews.take(project.id)
    assert isinstance(lease, ReviewLease) and lease.project_id == project.id
    assert lease.response == {"label": "positive"} and set(lease.task) == {"id", "data"}
    assert [type(a) for a in lease.answers] == [ReviewedAnswer, ReviewedAnswer]
    assert reviewer.reviews.take(project.id) == lease  # held: the same lease back
    kept = reviewer.reviews.renew(lease.id)
    assert kept.id == lease.id and kept.expires_at is not None and kept.expires_at >= lease.expires_at
    accepted = reviewer.reviews.accept(lease.id)
    assert isinstance(accepted, Review) and (accepted.stage, accepted.action, accepted.task_id) == (
        "review", "accept", lease.task["id"])
    assert reviewer.reviews.reject(lease.id, "too late") == accepted  # a repeat: the stored review

    lease = reviewer.reviews.take(project.id)
    assert lease is not None
    with pytest.raises(Invalid) as refused:
        reviewer.reviews.correct(lease.id, {"label": "purple"})
    assert refused.value.details["field"] == "answer.label"
    corrected = reviewer.reviews.correct(lease.id, {"label": "negative"})
    assert (corrected.action, corrected.answer) == ("correct", {"label": "negative"})

    lease = reviewer.reviews.take(project.id)
    assert lease is not None
    with pytest.raises(Invalid) as refused:
        reviewer.reviews.reject(lease.id, "sarcasm")  # two answers: say which
    assert refused.value.details["field"] == "annotation"
    wrong = lease.answers[1]
    rejected = reviewer.reviews.reject(lease.id, "Sarcasm reads negative", annotation=wrong.id)
    assert (rejected.action, rejected.annotation, rejected.reason) == ("reject", wrong.id, "Sarcasm reads negative")
    assert reviewer.reviews.take(project.id) is None  # the task waits for one more annotation
    assert reviewer.reviews.accept(lease.id) == rejected  # a retry with another verdict: the first stays
    told: list[Rejection] = []
    for worker in tenant.annotators[:2]:
        with Client(server.url, token_of(worker)) as annotator:
            told += annotator.reviews.rejections(project.id)
    assert [(r.annotation, r.task_id, r.reason, r.answer) for r in told] == [
        (wrong.id, lease.task["id"], "Sarcasm reads negative", {"label": "positive"})]

    label_everything(tenant, project.id, {"label": "negative"}, workers=3)
    lease = reviewer.reviews.take(project.id)
    assert lease is not None and len(lease.answers) == 2  # the rejected answer is not shown
    reviewer.reviews.accept(lease.id)
    assert reviewer.reviews.take(project.id) is None

    results = {r.unique_id: r for r in project.results()}
    assert sorted(r.review.status for r in results.values()) == ["accepted", "accepted", "corrected"]
    assert all(r.review.audit == "none" for r in results.values())
    # The customer's audit: accept one; reject another, which goes straight back to a reviewer.
    first, second = (r.task_id for r in sorted(results.values(), key=lambda r: r.task_id)[:2])
    assert sdk.reviews.audit(first, accepted=True)["review"]["audit"] == "accepted"
    with pytest.raises(Conflict):
        sdk.reviews.audit(first, accepted=False, reason="on second thought")
    with pytest.raises(Invalid) as refused:
        sdk.reviews.audit(second, accepted=False)
    assert refused.value.details["field"] == "reason"
    hook = sdk.webhooks.create(project.id, "https://93.184.215.14/hook", ["task.audit_rejected"])
    rejected_result = results[next(u for u, r in results.items() if r.task_id == second)].response
    reopened = sdk.reviews.audit(second, accepted=False, reason="these are mixed")
    assert (reopened["status"], reopened["review"]["audit"]) == ("review", "rejected")
    [announced] = sdk.webhooks.deliveries(project.id, hook.id)
    assert announced.event == "task.audit_rejected"
    # The task as it was audited: the rejected result, still completed.
    assert (announced.payload["task"]["id"], announced.payload["task"]["status"],
            announced.payload["task"]["response"]) == (second, "completed", rejected_result)
    again = reviewer.reviews.take(project.id)
    assert again is not None and again.task["id"] == second
    reviewer.reviews.correct(again.id, {"label": "mixed"})
    result = next(r for r in project.results() if r.task_id == second)
    assert (result.response, result.method, result.review) == (
        {"label": "mixed"}, "review", ReviewState(status="corrected", audit="rejected"))
