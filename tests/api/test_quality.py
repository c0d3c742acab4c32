"""Gold tasks, annotator reliability, adaptive redundancy and the quality report, over HTTP."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.helpers import answer_label, take_if_any
from tests.factories import CLASSIFICATION, Tenant


def test_gold_tasks_look_like_any_other_and_block_a_careless_annotator(tenant: Tenant) -> None:
    project = tenant.project(gold={"share": 0.99, "min_answers": 2, "min_accuracy": 0.6})
    gold_rows = [{"data": {"text": f"gold {i}"}, "unique_id": f"g{i}", "gold": {"label": "positive"}} for i in range(4)]
    tenant.add_tasks(project["id"], gold_rows + [{"data": {"text": f"t{i}"}, "unique_id": f"t{i}"} for i in range(4)])
    careless, careful = tenant.annotators[0], tenant.annotators[1]

    first = take_if_any(careless, project["id"])
    assert first is not None and set(first) == {"id", "project_id", "task", "expires_at"}
    assert set(first["task"]) == {"id", "data"}  # no gold, no metadata
    served_gold, lease = 0, first
    while served_gold < 2:  # gold comes at random (share 0.99): answer until two checks are in
        assert lease is not None
        served_gold += lease["task"]["data"]["text"].startswith("gold")
        assert answer_label(careless, lease, "negative").status_code == 201
        if served_gold < 2:
            lease = take_if_any(careless, project["id"])
    # Two wrong gold answers: Beta(7, 3) posterior 7/12 < 0.6, so no more tasks.
    blocked = careless.post(f"/projects/{project['id']}/assignments")
    assert blocked.status_code == 403
    assert blocked.json()["error"]["code"] == "forbidden"

    careful_gold = 0
    while careful_gold < 2:  # gold comes at random (share 0.99): answer until two checks are in
        lease = take_if_any(careful, project["id"])
        assert lease is not None
        careful_gold += lease["task"]["data"]["text"].startswith("gold")
        assert answer_label(careful, lease, "positive").status_code == 201
    assert take_if_any(careful, project["id"]) is not None  # still served

    report = tenant.owner.get(f"/projects/{project['id']}/quality").json()
    by_accuracy = sorted(report["annotators"], key=lambda a: a["gold_accuracy"])
    assert [a["blocked"] for a in by_accuracy] == [True, False]
    assert by_accuracy[0]["gold_correct"] == 0 and by_accuracy[1]["gold_correct"] == 2
    assert all(a["annotator"].startswith("annotator-") for a in report["annotators"])
    assert "@" not in str(report)
    # Gold tasks never become customer results.
    results = tenant.owner.get(f"/projects/{project['id']}/results").json()["items"]
    assert all(r["unique_id"].startswith("t") for r in results)


def _answer_until_gold(tenant: Tenant, worker: httpx.Client, project_id: int) -> list[dict[str, Any]]:
    """Answer "positive" to every task served until the gold one came; return the submits."""
    done = []
    while True:
        lease = take_if_any(worker, project_id)
        assert lease is not None
        done.append(answer_label(worker, lease, "positive").json())
        if lease["task"]["data"]["text"] == "g":
            return done


def test_gold_feedback_only_when_the_project_asks_for_it(tenant: Tenant) -> None:
    rows = [{"data": {"text": "g"}, "gold": {"label": "mixed"}}] + [{"data": {"text": f"t{i}"}} for i in range(5)]
    training = tenant.project(gold={"share": 0.99, "feedback": True})
    tenant.add_tasks(training["id"], rows)
    worker = tenant.annotators[0]
    *regular, checked = _answer_until_gold(tenant, worker, training["id"])
    assert checked["feedback"] == {"correct": False, "expected": {"label": "mixed"}}
    assert all(r["feedback"] is None for r in regular)

    plain = tenant.project(gold={"share": 0.99})
    tenant.add_tasks(plain["id"], rows)
    assert all(r["feedback"] is None for r in _answer_until_gold(tenant, worker, plain["id"]))


def test_adaptive_redundancy_stops_early_on_agreement_and_asks_more_on_disagreement(tenant: Tenant) -> None:
    project = tenant.project(redundancy={"min": 1, "max": 3, "target": 0.9})
    tenant.add_tasks(project["id"], [{"data": {"text": "agree"}, "unique_id": "a"}])
    w = tenant.annotators
    # One answer from an unknown annotator (gold-accuracy prior 0.7) is below 0.9: one more.
    assert answer_label(w[0], take_if_any(w[0], project["id"]), "positive").status_code == 201  # type: ignore[arg-type]
    task = tenant.owner.get(f"/projects/{project['id']}/tasks").json()["items"][0]
    assert (task["status"], task["required"]) == ("pending", 2)
    # A second agreeing answer: posterior 0.49 / (0.49 + 2 * 0.0225) = 0.916 >= 0.9.
    assert answer_label(w[1], take_if_any(w[1], project["id"]), "positive").status_code == 201  # type: ignore[arg-type]
    task = tenant.owner.get(f"/tasks/{task['id']}").json()
    assert task["status"] == "completed" and task["n_annotations"] == 2
    assert task["response"] == {"label": "positive"} and 0.9 <= task["confidence"] < 1

    tenant.add_tasks(project["id"], [{"data": {"text": "split"}, "unique_id": "s"}])
    for worker, label in zip(w, ["positive", "negative", "mixed"], strict=True):
        lease = take_if_any(worker, project["id"])
        assert lease is not None and lease["task"]["data"]["text"] == "split"
        assert answer_label(worker, lease, label).status_code == 201
    split = tenant.owner.get(f"/projects/{project['id']}/tasks?status=completed").json()["items"][-1]
    assert split["unique_id"] == "s" and split["n_annotations"] == 3 and split["below_target"] is True
    report = tenant.owner.get(f"/projects/{project['id']}/quality").json()
    assert split["id"] in report["below_target"]["task_ids"]


def test_refit_learns_worker_skill_and_reports_agreement(tenant: Tenant, rival: Tenant) -> None:
    project = tenant.project(redundancy={"min": 3, "max": 3})
    tenant.add_tasks(project["id"], [{"data": {"text": f"r{i}"}, "unique_id": f"r{i}"} for i in range(12)])
    truth = ["positive", "negative", "mixed"]
    workers = tenant.annotators
    for _ in range(12):
        for n, worker in enumerate(workers):
            lease = take_if_any(worker, project["id"])
            assert lease is not None
            index = int(lease["task"]["data"]["text"][1:])
            # The third annotator always says "positive": a spammer the model should spot.
            label = "positive" if n == 2 else truth[index % 3]
            assert answer_label(worker, lease, label).status_code == 201
    refit = tenant.owner.post(f"/projects/{project['id']}/quality/refit")
    assert refit.status_code == 200, refit.text
    body = refit.json()
    assert body["answers"] == 36 and body["workers"] == 3 and body["method"]
    report = tenant.owner.get(f"/projects/{project['id']}/quality").json()
    skills = sorted(a["skill"] for a in report["annotators"])
    assert skills[0] < 0.6 < skills[1]  # the spammer is the least skilled
    assert report["method"] == body["method"]
    assert report["confusion"]["labels"] == CLASSIFICATION["labels"]
    assert sum(map(sum, report["confusion"]["matrix"])) == 36
    assert {row["label"] for row in report["labels"]} == set(truth)
    assert report["fleiss_kappa"] is not None
    results = tenant.owner.get(f"/projects/{project['id']}/results").json()["items"]
    assert all(r["response"]["label"] == truth[int(r["unique_id"][1:]) % 3] for r in results)

    # Another tenant sees nothing; an annotator may not read the report.
    assert rival.owner.get(f"/projects/{project['id']}/quality").status_code == 404
    assert rival.owner.post(f"/projects/{project['id']}/quality/refit").status_code == 404
    assert tenant.inhouse.get(f"/projects/{project['id']}/quality").status_code == 403


def test_invalid_gold_policy_is_rejected(tenant: Tenant) -> None:
    for gold, field in (({"share": 1.5}, "gold.share"), ({"shares": 0.1}, "gold.shares"),
                        ({"min_answers": 0}, "gold.min_answers")):
        response = tenant.owner.post("/projects", json={"name": "x", "task": CLASSIFICATION, "gold": gold})
        assert response.status_code == 422
        assert response.json()["error"]["details"]["field"] == field


def test_admin_sees_an_annotators_record_across_projects(tenant: Tenant, admin: httpx.Client) -> None:
    project = tenant.project()
    tenant.add_tasks(project["id"], [{"data": {"text": "x"}}])
    worker = tenant.annotators[0]
    assert answer_label(worker, take_if_any(worker, project["id"]), "positive").status_code == 201  # type: ignore[arg-type]
    me = worker.get("/me").json()
    record = admin.get(f"/annotators/{me['id']}/quality").json()
    assert record["projects"][0]["annotations"] == 1
    assert tenant.owner.get(f"/annotators/{me['id']}/quality").status_code == 403



def test_time_per_task_counts_only_timed_answers(tenant: Tenant) -> None:
    """No timing sent is no figure (null), not 0 seconds; untimed answers do not dilute the mean."""
    project = tenant.project()
    tenant.add_tasks(project["id"], [{"data": {"text": f"t{i}"}} for i in range(4)])
    silent, timed = tenant.annotators[0], tenant.annotators[1]
    lease = take_if_any(silent, project["id"])
    assert lease is not None
    assert silent.post(f"/assignments/{lease['id']}/submit", json={"answer": {"label": "positive"}}).status_code == 201
    for seconds in (None, 2, 5):
        lease = take_if_any(timed, project["id"])
        assert lease is not None
        body: dict[str, Any] = {"answer": {"label": "positive"}}
        if seconds is not None:
            body["seconds"] = seconds
        assert timed.post(f"/assignments/{lease['id']}/submit", json=body).status_code == 201
    report = tenant.owner.get(f"/projects/{project['id']}/quality").json()
    per_task = {a["annotations"]: a["seconds_per_task"] for a in report["annotators"]}
    assert per_task == {1: None, 3: 3.5}
