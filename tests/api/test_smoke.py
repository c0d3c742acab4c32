from __future__ import annotations

from tests.factories import Tenant


def test_annotate_loop_completes_a_task(tenant: Tenant) -> None:
    project = tenant.project(redundancy={"min": 2, "max": 2})
    tenant.add_tasks(project["id"], [{"data": {"text": "great"}, "unique_id": "t1"}])
    for worker in tenant.annotators[:2]:
        taken = worker.post(f"/projects/{project['id']}/assignments")
        assert taken.status_code == 201, taken.text
        done = worker.post(f"/assignments/{taken.json()['id']}/submit", json={"answer": {"label": "positive"}})
        assert done.status_code == 201, done.text
    results = tenant.owner.get(f"/projects/{project['id']}/results").json()["items"]
    assert [(r["unique_id"], r["response"]) for r in results] == [("t1", {"label": "positive"})]
    assert 0.5 < results[0]["confidence"] <= 1.0
