"""The fraud report and the actions on an annotator, over HTTP: shape, pseudonyms, tenancy,
roles, bad input, and exclusion re-opening tasks."""

from __future__ import annotations

import json

import httpx

from tests.api.helpers import error_of, field_of, take_if_any
from tests.factories import Tenant, label_everything


def _answered_project(tenant: Tenant) -> dict[str, object]:
    """One answer per task; the first annotator answered every task, the second none."""
    project = tenant.project(redundancy={"min": 1, "max": 1})
    tenant.add_tasks(project["id"], [{"data": {"text": f"t{i}"}, "unique_id": f"t{i}"} for i in range(6)])
    assert label_everything(tenant, project["id"], {"label": "positive"}) == 6
    return project


def _only_annotator(tenant: Tenant, project_id: object) -> dict[str, object]:
    report = tenant.owner.get(f"/projects/{project_id}/fraud")
    assert report.status_code == 200, report.text
    body = report.json()
    assert set(body) == {"project_id", "floor_seconds", "annotators"}
    (only,) = body["annotators"]
    return only  # type: ignore[no-any-return]


def test_report_names_annotators_by_pseudonym_only(tenant: Tenant) -> None:
    project = _answered_project(tenant)
    only = _only_annotator(tenant, project["id"])
    assert set(only) == {"annotator", "answers", "signals", "flags", "copies", "status", "reason", "blocked"}
    assert str(only["annotator"]).startswith("annotator-") and only["answers"] == 6
    assert only["flags"] == []  # six answers: fewer than any flag needs
    # The same pseudonym as the results' export; no account, email or id.
    assert "@" not in str(only) and str(only["annotator"]).removeprefix("annotator-") != str(tenant.annotator_ids[0])
    export = tenant.owner.get(f"/projects/{project['id']}/export", params={"format": "jsonl"}).text
    assert {a["annotator"] for line in export.splitlines() for a in json.loads(line)["annotations"]} == \
        {only["annotator"]}
    assert tenant.member.get(f"/projects/{project['id']}/fraud").status_code == 200  # members may read


def test_exclude_reopens_the_tasks_and_blocks_once(tenant: Tenant) -> None:
    project = _answered_project(tenant)
    name = _only_annotator(tenant, project["id"])["annotator"]
    assert all(r["response"] for r in tenant.owner.get(f"/projects/{project['id']}/results").json()["items"])

    url = f"/projects/{project['id']}/annotators/{name}/exclude"
    done = tenant.owner.post(url, json={"reason": "copied answers"})
    assert done.status_code == 200, done.text
    assert done.json() == {"annotator": name, "project_id": project["id"], "status": "excluded", "blocked": True,
                           "excluded": 6, "reopened": 6, "redecided": 0}
    again = tenant.owner.post(url, json={"reason": "copied answers"})
    assert again.json()["excluded"] == 0 and again.json()["reopened"] == 0

    stats = tenant.owner.get(f"/projects/{project['id']}/stats").json()
    assert stats["tasks"]["pending"] == 6 and stats["tasks"].get("completed", 0) == 0, stats
    excluded = tenant.annotators[0]
    assert excluded.post(f"/projects/{project['id']}/assignments").status_code == 403
    # Another annotator answers the re-opened tasks.
    other = tenant.annotators[1]
    for _ in range(6):
        lease = take_if_any(other, project["id"])
        assert lease is not None
        submitted = other.post(f"/assignments/{lease['id']}/submit", json={"answer": {"label": "negative"}})
        assert submitted.status_code == 201
    results = tenant.owner.get(f"/projects/{project['id']}/results").json()["items"]
    assert [r["response"]["label"] for r in results] == ["negative"] * 6
    # The report names its state; the audit log has one event, with the reason.
    only = [a for a in tenant.owner.get(f"/projects/{project['id']}/fraud").json()["annotators"]
            if a["annotator"] == name]
    assert only == [] or only[0]["status"] == "excluded"  # excluded answers are not judged
    events = tenant.owner.get("/audit", params={"action": "annotator.exclude"}).json()["items"]
    mine = [e for e in events if e["object_id"] == project["id"]]
    assert len(mine) == 1 and mine[0]["details"]["reason"] == "copied answers"


def test_probation_then_clear_and_block(tenant: Tenant) -> None:
    project = _answered_project(tenant)
    name = _only_annotator(tenant, project["id"])["annotator"]
    base = f"/projects/{project['id']}/annotators/{name}"
    on = tenant.owner.post(f"{base}/probation", json={"reason": "fast answers"})
    assert on.status_code == 200 and on.json()["status"] == "probation"
    assert _only_annotator(tenant, project["id"])["reason"] == "fast answers"
    assert tenant.owner.post(f"{base}/clear", json={}).json()["status"] is None
    error_of(tenant.owner.post(f"{base}/clear", json={}), 409)  # not on probation any more
    blocked = tenant.owner.post(f"{base}/block", json={"reason": "bursts"})
    assert blocked.json()["blocked"] is True and blocked.json()["excluded"] == 0
    error_of(tenant.owner.post(f"{base}/probation", json={"reason": "x"}), 409)  # blocked: unblock first
    # Unblocking (the gold route) lifts a fraud block too.
    lifted = tenant.owner.post(f"/annotators/{name}/unblock", json={"project": project["id"]})
    assert lifted.status_code == 200 and lifted.json()["blocked"] is False
    assert _only_annotator(tenant, project["id"])["status"] is None


def test_tenancy_roles_and_bad_input(tenant: Tenant, rival: Tenant, admin: httpx.Client) -> None:
    project = _answered_project(tenant)
    name = _only_annotator(tenant, project["id"])["annotator"]
    base = f"/projects/{project['id']}/annotators/{name}"
    # Another organization: the project does not exist for it, read or write.
    assert error_of(rival.owner.get(f"/projects/{project['id']}/fraud"), 404)["code"] == "not_found"
    error_of(rival.owner.post(f"{base}/block", json={"reason": "x"}), 404)
    # Members read, owners act; annotators do neither.
    assert error_of(tenant.member.post(f"{base}/block", json={"reason": "x"}), 403)["code"] == "forbidden"
    error_of(tenant.annotators[0].get(f"/projects/{project['id']}/fraud"), 403)
    # Bad input: no reason, an unknown action, an unknown annotator, a negative floor.
    assert field_of(tenant.owner.post(f"{base}/block", json={})) == "reason"
    assert field_of(tenant.owner.post(f"{base}/block", json={"reason": "x", "extra": 1})) == "extra"
    error_of(tenant.owner.post(f"{base}/delete", json={"reason": "x"}), 422)
    error_of(tenant.owner.post(f"/projects/{project['id']}/annotators/annotator-0000000000/block",
                               json={"reason": "x"}), 404)
    # The rival's pseudonym for the same person names no one here.
    error_of(tenant.owner.post(f"/projects/{project['id']}/annotators/{tenant.annotator_ids[0]}/block",
                               json={"reason": "x"}), 404)
    error_of(tenant.owner.get(f"/projects/{project['id']}/fraud", params={"min_seconds": -1}), 422)
    # Nothing was written by any refusal.
    assert _only_annotator(tenant, project["id"])["status"] is None
    # An admin may name the annotator by id.
    done = admin.post(f"/projects/{project['id']}/annotators/{tenant.annotator_ids[0]}/probation",
                      json={"reason": "checked"})
    assert done.status_code == 200 and done.json()["status"] == "probation"
