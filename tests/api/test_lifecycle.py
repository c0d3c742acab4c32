"""A project's life after creation: its settings changed, archived and back, a task canceled,
an annotator blocked by the gold threshold let back on probation."""

from __future__ import annotations

from typing import Any

from tests.api.helpers import answer_label, error_of, field_of, take_if_any
from tests.factories import CLASSIFICATION, Tenant


def _rows(n: int, prefix: str = "t") -> list[dict[str, Any]]:
    return [{"data": {"text": f"{prefix} {i}"}, "unique_id": f"{prefix}{i}"} for i in range(n)]


def test_settings_change_and_the_spec_only_before_the_firstanswer_label(tenant: Tenant, rival: Tenant) -> None:
    project = tenant.project(redundancy={"min": 1, "max": 2})
    pid = project["id"]
    tenant.add_tasks(pid, _rows(3))
    changed = tenant.owner.patch(f"/projects/{pid}", json={
        "name": "renamed", "instructions": "Read *twice*.", "redundancy": {"min": 2, "max": 3}, "priority": 5,
        "task": {**CLASSIFICATION, "labels": ["positive", "negative"]}})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["name"], body["instructions"], body["priority"]) == ("renamed", "Read *twice*.", 5)
    assert body["redundancy"]["min"] == 2 and body["task"]["labels"] == ["positive", "negative"]
    tasks = tenant.owner.get(f"/projects/{pid}/tasks").json()["items"]
    assert {t["required"] for t in tasks} == {2}  # open tasks raised to the new minimum

    lease = take_if_any(tenant.annotators[0], pid)
    assert lease is not None and answer_label(tenant.annotators[0], lease, "positive").status_code == 201
    refused = tenant.owner.patch(f"/projects/{pid}", json={"task": CLASSIFICATION})
    assert error_of(refused, 409)["details"]["field"] == "task"
    for body, field in (({"name": None}, "name"), ({"gold": {"min_accuracy": 3}}, "gold.min_accuracy"),
                        ({"redundancy": {"min": 0}}, "redundancy.min"), ({"colour": "red"}, "colour"),
                        ({"workforce": "everyone"}, "workforce")):
        assert field_of(tenant.owner.patch(f"/projects/{pid}", json=body)) == field, body
    assert tenant.owner.get(f"/projects/{pid}").json()["name"] == "renamed"  # nothing half-written
    assert error_of(rival.owner.patch(f"/projects/{pid}", json={"name": "mine"}), 404)["code"] == "not_found"
    assert error_of(tenant.annotators[0].patch(f"/projects/{pid}", json={"name": "x"}), 403)


def test_an_archived_project_is_read_only_and_hidden_from_annotators(tenant: Tenant) -> None:
    pid = tenant.project()["id"]
    tenant.add_tasks(pid, _rows(4))
    worker = tenant.annotators[0]
    lease = take_if_any(worker, pid)
    assert lease is not None
    archived = tenant.owner.patch(f"/projects/{pid}", json={"archived": True})
    assert archived.status_code == 200 and archived.json()["archived_at"]
    assert pid not in [p["id"] for p in worker.get("/projects").json()]
    assert error_of(worker.post(f"/projects/{pid}/assignments"), 404)["code"] == "not_found"
    assert answer_label(worker, lease, "positive").status_code == 201  # a lease already out still lands
    for refused in (tenant.owner.post(f"/projects/{pid}/tasks", json=_rows(1, "late")),
                    tenant.owner.post(f"/projects/{pid}/batches", json={"name": "b"}),
                    tenant.owner.patch(f"/projects/{pid}", json={"name": "still"})):
        assert error_of(refused, 409)["details"]["field"] == "archived"
    assert tenant.owner.get(f"/projects/{pid}/results").status_code == 200  # still readable
    assert tenant.owner.patch(f"/projects/{pid}", json={"archived": False}).json()["archived_at"] is None
    assert take_if_any(worker, pid) is not None


def test_a_pending_task_is_canceled_and_its_lease_ends(tenant: Tenant, rival: Tenant) -> None:
    pid = tenant.project(redundancy={"min": 1, "max": 1})["id"]
    tenant.add_tasks(pid, _rows(2))
    worker = tenant.annotators[0]
    lease = take_if_any(worker, pid)
    assert lease is not None
    task_id = lease["task"]["id"]
    assert error_of(rival.owner.post(f"/tasks/{task_id}/cancel"), 404)["code"] == "not_found"
    canceled = tenant.owner.post(f"/tasks/{task_id}/cancel")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    assert canceled.json()["n_annotations"] == 0
    assert error_of(answer_label(worker, lease, "positive"), 409)
    assert error_of(tenant.owner.post(f"/tasks/{task_id}/cancel"), 409)["details"] == {"status": "canceled"}
    other = take_if_any(worker, pid)
    assert other is not None and other["task"]["id"] != task_id
    assert answer_label(worker, other, "negative").status_code == 201
    done = tenant.owner.post(f"/tasks/{other['task']['id']}/cancel")
    assert error_of(done, 409)["details"] == {"status": "completed"}
    assert take_if_any(worker, pid) is None


def test_a_blocked_annotator_is_let_back_on_probation(tenant: Tenant, rival: Tenant) -> None:
    project = tenant.project(gold={"share": 0.99, "min_answers": 2, "min_accuracy": 0.6})
    pid = project["id"]
    gold = [{"data": {"text": f"gold {i}"}, "unique_id": f"g{i}", "gold": {"label": "positive"}} for i in range(30)]
    tenant.add_tasks(pid, gold + _rows(30))
    worker = tenant.annotators[0]

    def wrong_gold_answers(n: int) -> None:
        seen = 0
        while seen < n:
            lease = take_if_any(worker, pid)
            assert lease is not None
            seen += lease["task"]["data"]["text"].startswith("gold")
            assert answer_label(worker, lease, "negative").status_code == 201

    wrong_gold_answers(2)
    assert error_of(worker.post(f"/projects/{pid}/assignments"), 403)["code"] == "forbidden"
    report = tenant.owner.get(f"/projects/{pid}/quality").json()
    name = next(a["annotator"] for a in report["annotators"] if a.get("blocked"))
    assert error_of(rival.owner.post(f"/annotators/{name}/unblock", json={"project": pid}), 404)
    me = worker.get("/me").json()["id"]
    assert error_of(tenant.owner.post(f"/annotators/{me}/unblock", json={"project": pid}), 404)  # ids stay hidden
    assert field_of(tenant.owner.post(f"/annotators/{name}/unblock", json={"project": pid, "probation": -1})) \
        == "probation"
    unblocked = tenant.owner.post(f"/annotators/{name}/unblock", json={"project": pid, "probation": 4})
    assert unblocked.status_code == 200, unblocked.text
    assert unblocked.json() == {"annotator": name, "project": pid, "blocked": False, "probation": 4}
    assert error_of(tenant.owner.post(f"/annotators/{name}/unblock", json={"project": pid}), 409)
    wrong_gold_answers(3)  # on probation: judged after 4 gold answers
    assert take_if_any(worker, pid) is not None
    wrong_gold_answers(1)
    assert error_of(worker.post(f"/projects/{pid}/assignments"), 403)["code"] == "forbidden"
