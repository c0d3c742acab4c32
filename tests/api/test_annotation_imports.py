"""Answers made elsewhere: imported all or nothing, counted like anyone's, re-scored by a refit."""

from __future__ import annotations

import json
from typing import Any

from tests.api.conftest import World
from tests.api.helpers import count_annotations, error_of, take

BOXES = {"type": "boxes", "labels": ["car", "cat"], "image_field": "image"}


def _project(world: World, task: dict[str, Any] | None = None, **fields: Any) -> int:
    return int(world.tenant.project(task, **fields)["id"])


def _import(world: World, pid: int, rows: list[dict[str, Any]], status: int = 201) -> Any:
    response = world.tenant.owner.post(f"/projects/{pid}/annotations", json=rows)
    assert response.status_code == status, response.text
    return response.json()


def _task(world: World, pid: int, unique_id: str) -> dict[str, Any]:
    items = world.tenant.owner.get(f"/projects/{pid}/tasks", params={"limit": 1000}).json()["items"]
    return next(t for t in items if t["unique_id"] == unique_id)


def test_imported_answers_complete_tasks_through_the_type_aggregator(world: World) -> None:
    pid = _project(world, BOXES, redundancy={"min": 2, "max": 2})
    world.tenant.add_tasks(pid, [{"unique_id": f"img{i}", "data": {"image": f"{i}.png"}} for i in range(3)])
    rows = [
        {"task": "img0", "annotator": "vendor-7", "answer": {"boxes": [{"x": 10, "y": 10, "w": 100, "h": 50,
                                                                      "label": "car"}]}},
        {"task": "img0", "annotator": "vendor-9", "answer": {"boxes": [{"x": 12, "y": 11, "w": 98, "h": 50,
                                                                      "label": "car"}]}, "seconds": 4.5},
        {"task": "img1", "annotator": "vendor-7", "answer": {"boxes": []}},
    ]
    assert _import(world, pid, rows) == {"created": 3}
    done = _task(world, pid, "img0")
    assert done["status"] == "completed" and done["n_annotations"] == 2
    # Two nearly equal boxes are one box, not a split vote.
    assert len(done["response"]["boxes"]) == 1 and done["response"]["boxes"][0]["label"] == "car"
    assert done["confidence"] > 0.5
    pending = _task(world, pid, "img1")
    assert pending["status"] == "pending" and pending["n_annotations"] == 1
    # The outside annotators are pseudonymous people of the organization, like anyone.
    export = world.tenant.owner.get(f"/projects/{pid}/export", params={"format": "jsonl"}).text.splitlines()
    first = json.loads(export[0])
    names = {a["annotator"] for a in first["annotations"]}
    assert len(names) == 2 and not any("vendor" in n for n in names)


def test_imports_are_not_limited_by_max_and_keep_invariant_one(world: World) -> None:
    pid = _project(world, redundancy={"min": 1, "max": 1})
    world.tenant.add_tasks(pid, [{"unique_id": "t", "data": {"text": "x"}}])
    _import(world, pid, [{"task": "t", "annotator": f"w{i}", "answer": {"label": "positive"}} for i in range(4)])
    task = _task(world, pid, "t")
    assert task["n_annotations"] == 4 and task["required"] >= 4 and task["status"] == "completed"


def test_any_invalid_row_refuses_the_import_and_names_every_row(world: World) -> None:
    pid = _project(world, BOXES)
    world.tenant.add_tasks(pid, [{"unique_id": "img", "data": {"image": "a.png", "width": 50, "height": 50}}])
    good = {"task": "img", "annotator": "a", "answer": {"boxes": []}}
    rows = [
        good,
        {"task": "nope", "annotator": "a", "answer": {"boxes": []}},
        {"task": "img", "annotator": "b", "answer": {"boxes": [{"x": 40, "y": 0, "w": 20, "h": 5, "label": "car"}]}},
        {"task": "img", "annotator": "a", "answer": {"boxes": []}},
        {"task": "img", "annotator": "c", "answer": {"boxes": []}, "who": 1},
        {"task": "img", "annotator": "", "answer": {"boxes": []}},
        {"task": "img", "annotator": "d"},
    ]
    error = error_of(world.tenant.owner.post(f"/projects/{pid}/annotations", json=rows), 422)
    by_row = {r["row"]: r["message"] for r in error["details"]["rows"]}
    assert set(by_row) == {2, 3, 4, 5, 6, 7}, by_row
    assert "unknown task" in by_row[2] and "answer.boxes.0.w" in by_row[3] and "already answered" in by_row[4]
    assert "'who'" in by_row[5] and "annotator" in by_row[6] and "answer is missing" in by_row[7]
    assert count_annotations(world.database, pid) == 0
    # The same annotator answering a task twice across imports is refused too.
    _import(world, pid, [good])
    error = error_of(world.tenant.owner.post(f"/projects/{pid}/annotations", json=[good]), 422)
    assert "already answered" in error["details"]["rows"][0]["message"]
    assert count_annotations(world.database, pid) == 1


def test_jsonl_upload_another_tenant_gets_404_and_annotators_403(world: World) -> None:
    pid = _project(world)
    world.tenant.add_tasks(pid, [{"unique_id": "u1", "data": {"text": "x"}}])
    rows = [{"task": "u1", "annotator": f"p{i}", "answer": {"label": "positive"}} for i in range(2)]
    body = "\n".join(json.dumps(row) for row in rows)
    response = world.tenant.owner.post(f"/projects/{pid}/annotations", content=body.encode(),
                                       headers={"content-type": "application/x-ndjson"})
    assert response.status_code == 201 and response.json() == {"created": 2}
    error_of(world.rival.owner.post(f"/projects/{pid}/annotations", json=[]), 404)
    error_of(world.tenant.annotators[0].post(f"/projects/{pid}/annotations", json=[]), 403)


def test_an_imported_answer_and_a_live_lease_share_the_task(world: World) -> None:
    pid = _project(world, redundancy={"min": 2, "max": 2})
    world.tenant.add_tasks(pid, [{"unique_id": "t", "data": {"text": "x"}}])
    held = take(world.tenant.annotators[0], pid)
    _import(world, pid, [{"task": "t", "annotator": "old", "answer": {"label": "positive"}}])
    assert _task(world, pid, "t")["status"] == "pending"
    submitted = world.tenant.annotators[0].post(f"/assignments/{held['id']}/submit",
                                                json={"answer": {"label": "positive"}})
    assert submitted.status_code == 201, submitted.text
    task = _task(world, pid, "t")
    assert task["status"] == "completed" and task["n_annotations"] == 2
