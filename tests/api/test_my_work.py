"""An annotator's own record (``GET /users/me/work``): counts that match what they did, the
project's work name only, their skills and pools, and never anyone else's record."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import World
from tests.api.helpers import answer_label, take


def test_an_annotator_sees_their_own_record_under_work_names(world: World) -> None:
    tenant = world.tenant
    alice, bob, _ = tenant.annotators
    alice_id = tenant.annotator_ids[0]
    project = tenant.project(name="Acme secret launch", gold={"share": 0.99, "min_answers": 50},
                             pay={"currency": "SAR", "per_task": 150})
    pid = project["id"]
    gold_rows = [{"data": {"text": f"gold {i}"}, "unique_id": f"g{i}", "gold": {"label": "positive"}} for i in range(3)]
    tenant.add_tasks(pid, gold_rows + [{"data": {"text": f"t{i}"}, "unique_id": f"t{i}"} for i in range(3)])
    assert world.admin.put(f"/users/{alice_id}/skills", json={"skills": [
        {"kind": "language", "tag": "ar-eg", "level": 4}]}).status_code == 200
    team = world.admin.post("/pools", json={"name": "Cairo team", "kind": "vendor"}).json()
    assert world.admin.put(f"/pools/{team['id']}/members/{alice_id}", json={}).status_code == 204

    before = alice.get("/users/me/work").json()  # the world is shared: alice may have worked elsewhere
    assert all(p["project_id"] != pid for p in before["projects"])

    gold_seen = right = 0
    for _ in range(4):
        lease = take(alice, pid)
        is_gold = lease["task"]["data"]["text"].startswith("gold")
        label = "positive" if is_gold and gold_seen == 0 else "negative"
        gold_seen += is_gold
        right += is_gold and label == "positive"
        assert answer_label(alice, lease, label).status_code == 201
    mine = alice.get("/users/me/work")
    assert mine.status_code == 200, mine.text
    found = mine.json()
    [row] = [p for p in found["projects"] if p["project_id"] == pid]
    assert row["name"] == project["work_name"] and "Acme" not in mine.text and tenant.slug not in mine.text
    assert row["answers"] == 4 and row["gold"] == gold_seen and row["standing"] == "working"
    assert row["gold_accuracy"] == (right / gold_seen if gold_seen else None)
    assert found["totals"]["answers"] == before["totals"]["answers"] + 4

    def sar(record: dict[str, Any]) -> int:
        return sum(e["total_minor"] for e in record["earned"] if e["currency"] == "SAR")

    assert sar(found) == sar(before) + 600
    assert row["seconds"] >= 0  # the server's measure, not the client's
    assert found["skills"] == [{"kind": "language", "tag": "ar-EG", "level": 4}]
    assert {"id": team["id"], "name": "Cairo team", "kind": "vendor", "manager": False} in found["pools"]

    # Another annotator's record is theirs alone; the owner, who answers nothing, has none.
    assert all(p["project_id"] != pid for p in bob.get("/users/me/work").json()["projects"])
    assert tenant.owner.get("/users/me/work").json()["projects"] == []


def test_an_open_exam_attempt_tells_nothing_on_the_own_record(world: World) -> None:
    """My work lists exams by attempt with their score once finished; an exam's questions are
    not counted among the projects, where their gold results would tell what an open attempt
    got right, question by question."""
    from tests.api.test_exams import exam_project, put_exam, sit, start

    tenant = world.tenant
    alice = tenant.annotators[2]
    pid = exam_project(tenant, "Acme dialect exam", questions=8)
    assert put_exam(tenant.owner, pid, questions=4).status_code == 200
    before = alice.get("/users/me/work").json()["totals"]
    start(alice, pid)
    lease = alice.post(f"/projects/{pid}/assignments").json()
    assert alice.post(f"/assignments/{lease['id']}/submit", json={"answer": {"label": "negative"}}).status_code == 201
    mid = alice.get("/users/me/work").json()
    assert [p for p in mid["projects"] if p["project_id"] == pid] == [] and mid["totals"] == before
    [open_attempt] = [e for e in mid["exams"] if e["project_id"] == pid]
    assert open_attempt["status"] == "open" and open_attempt["score"] is None and open_attempt["project_id"] == pid
    sit(alice, pid, right=3)
    [done] = [e for e in alice.get("/users/me/work").json()["exams"] if e["project_id"] == pid]
    assert done["status"] in ("passed", "failed") and done["score"] is not None and done["finished_at"]
    assert "Acme" not in alice.get("/users/me/work").text
