"""Exports carry every task with its result and pseudonymous annotations; reads are audited."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from sqlalchemy import select

from qistas.db.models import AuditEvent
from tests.api.conftest import World
from tests.api.helpers import error_of, field_of, submit, take

ARABIC = "الخدمة ممتازة 👍🏽 لكن التوصيل بطيء (Windows 10)"
FORMULAS = ["=HYPERLINK(\"http://evil\")", "+1+1", "-2", "@SUM(A1)"]


@pytest.fixture(scope="module")
def exported(world: World) -> dict[str, Any]:
    """Tasks with formulas for ids, an Arabic text, two answers each on the completed ones."""
    tenant = world.tenant
    project = tenant.project(name="export", redundancy={"min": 2, "max": 2})
    pid = project["id"]
    assert tenant.owner.post(f"/projects/{pid}/batches", json={"name": "=batch"}).status_code == 201
    rows = [{"data": {"text": ARABIC, "n": 1}, "unique_id": "ar", "metadata": {"source": "تطبيق"}}]
    rows += [{"data": {"text": f"text {i}"}, "unique_id": uid} for i, uid in enumerate(FORMULAS)]
    rows += [{"data": {"text": "=1+2"}, "unique_id": "pending", "batch": "=batch"}]
    tenant.add_tasks(pid, rows)
    a, b, _ = tenant.annotators
    for worker, seconds in ((a, 3.0), (b, 7.5)):
        for _ in range(len(FORMULAS) + 1):
            taken = take(worker, pid)
            submit(worker, taken["id"], {"label": "positive"}, seconds=seconds)
    return {"pid": pid, "rows": rows}


def _jsonl(world: World, pid: int) -> list[dict[str, Any]]:
    response = world.tenant.owner.get(f"/projects/{pid}/export", params={"format": "jsonl"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert response.headers["content-disposition"] == f'attachment; filename="project-{pid}.jsonl"'
    assert "\\u" not in response.text  # non-ASCII text as it is (Arabic readable in the file), not escaped
    return [json.loads(line) for line in response.text.splitlines()]


def _csv(world: World, pid: int) -> tuple[list[str], list[dict[str, str]]]:
    response = world.tenant.owner.get(f"/projects/{pid}/export", params={"format": "csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == f'attachment; filename="project-{pid}.csv"'
    reader = csv.DictReader(io.StringIO(response.content.decode("utf-8")))
    return list(reader.fieldnames or []), list(reader)


def test_jsonl_export_has_every_task_with_results_and_annotations(world: World, exported: dict[str, Any]) -> None:
    records = _jsonl(world, exported["pid"])
    assert [r["unique_id"] for r in records] == [r["unique_id"] for r in exported["rows"]]
    assert [r["data"] for r in records] == [r["data"] for r in exported["rows"]]
    assert records[0]["data"]["text"] == ARABIC and records[0]["metadata"] == {"source": "تطبيق"}
    results = {r["task_id"]: r for r in world.tenant.owner.get(f"/projects/{exported['pid']}/results").json()["items"]}
    names = set()
    for record in records[:-1]:
        assert set(record) == {"task_id", "unique_id", "batch", "status", "data", "metadata", "response",
                               "confidence", "method", "needs_review", "details", "annotations", "provenance",
                                   "completed_at", "review", "predictions"}
        result = results[record["task_id"]]
        assert (record["status"], record["response"], record["confidence"], record["method"]) == \
            ("completed", {"label": "positive"}, result["confidence"], result["method"])
        assert 0.5 < record["confidence"] <= 1.0
        assert [(a["answer"], a["seconds"]) for a in record["annotations"]] == \
            [({"label": "positive"}, 3.0), ({"label": "positive"}, 7.5)]
        assert all(set(a) == {"annotator", "answer", "seconds", "created_at", "source"} for a in record["annotations"])
        assert {a["source"] for a in record["annotations"]} == {"human"}
        names.add(tuple(a["annotator"] for a in record["annotations"]))
    # Each annotator has one stable pseudonym, which is neither their email nor their id.
    assert len(names) == 1
    first, second = names.pop()
    assert first != second and first.startswith("annotator-")
    assert "crowd" not in first and str(world.tenant.annotator_ids[0]) != first.removeprefix("annotator-")
    pending = records[-1]
    assert (pending["status"], pending["response"], pending["annotations"], pending["batch"]) == \
        ("pending", None, [], "=batch")


def test_pseudonyms_differ_between_customers(world: World, exported: dict[str, Any]) -> None:
    ours = _jsonl(world, exported["pid"])[0]["annotations"][0]["annotator"]
    rival = world.rival
    pid = rival.project()["id"]
    rival.add_tasks(pid, [{"data": {"text": "x"}}])
    worker = world.tenant.annotators[0]  # the same person works for both
    submit(worker, take(worker, pid)["id"], {"label": "mixed"})
    theirs = rival.owner.get(f"/projects/{pid}/export").text
    assert json.loads(theirs)["annotations"][0]["annotator"] != ours
    assert ours not in theirs


def test_pseudonyms_differ_between_projects_of_one_customer(world: World, exported: dict[str, Any]) -> None:
    worker = world.tenant.annotators[0]
    first = [a["annotator"] for record in _jsonl(world, exported["pid"]) for a in record["annotations"]]
    pid = world.tenant.project()["id"]
    world.tenant.add_tasks(pid, [{"data": {"text": "x"}}])
    lease = take(worker, pid)
    submit(worker, lease["id"], {"label": "mixed"})
    [record] = [r for r in _jsonl(world, pid) if r["annotations"]]
    [name] = [a["annotator"] for a in record["annotations"]]
    # The same person, in another project of the same organization: a name of that project only.
    assert name.startswith("annotator-") and name not in first
    task = world.tenant.owner.get(f"/tasks/{lease['task']['id']}").json()
    assert [a["annotator"] for a in task["annotations"]] == [name]
    events = world.tenant.owner.get("/audit", params={"object_type": "task", "object_id": lease["task"]["id"]}).json()
    assert {e["actor"] for e in events["items"] if e["action"] in ("task.take", "annotation.create")} == {name}


def test_csv_export_is_spreadsheet_safe_and_keeps_arabic(world: World, exported: dict[str, Any]) -> None:
    columns, rows = _csv(world, exported["pid"])
    assert columns == ["task_id", "unique_id", "batch", "status", "data", "metadata", "response", "confidence",
                       "method", "needs_review", "details", "annotations", "annotators", "agreement",
                       "completed_at", "review_status", "audit_status", "predictions"]
    assert len(rows) == len(exported["rows"])
    assert json.loads(rows[0]["data"]) == {"text": ARABIC, "n": 1}
    assert ARABIC in rows[0]["data"]
    assert json.loads(rows[0]["metadata"]) == {"source": "تطبيق"}
    assert [r["unique_id"] for r in rows[1:5]] == ["'" + f for f in FORMULAS]
    assert rows[-1]["batch"] == "'=batch"
    assert json.loads(rows[-1]["data"]) == {"text": "=1+2"}
    for row in rows:
        for cell in row.values():
            assert not cell or cell[0] not in "=+-@", row
    completed = rows[1]
    result = world.tenant.owner.get(f"/projects/{exported['pid']}/results").json()["items"][1]
    assert result["task_id"] == int(completed["task_id"])
    assert (json.loads(completed["response"]), float(completed["confidence"]), completed["method"],
            completed["status"]) == ({"label": "positive"}, result["confidence"], result["method"], "completed")
    annotations = json.loads(completed["annotations"])
    assert [(a["answer"], a["seconds"]) for a in annotations] == [({"label": "positive"}, 3.0),
                                                                  ({"label": "positive"}, 7.5)]
    assert rows[-1]["response"] == "" and json.loads(rows[-1]["annotations"]) == []


def test_export_format_is_checked(world: World, exported: dict[str, Any]) -> None:
    assert field_of(world.tenant.owner.get(f"/projects/{exported['pid']}/export", params={"format": "xlsx"})) == \
        "format"


def test_empty_project_exports(world: World) -> None:
    pid = world.tenant.project()["id"]
    assert world.tenant.owner.get(f"/projects/{pid}/export").content == b""
    assert world.tenant.owner.get(f"/projects/{pid}/export", params={"format": "csv"}).text.splitlines() == \
        ["task_id,unique_id,batch,status,data,metadata,response,confidence,method,needs_review,details,annotations,"
         "annotators,agreement,completed_at,review_status,audit_status,predictions"]


def test_results_and_task_reads(world: World, exported: dict[str, Any]) -> None:
    owner, pid = world.tenant.owner, exported["pid"]
    results = owner.get(f"/projects/{pid}/results").json()
    assert [r["unique_id"] for r in results["items"]] == ["ar", *FORMULAS]
    assert results["next"] is None
    task = owner.get(f"/tasks/{results['items'][0]['task_id']}").json()
    assert task["data"]["text"] == ARABIC and task["status"] == "completed"
    assert [a["answer"] for a in task["annotations"]] == [{"label": "positive"}] * 2
    assert all(a["annotator"].startswith("annotator-") for a in task["annotations"])


def test_stats(world: World, exported: dict[str, Any]) -> None:
    body = world.tenant.member.get(f"/projects/{exported['pid']}/stats").json()
    assert body == {
        "tasks": {"pending": 1, "review": 0, "completed": 5, "canceled": 0}, "tasks_total": 6, "below_target": 0,
        "annotations": 10, "annotators": 2, "active_leases": 0,
        "throughput": {"annotations_last_hour": 10, "annotations_last_day": 10},
    }


NO_FILTERS = {"completed": False, "min_confidence": None, "batch": None, "since": None}


def test_reads_of_customer_data_are_audited(world: World) -> None:
    tenant = world.tenant
    pid = tenant.project()["id"]
    tenant.add_tasks(pid, [{"data": {"text": "audited"}}])
    task_id = tenant.member.get(f"/projects/{pid}/tasks").json()["items"][0]["id"]
    assert tenant.member.get(f"/tasks/{task_id}").status_code == 200
    assert tenant.member.get(f"/projects/{pid}/results").status_code == 200
    assert tenant.member.get(f"/projects/{pid}/export", params={"format": "csv"}).status_code == 200
    assert world.admin.get(f"/projects/{pid}/export").status_code == 200
    member_id = tenant.member.get("/me").json()["id"]
    admin_id = world.admin.get("/me").json()["id"]
    with world.database.reader() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.org_id == tenant.org_id)
                                 .order_by(AuditEvent.id)).all()
    mine = [(e.actor_id, e.action, e.object_type, e.object_id, e.details) for e in events
            if (e.object_type, e.object_id) in (("project", pid), ("task", task_id)) and e.action != "project.create"]
    assert mine == [
        (mine[0][0], "tasks.import", "project", pid, {"created": 1, "duplicates": 0}),
        (member_id, "tasks.read", "project", pid, {"count": 1}),
        (member_id, "task.read", "task", task_id, None),
        (member_id, "results.read", "project", pid, {"count": 0}),
        (member_id, "export", "project", pid, {"format": "csv", **NO_FILTERS}),
        (admin_id, "export", "project", pid, {"format": "jsonl", **NO_FILTERS}),
    ]
    # A refused read is not recorded as a read.
    error_of(world.rival.owner.get(f"/projects/{pid}/export"), 404)
    with world.database.reader() as session:
        exports = session.scalars(select(AuditEvent).where(AuditEvent.action == "export",
                                                           AuditEvent.object_id == pid)).all()
    assert len(exports) == 2


def test_export_walks_past_its_internal_chunks(world: World) -> None:
    tenant = world.tenant
    pid = tenant.project()["id"]
    n = 1001  # more than two export chunks of 500
    body = "".join(json.dumps({"data": {"text": f"t{i}"}, "unique_id": str(i)}) + "\n" for i in range(n))
    response = tenant.owner.post(f"/projects/{pid}/tasks", content=body.encode(),
                                 headers={"content-type": "application/x-ndjson"})
    assert response.status_code == 201, response.text
    records = _jsonl(world, pid)
    assert [r["unique_id"] for r in records] == [str(i) for i in range(n)]
    assert len({r["task_id"] for r in records}) == n
    _, rows = _csv(world, pid)
    assert [r["unique_id"] for r in rows] == [str(i) for i in range(n)]
