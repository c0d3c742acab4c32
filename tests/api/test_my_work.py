"""An annotator's own record (``GET /users/me/work``): counts that match what they did, the
project's work name only, their skills and pools, and never anyone else's record."""

from __future__ import annotations

from tests.api.conftest import World
from tests.api.helpers import answer_label, take


def test_an_annotator_sees_their_own_record_under_work_names(world: World) -> None:
    tenant = world.tenant
    alice, bob, _ = tenant.annotators
    alice_id = tenant.annotator_ids[0]
    project = tenant.project(name="Acme secret launch", gold={"share": 0.99, "min_answers": 50})
    pid = project["id"]
    gold_rows = [{"data": {"text": f"gold {i}"}, "unique_id": f"g{i}", "gold": {"label": "positive"}} for i in range(3)]
    tenant.add_tasks(pid, gold_rows + [{"data": {"text": f"t{i}"}, "unique_id": f"t{i}"} for i in range(3)])
    assert world.admin.put(f"/users/{alice_id}/skills", json={"skills": [
        {"kind": "language", "tag": "ar-eg", "level": 4}]}).status_code == 200
    team = world.admin.post("/pools", json={"name": "Cairo team", "kind": "vendor"}).json()
    assert world.admin.put(f"/pools/{team['id']}/members/{alice_id}", json={}).status_code == 204

    empty = alice.get("/users/me/work").json()
    assert empty["projects"] == [] and empty["totals"]["answers"] == 0 and empty["totals"]["gold_accuracy"] is None

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
    [row] = found["projects"]
    assert row["name"] == project["work_name"] and "Acme" not in mine.text and tenant.slug not in mine.text
    assert row["answers"] == 4 and row["gold"] == gold_seen and row["standing"] == "working"
    assert row["gold_accuracy"] == (right / gold_seen if gold_seen else None)
    assert found["totals"]["answers"] == 4
    assert found["skills"] == [{"kind": "language", "tag": "ar-EG", "level": 4}]
    assert found["pools"] == [{"id": team["id"], "name": "Cairo team", "kind": "vendor", "manager": False}]

    # Another annotator's record is theirs alone; the owner, who answers nothing, has none.
    assert bob.get("/users/me/work").json()["projects"] == []
    assert tenant.owner.get("/users/me/work").json()["projects"] == []
