"""Batches: staging → in_progress → completed, paused, canceled; what each means for serving."""

from __future__ import annotations

import json
from typing import Any

import pytest

from qistas.db.enums import LeaseStatus, TaskStatus
from qistas.db.models import Assignment, Task
from qistas.domain.imports import CHUNK
from tests.api.conftest import World
from tests.api.helpers import count_tasks, error_of, field_of, nothing_left, stats, submit, take
from tests.factories import Tenant


def _batch(tenant: Tenant, pid: int, name: str, **fields: Any) -> dict[str, Any]:
    response = tenant.owner.post(f"/projects/{pid}/batches", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _act(tenant: Tenant, batch_id: int, action: str, status: int = 200) -> dict[str, Any]:
    response = tenant.owner.post(f"/batches/{batch_id}/{action}")
    assert response.status_code == status, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture
def project(world: World) -> int:
    return int(world.tenant.project(redundancy={"min": 1, "max": 1})["id"])


def test_create_read_and_list(world: World, project: int) -> None:
    tenant = world.tenant
    batch = _batch(tenant, project, "week 1", callback_url="https://93.184.215.14/qistas")
    assert batch == {"id": batch["id"], "project_id": project, "name": "week 1", "status": "staging",
                     "callback_url": "https://93.184.215.14/qistas", "counts": {},
                     "created_at": batch["created_at"]}
    assert tenant.member.get(f"/batches/{batch['id']}").json() == batch
    assert tenant.owner.get(f"/projects/{project}/batches").json() == {"items": [batch], "next": None}
    duplicate = tenant.owner.post(f"/projects/{project}/batches", json={"name": "week 1"})
    assert error_of(duplicate, 409)["details"] == {"field": "name"}
    error_of(tenant.owner.post(f"/projects/{project}/batches", json={"name": ""}), 422)
    error_of(tenant.owner.post(f"/projects/{project}/batches", json={"name": "   "}), 422)
    error_of(tenant.owner.post(f"/batches/{batch['id']}/explode"), 404)


def test_batches_are_listed_a_page_at_a_time_with_their_counts(world: World, project: int) -> None:
    tenant = world.tenant
    made = [_batch(tenant, project, f"day {n}") for n in range(5)]
    tenant.add_tasks(project, [{"data": {"text": f"{n}-{k}"}, "batch": f"day {n}"} for n in (1, 3) for k in range(n)])
    assert tenant.owner.post(f"/batches/{made[3]['id']}/cancel").status_code == 200
    whole = tenant.owner.get(f"/projects/{project}/batches", params={"limit": 1000}).json()
    assert whole["next"] is None
    assert [b["id"] for b in whole["items"]] == [b["id"] for b in made]
    assert [b["counts"] for b in whole["items"]] == [{}, {"pending": 1}, {}, {"canceled": 3}, {}]
    paged, after = [], None
    while True:
        page = tenant.owner.get(f"/projects/{project}/batches",
                                params={"limit": 2, **({"after": after} if after is not None else {})}).json()
        paged += page["items"]
        after = page["next"]
        if after is None:
            break
    assert paged == whole["items"]  # each batch once, with the counts read for its page
    for one in whole["items"]:
        assert tenant.owner.get(f"/batches/{one['id']}").json()["counts"] == one["counts"]
    assert field_of(tenant.owner.get(f"/projects/{project}/batches", params={"after": -1})) == "after"
    error_of(world.rival.owner.get(f"/projects/{project}/batches"), 404)


def test_staging_tasks_are_served_only_after_finalize(world: World, project: int) -> None:
    tenant, worker = world.tenant, world.tenant.annotators[0]
    batch = _batch(tenant, project, "staged")
    tenant.add_tasks(project, [{"data": {"text": "later"}, "batch": "staged"}])
    assert nothing_left(worker, project)
    assert _act(tenant, batch["id"], "finalize")["status"] == "in_progress"
    assert take(worker, project)["task"]["data"] == {"text": "later"}
    _act(tenant, batch["id"], "finalize", 409)


def test_unbatched_tasks_are_served_whatever_the_batches_do(world: World, project: int) -> None:
    tenant = world.tenant
    _batch(tenant, project, "staged")
    tenant.add_tasks(project, [{"data": {"text": "staged"}, "batch": "staged"}, {"data": {"text": "free"}}])
    assert take(tenant.annotators[0], project)["task"]["data"] == {"text": "free"}
    assert nothing_left(tenant.annotators[1], project)


def test_paused_batches_are_not_served(world: World, project: int) -> None:
    tenant, workers = world.tenant, world.tenant.annotators
    batch = _batch(tenant, project, "b")
    tenant.add_tasks(project, [{"data": {"text": "1"}, "batch": "b"}, {"data": {"text": "2"}, "batch": "b"}])
    _act(tenant, batch["id"], "finalize")
    held = take(workers[0], project)
    assert _act(tenant, batch["id"], "pause")["status"] == "paused"
    assert nothing_left(workers[1], project)
    _act(tenant, batch["id"], "pause", 409)
    # A lease taken before the pause may still be finished.
    submit(workers[0], held["id"], {"label": "positive"})
    assert tenant.owner.get(f"/batches/{batch['id']}").json()["status"] == "paused"
    assert _act(tenant, batch["id"], "resume")["status"] == "in_progress"
    assert take(workers[1], project)["task"]["data"] == {"text": "2"}
    _act(tenant, batch["id"], "resume", 409)


def test_cancel_cancels_pending_tasks_only(world: World, project: int) -> None:
    tenant, worker = world.tenant, world.tenant.annotators[0]
    batch = _batch(tenant, project, "b")
    tenant.add_tasks(project, [{"data": {"text": str(i)}, "batch": "b"} for i in range(3)])
    _act(tenant, batch["id"], "finalize")
    taken = take(worker, project)
    submit(worker, taken["id"], {"label": "negative"})
    canceled = _act(tenant, batch["id"], "cancel")
    assert canceled["status"] == "canceled"
    assert canceled["counts"] == {"completed": 1, "canceled": 2}
    assert stats(tenant.owner, project)["tasks"] == {"pending": 0, "review": 0, "completed": 1, "canceled": 2}
    assert nothing_left(world.tenant.annotators[1], project)
    for action in ("cancel", "finalize", "pause", "resume"):
        _act(tenant, batch["id"], action, 409)


def test_cancel_from_staging_and_paused(world: World, project: int) -> None:
    tenant = world.tenant
    staged = _batch(tenant, project, "s")
    paused = _batch(tenant, project, "p")
    tenant.add_tasks(project, [{"data": {"text": "s"}, "batch": "s"}, {"data": {"text": "p"}, "batch": "p"}])
    _act(tenant, paused["id"], "finalize")
    _act(tenant, paused["id"], "pause")
    assert _act(tenant, staged["id"], "cancel")["counts"] == {"canceled": 1}
    assert _act(tenant, paused["id"], "cancel")["counts"] == {"canceled": 1}


def test_a_batch_completes_when_its_tasks_complete(world: World, project: int) -> None:
    tenant, workers = world.tenant, world.tenant.annotators
    batch = _batch(tenant, project, "b")
    other = _batch(tenant, project, "other")
    tenant.add_tasks(project, [{"data": {"text": str(i)}, "batch": "b"} for i in range(2)])
    tenant.add_tasks(project, [{"data": {"text": "o"}, "batch": "other"}])
    _act(tenant, batch["id"], "finalize")
    first = take(workers[0], project)
    submit(workers[0], first["id"], {"label": "positive"})
    assert tenant.owner.get(f"/batches/{batch['id']}").json()["status"] == "in_progress"
    second = take(workers[1], project)
    submit(workers[1], second["id"], {"label": "mixed"})
    done = tenant.owner.get(f"/batches/{batch['id']}").json()
    assert done["status"] == "completed" and done["counts"] == {"completed": 2}
    assert tenant.owner.get(f"/batches/{other['id']}").json()["status"] == "staging"
    for action in ("finalize", "pause", "resume", "cancel"):
        _act(tenant, batch["id"], action, 409)


def test_an_empty_batch_does_not_complete_on_finalize(world: World, project: int) -> None:
    tenant = world.tenant
    batch = _batch(tenant, project, "empty")
    assert _act(tenant, batch["id"], "finalize")["status"] == "in_progress"
    tenant.add_tasks(project, [{"data": {"text": "late"}, "batch": "empty"}])
    taken = take(tenant.annotators[0], project)
    submit(tenant.annotators[0], taken["id"], {"label": "positive"})
    assert tenant.owner.get(f"/batches/{batch['id']}").json()["status"] == "completed"


def test_a_batch_finished_while_paused_completes_on_resume(world: World, project: int) -> None:
    tenant, worker = world.tenant, world.tenant.annotators[0]
    batch = _batch(tenant, project, "b")
    tenant.add_tasks(project, [{"data": {"text": "only"}, "batch": "b"}])
    _act(tenant, batch["id"], "finalize")
    held = take(worker, project)
    _act(tenant, batch["id"], "pause")
    submit(worker, held["id"], {"label": "positive"})
    assert _act(tenant, batch["id"], "resume")["status"] == "completed"


def test_a_lease_on_a_canceled_task_is_not_handed_back(world: World, project: int) -> None:
    tenant, worker = world.tenant, world.tenant.annotators[0]
    batch = _batch(tenant, project, "b")
    tenant.add_tasks(project, [{"data": {"text": "batched"}, "batch": "b"}])
    _act(tenant, batch["id"], "finalize")
    held = take(worker, project)
    _act(tenant, batch["id"], "cancel")
    error_of(worker.post(f"/assignments/{held['id']}/submit", json={"answer": {"label": "positive"}}), 409)
    tenant.add_tasks(project, [{"data": {"text": "free"}}])
    # Asking for work must not return the dead lease again and again: it ends, its slot given back.
    assert take(worker, project)["task"]["data"] == {"text": "free"}
    with world.database.reader() as session:
        lease = session.get(Assignment, held["id"])
        assert lease is not None and lease.status == LeaseStatus.EXPIRED
        task = session.get(Task, held["task"]["id"])
        assert task is not None and task.status == TaskStatus.CANCELED and task.n_claimed == 0


def _close(tenant: Tenant, project: int, batch: dict[str, Any], final: str) -> None:
    """Bring a batch of one task to ``completed`` (its task answered) or ``canceled``."""
    _act(tenant, batch["id"], "finalize")
    if final == "completed":
        submit(tenant.annotators[0], take(tenant.annotators[0], project)["id"], {"label": "positive"})
    else:
        _act(tenant, batch["id"], "cancel")
    assert tenant.owner.get(f"/batches/{batch['id']}").json()["status"] == final


@pytest.mark.parametrize("final", ["completed", "canceled"])
def test_no_task_is_added_to_a_completed_or_canceled_batch(world: World, project: int, final: str) -> None:
    tenant = world.tenant
    batch = _batch(tenant, project, "week 1")
    tenant.add_tasks(project, [{"data": {"text": "first"}, "batch": "week 1"}])
    _close(tenant, project, batch, final)
    before = count_tasks(world.database, project)
    rows = [{"data": {"text": "free"}}, {"data": {"text": "late"}, "batch": "week 1"},
            {"data": {"text": "later"}, "batch": "week 1", "unique_id": "later"}]
    error = error_of(tenant.owner.post(f"/projects/{project}/tasks", json=rows), 409)
    assert error["code"] == "conflict"
    assert error["message"] == (f"batch 'week 1' is {final}: no task can be added to a completed or canceled "
                                "batch; nothing was imported")
    refused = f"batch 'week 1' is {final}"
    assert error["details"] == {"field": "batch", "batch": "week 1", "status": final, "invalid": 2, "total": 3,
                                "rows": [{"row": 2, "message": refused}, {"row": 3, "message": refused}]}
    csv = tenant.owner.post(f"/projects/{project}/tasks", content="text,batch\nlate,week 1\n",
                            headers={"content-type": "text/csv"})
    assert error_of(csv, 409)["details"]["rows"] == [{"row": 1, "message": refused}]
    assert count_tasks(world.database, project) == before
    assert tenant.owner.get(f"/batches/{batch['id']}").json()["status"] == final


def test_nothing_is_written_when_the_closed_batch_comes_after_a_full_chunk(world: World, project: int) -> None:
    tenant = world.tenant
    batch = _batch(tenant, project, "done")
    tenant.add_tasks(project, [{"data": {"text": "only"}, "batch": "done"}])
    _close(tenant, project, batch, "canceled")
    before = count_tasks(world.database, project)
    lines = [json.dumps({"data": {"text": f"row {i}"}}) for i in range(CHUNK + 5)]
    lines.append(json.dumps({"data": {"text": "late"}, "batch": "done"}))
    response = tenant.owner.post(f"/projects/{project}/tasks", content="\n".join(lines),
                                 headers={"content-type": "application/x-ndjson"})
    assert error_of(response, 409)["details"]["rows"] == [{"row": CHUNK + 6, "message": "batch 'done' is canceled"}]
    assert count_tasks(world.database, project) == before


def test_an_invalid_row_beside_a_closed_batch_is_422_listing_both(world: World, project: int) -> None:
    """The import is refused as invalid while any row is; the closed batch is one of the rows listed."""
    tenant = world.tenant
    batch = _batch(tenant, project, "done")
    tenant.add_tasks(project, [{"data": {"text": "only"}, "batch": "done"}])
    _close(tenant, project, batch, "completed")
    rows = [{"data": {"text": "late"}, "batch": "done"}, {"data": {"txt": "typo"}}]
    error = error_of(tenant.owner.post(f"/projects/{project}/tasks", json=rows), 422)
    assert [r["row"] for r in error["details"]["rows"]] == [1, 2]
    assert error["details"]["rows"][0]["message"] == "batch 'done' is completed"


def test_staging_in_progress_and_paused_batches_take_tasks(world: World, project: int) -> None:
    tenant = world.tenant
    for name, moves in (("staged", ()), ("running", ("finalize",)), ("held", ("finalize", "pause"))):
        batch = _batch(tenant, project, name)
        for move in moves:
            _act(tenant, batch["id"], move)
        assert tenant.add_tasks(project, [{"data": {"text": name}, "batch": name}])["created"] == 1
        assert tenant.owner.get(f"/batches/{batch['id']}").json()["counts"] == {"pending": 1}
