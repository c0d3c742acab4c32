"""Leases: skip and expiry free the slot, stale submits store nothing, repeats store once."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import update

from qistas.db.models import Assignment
from qistas.db.types import utcnow
from tests.api.conftest import World
from tests.api.helpers import count_annotations, error_of, field_of, nothing_left, stats, submit, take

POSITIVE = {"label": "positive"}


def _expire(world: World, assignment_id: int, at: datetime | None = None) -> None:
    """Move a lease's end into the past, as if its TTL had run out."""
    with world.database.writer.begin() as session:
        session.execute(update(Assignment).where(Assignment.id == assignment_id)
                        .values(expires_at=at or utcnow() - timedelta(seconds=1)))


@pytest.fixture
def project(world: World) -> int:
    pid = int(world.tenant.project(redundancy={"min": 1, "max": 1})["id"])
    world.tenant.add_tasks(pid, [{"data": {"text": "only"}, "unique_id": "only"}])
    return pid


def test_take_returns_a_lease(world: World, project: int) -> None:
    before = utcnow()
    taken = take(world.tenant.annotators[0], project)
    expires = datetime.fromisoformat(taken["expires_at"])
    lease = timedelta(seconds=world.settings.lease_seconds)
    assert before + lease - timedelta(seconds=5) <= expires <= utcnow() + lease
    # Asking again while the lease is live gives the same lease, not a second task.
    world.tenant.add_tasks(project, [{"data": {"text": "second"}}])
    assert take(world.tenant.annotators[0], project) == taken


def test_skip_frees_the_slot_and_the_task_never_comes_back(world: World, project: int) -> None:
    a, b, c = world.tenant.annotators
    first = take(a, project)
    assert nothing_left(b, project)
    assert a.post(f"/assignments/{first['id']}/skip").status_code == 204
    assert a.post(f"/assignments/{first['id']}/skip").status_code == 204  # repeat is harmless
    assert nothing_left(a, project)
    second = take(b, project)
    assert second["task"] == first["task"]
    assert b.post(f"/assignments/{second['id']}/skip").status_code == 204
    assert nothing_left(a, project) and nothing_left(b, project)
    third = take(c, project)
    submit(c, third["id"], POSITIVE)
    error_of(a.post(f"/assignments/{first['id']}/submit", json={"answer": POSITIVE}), 409)
    assert count_annotations(world.database, project) == 1


def test_expiry_frees_the_slot(world: World, project: int) -> None:
    a, b, _ = world.tenant.annotators
    first = take(a, project)
    assert stats(world.tenant.owner, project)["active_leases"] == 1
    _expire(world, first["id"])
    assert stats(world.tenant.owner, project)["active_leases"] == 0
    second = take(b, project)
    assert second["task"] == first["task"]
    assert nothing_left(a, project)  # the expired lease still counts as "seen"
    response = a.post(f"/assignments/{first['id']}/submit", json={"answer": POSITIVE})
    assert "expired" in error_of(response, 409)["message"]
    error_of(a.post(f"/assignments/{first['id']}/renew"), 409)
    error_of(a.post(f"/assignments/{first['id']}/skip"), 409)
    assert count_annotations(world.database, project) == 0
    submit(b, second["id"], POSITIVE)
    assert count_annotations(world.database, project) == 1


def test_an_expired_lease_not_yet_swept_stores_nothing(world: World, project: int) -> None:
    a = world.tenant.annotators[0]
    taken = take(a, project)
    _expire(world, taken["id"])
    error_of(a.post(f"/assignments/{taken['id']}/submit", json={"answer": POSITIVE}), 409)
    error_of(a.post(f"/assignments/{taken['id']}/renew"), 409)
    assert count_annotations(world.database, project) == 0
    assert stats(world.tenant.owner, project)["tasks"]["pending"] == 1
    assert nothing_left(a, project)
    assert take(world.tenant.annotators[1], project)["task"] == taken["task"]


def test_submitting_twice_stores_one_annotation(world: World, project: int) -> None:
    a = world.tenant.annotators[0]
    taken = take(a, project)
    first = submit(a, taken["id"], POSITIVE, seconds=4.5)
    again = submit(a, taken["id"], POSITIVE, status=200, seconds=4.5)
    assert again.json() == first.json()
    assert first.json()["seconds"] == 4.5 and first.json()["task_id"] == taken["task"]["id"]
    # Even a different answer on the retry returns the first one and stores nothing.
    other = submit(a, taken["id"], {"label": "negative"}, status=200)
    assert other.json()["answer"] == POSITIVE and other.json()["id"] == first.json()["id"]
    assert count_annotations(world.database, project) == 1
    error_of(a.post(f"/assignments/{taken['id']}/skip"), 409)
    error_of(a.post(f"/assignments/{taken['id']}/renew"), 409)


def test_seconds_is_validated(world: World, project: int) -> None:
    a = world.tenant.annotators[0]
    taken = take(a, project)
    for seconds in (-1, 10**9):
        response = a.post(f"/assignments/{taken['id']}/submit", json={"answer": POSITIVE, "seconds": seconds})
        assert field_of(response) == "seconds"
    assert field_of(a.post(f"/assignments/{taken['id']}/submit", json={"answer": POSITIVE, "spent": 1})) == "spent"
    assert field_of(a.post(f"/assignments/{taken['id']}/submit", json={})) == "answer"
    assert count_annotations(world.database, project) == 0
    submit(a, taken["id"], POSITIVE, seconds=0)


def test_renew_extends_the_lease(world: World, project: int) -> None:
    a = world.tenant.annotators[0]
    taken = take(a, project)
    soon = utcnow() + timedelta(seconds=5)
    _expire(world, taken["id"], at=soon)
    renewed = a.post(f"/assignments/{taken['id']}/renew")
    assert renewed.status_code == 200, renewed.text
    expires = datetime.fromisoformat(renewed.json()["expires_at"])
    assert expires >= soon + timedelta(seconds=world.settings.lease_seconds - 10)
    assert renewed.json()["id"] == taken["id"] and renewed.json()["task"] == taken["task"]
    submit(a, taken["id"], POSITIVE)


def test_a_completed_task_is_not_served_and_an_annotator_gets_each_task_once(world: World) -> None:
    tenant = world.tenant
    pid = tenant.project(redundancy={"min": 2, "max": 2})["id"]
    tenant.add_tasks(pid, [{"data": {"text": str(i)}} for i in range(3)])
    a, b, c = tenant.annotators
    seen = []
    while not nothing_left(a, pid):
        taken = take(a, pid)
        seen.append(taken["task"]["id"])
        submit(a, taken["id"], POSITIVE)
    assert len(seen) == 3 == len(set(seen))
    for worker in (b, c):
        while not nothing_left(worker, pid):
            submit(worker, take(worker, pid)["id"], POSITIVE)
    assert count_annotations(world.database, pid) == 6
    assert stats(tenant.owner, pid)["tasks"]["completed"] == 3
    assert nothing_left(tenant.inhouse, pid)


def test_started_tasks_are_finished_first_then_import_order(world: World) -> None:
    tenant = world.tenant
    pid = tenant.project(redundancy={"min": 2, "max": 2})["id"]
    tenant.add_tasks(pid, [{"data": {"text": str(i)}} for i in range(4)])
    a, b, c = tenant.annotators
    order = []
    for _ in range(2):
        taken = take(a, pid)
        order.append(taken["task"]["data"]["text"])
        submit(a, taken["id"], POSITIVE)
    assert order == ["0", "1"]
    assert take(b, pid)["task"]["data"] == {"text": "0"}
    assert take(c, pid)["task"]["data"] == {"text": "1"}
    assert take(tenant.inhouse, pid)["task"]["data"] == {"text": "2"}
