"""Qualification exams through the real API: settings, attempts served by the engine, scoring
against gold, retake limits (under concurrency too), grants and admission, tenancy."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy import func, select

from qistas.db.models import Assignment, ExamAttempt, Project, UserSkill
from tests.api.conftest import World
from tests.api.helpers import error_of, field_of, take, take_if_any
from tests.factories import Tenant, client_for, new_user

GOLD = "negative"  # every question's gold answer; a careless annotator answers "positive"


def settle(world: World) -> None:
    """Wait out the token cache, which carries each user's work profile (the exams passed)."""
    time.sleep(world.settings.token_cache_seconds + 0.1)


def exam_project(tenant: Tenant, name: str, *, questions: int = 6, plain: int = 0, **fields: Any) -> int:
    pid = int(tenant.project(name=name, **fields)["id"])
    rows = [{"data": {"text": f"question {n}"}, "gold": {"label": GOLD}} for n in range(questions)]
    rows += [{"data": {"text": f"task {n}"}} for n in range(plain)]
    tenant.add_tasks(pid, rows)
    return pid


def put_exam(client: httpx.Client, pid: int, **settings: Any) -> httpx.Response:
    return client.put(f"/projects/{pid}/exam", json={"pass_mark": 75, "questions": 4, **settings})


def start(client: httpx.Client, pid: int, status: int = 201) -> dict[str, Any]:
    response = client.post(f"/projects/{pid}/exam/attempts")
    assert response.status_code == status, response.text
    return response.json()  # type: ignore[no-any-return]


def sit(client: httpx.Client, pid: int, right: int, seen: list[str] | None = None) -> list[int]:
    """Answer the open attempt's questions, the first ``right`` of them right; the task ids served.
    The answers the annotator receives are kept in ``seen`` (to look for the gold answer)."""
    served = []
    while True:
        taken = client.post(f"/projects/{pid}/assignments")
        if seen is not None:
            seen.append(taken.text)
        if taken.status_code == 204:
            return served
        assert taken.status_code == 201, taken.text
        lease = taken.json()
        assert set(lease["task"]) == {"id", "data"}
        label = GOLD if len(served) < right else "positive"
        served.append(lease["task"]["id"])
        answered = client.post(f"/assignments/{lease['id']}/submit", json={"answer": {"label": label}})
        assert answered.status_code == 201, answered.text
        assert answered.json()["feedback"] is None  # not even whether it was right
        if seen is not None and label != GOLD:  # a right answer is echoed back, as any answer is
            seen.append(answered.text)


def attempts(client: httpx.Client, pid: int) -> list[dict[str, Any]]:
    response = client.get(f"/projects/{pid}/exam/attempts", params={"limit": 1000})
    assert response.status_code == 200, response.text
    assert response.json()["next"] is None
    return response.json()["items"]  # type: ignore[no-any-return]


def test_an_exam_is_sat_scored_and_admits_to_the_projects_requiring_it(world: World) -> None:
    tenant = world.tenant
    careful, careless, _ = tenant.annotators
    # The project's own gold feedback is on: an exam still never shows an answer.
    pid = exam_project(tenant, "Entry exam", gold={"feedback": True})
    made = put_exam(tenant.owner, pid, max_attempts=3)
    assert made.status_code == 200, made.text
    assert made.json() == {"id": pid, "name": "Entry exam", "pass_mark": 75.0, "questions": 4,
                           "cooldown_seconds": 0, "max_attempts": 3, "grants": None, "gold_tasks": 6}
    gated = tenant.project(name="Gated work", routing={"exams": [pid]})
    assert gated["routing"]["exams"] == [pid]
    tenant.add_tasks(gated["id"], [{"data": {"text": "real work"}}])
    settle(world)
    error_of(careful.post(f"/projects/{gated['id']}/assignments"), 404)  # not passed yet
    # The exam's questions come within an attempt only.
    assert error_of(careful.post(f"/projects/{pid}/assignments"), 409)["code"] == "no_open_attempt"
    seen: list[str] = []
    first = start(careful, pid)
    assert (first["number"], first["status"], first["score"], first["passed"]) == (1, "open", None, None)
    assert start(careful, pid, 200)["id"] == first["id"]  # the open one again
    served = sit(careful, pid, right=3, seen=seen)  # 3 of 4: 75%, the pass mark
    assert len(served) == len(set(served)) == 4
    (done,) = attempts(careful, pid)
    assert (done["status"], done["score"], done["passed"], done["answered"]) == ("passed", 75.0, True, 4)
    seen.append(careful.get(f"/projects/{pid}/exam").text)
    seen.append(careful.get("/exams").text)
    error_of(careful.post(f"/projects/{pid}/exam/attempts"), 409)  # passed: no retake
    settle(world)
    assert take(careful, gated["id"])["project_id"] == gated["id"]
    # 2 of 4 fails; the annotator's view of the exam is its work name, never the answers.
    sit_fail = start(careless, pid)
    sit(careless, pid, right=2, seen=seen)
    assert attempts(careless, pid)[0] | {"started_at": 0, "finished_at": 0} == {
        **sit_fail, "status": "failed", "score": 50.0, "passed": False, "served": 4, "answered": 4,
        "started_at": 0, "finished_at": 0}
    settle(world)
    error_of(careless.post(f"/projects/{gated['id']}/assignments"), 404)
    for text in seen:
        assert GOLD not in text and "Entry exam" not in text and tenant.slug not in text, text
    # The organization sees every attempt, annotators as pseudonyms, and the audit events.
    everyone = attempts(tenant.owner, pid)
    assert [a["status"] for a in everyone] == ["passed", "failed"]
    assert all(a["annotator"].startswith("annotator-") for a in everyone)
    first_page = tenant.owner.get(f"/projects/{pid}/exam/attempts", params={"limit": 1}).json()
    assert first_page["items"] == everyone[:1] and first_page["next"] == everyone[0]["id"]
    rest = tenant.owner.get(f"/projects/{pid}/exam/attempts", params={"limit": 1, "after": first_page["next"]})
    assert rest.json()["items"] == everyone[1:]  # a page at a time, oldest first
    events = tenant.owner.get("/audit", params={"object_type": "exam_attempt", "limit": 500}).json()["items"]
    mine = {e["object_id"]: e for e in events}
    assert mine[first["id"]]["action"] == "exam.pass" and mine[sit_fail["id"]]["action"] == "exam.fail"
    assert mine[first["id"]]["details"]["score"] == 75.0
    assert mine[first["id"]]["actor"] == everyone[0]["annotator"]


def test_retakes_ask_other_questions_until_the_limit(world: World) -> None:
    tenant = world.tenant
    worker = tenant.annotators[0]
    pid = exam_project(tenant, "Retake exam", questions=5)
    assert put_exam(tenant.owner, pid, questions=2, max_attempts=2).status_code == 200
    start(worker, pid)
    one = sit(worker, pid, right=0)
    assert attempts(worker, pid)[0]["status"] == "failed"
    second = start(worker, pid)
    assert second["number"] == 2
    two = sit(worker, pid, right=0)
    assert not set(one) & set(two)  # never the same task twice
    refused = error_of(worker.post(f"/projects/{pid}/exam/attempts"), 409)
    assert refused["code"] == "retake_limit" and refused["details"]["max_attempts"] == 2
    # A cool-down after a failed attempt; no limit on attempts, but only 1 unseen question left.
    assert put_exam(tenant.owner, pid, questions=1, max_attempts=None, cooldown_seconds=3600).status_code == 200
    waiting = error_of(worker.post(f"/projects/{pid}/exam/attempts"), 409)
    assert waiting["code"] == "retake_cooldown" and 3590 < waiting["details"]["retry_after"] <= 3600
    assert put_exam(tenant.owner, pid, questions=2, cooldown_seconds=0).status_code == 200
    short = error_of(worker.post(f"/projects/{pid}/exam/attempts"), 409)  # 1 question it has not seen
    assert short["details"]["field"] == "questions"
    with world.database.reader() as session:
        assert session.scalar(select(func.count()).select_from(ExamAttempt).where(ExamAttempt.project_id == pid)) == 2


def test_a_skipped_question_counts_as_wrong(world: World) -> None:
    tenant = world.tenant
    worker = tenant.annotators[1]
    pid = exam_project(tenant, "Skipped exam", questions=3)
    assert put_exam(tenant.owner, pid, questions=2, pass_mark=50).status_code == 200
    start(worker, pid)
    first = take(worker, pid)
    assert worker.post(f"/assignments/{first['id']}/submit", json={"answer": {"label": GOLD}}).status_code == 201
    second = take(worker, pid)
    assert worker.post(f"/assignments/{second['id']}/skip").status_code == 204
    (done,) = attempts(worker, pid)
    assert (done["status"], done["score"], done["answered"]) == ("passed", 50.0, 1)
    assert take_if_any(worker, pid) is None  # the attempt is over


def test_parallel_starts_never_pass_the_attempt_limit(world: World) -> None:
    tenant = world.tenant
    pid = exam_project(tenant, "Rush exam", questions=8)
    assert put_exam(tenant.owner, pid, questions=2, max_attempts=2).status_code == 200
    _, token = new_user(world.database, email="rusher@crowd.test", role="annotator")
    clients = [client_for(world.server.url, token) for _ in range(8)]
    try:
        def rush(client: httpx.Client) -> tuple[int, int | None]:
            answer = client.post(f"/projects/{pid}/exam/attempts")
            return answer.status_code, answer.json().get("id")

        for round_ in (1, 2):
            with ThreadPoolExecutor(8) as pool:
                found = list(pool.map(rush, clients))
            assert sorted(code for code, _ in found) == [200] * 7 + [201], found
            assert len({attempt_id for _, attempt_id in found}) == 1
            sit(clients[0], pid, right=0)
            with world.database.reader() as session:
                assert session.scalar(select(func.count()).select_from(ExamAttempt)
                                      .where(ExamAttempt.project_id == pid)) == round_
        with ThreadPoolExecutor(8) as pool:
            found = list(pool.map(rush, clients))
        assert {code for code, _ in found} == {409}
        with world.database.reader() as session:
            assert session.scalar(select(func.count()).select_from(ExamAttempt)
                                  .where(ExamAttempt.project_id == pid)) == 2
            # Two attempts of two questions each: four leases, no task twice.
            tasks = list(session.scalars(select(Assignment.task_id).where(Assignment.project_id == pid)))
        assert len(tasks) == len(set(tasks)) == 4
    finally:
        for client in clients:
            client.close()


def test_bad_exam_settings_are_422_naming_the_field_and_write_nothing(world: World) -> None:
    tenant = world.tenant
    pid = exam_project(tenant, "Bad exam", questions=3)
    empty = exam_project(tenant, "Goldless exam", questions=0, plain=4)
    cases = [
        (pid, {"pass_mark": 101}, "pass_mark"),
        (pid, {"pass_mark": -1}, "pass_mark"),
        (pid, {"pass_mark": True}, "pass_mark"),
        (pid, {"questions": 0}, "questions"),
        (pid, {"questions": 4}, "questions"),  # 3 gold tasks
        (pid, {"questions": 2, "cooldown_seconds": -5}, "cooldown_seconds"),
        (pid, {"questions": 2, "max_attempts": 0}, "max_attempts"),
        (pid, {"questions": 2, "grants": {"kind": "language", "tag": "ar_EG", "level": 3}}, "grants"),
        (pid, {"questions": 2, "grants": {"kind": "language", "tag": "ar-EG", "level": 9}}, "grants.level"),
        (empty, {"questions": 1}, "project"),
    ]
    for project_id, settings, field in cases:
        assert field_of(put_exam(tenant.owner, project_id, **settings)) == field, settings
    missing = tenant.owner.put(f"/projects/{pid}/exam", json={"questions": 2})
    assert field_of(missing) == "pass_mark"
    for project_id in (pid, empty):
        error_of(tenant.owner.get(f"/projects/{project_id}/exam"), 404)
    with world.database.reader() as session:
        assert session.scalar(select(Project.exam).where(Project.id == pid)) == {}
    # A routing naming a project that is no exam, or itself.
    other = tenant.project(name="Needs a bad exam")["id"]
    error_of(tenant.owner.patch(f"/projects/{other}", json={"routing": {"exams": [pid]}}), 404)
    assert field_of(tenant.owner.patch(f"/projects/{other}", json={"routing": {"exams": ["x"]}})) == "routing.exams"


def test_passing_grants_the_exams_skill(world: World) -> None:
    tenant = world.tenant
    user, token = new_user(world.database, email="dialect-candidate@crowd.test", role="annotator")
    worker_id, worker = user.id, client_for(world.server.url, token)
    shared = exam_project(tenant, "Dialect exam", questions=2)
    grant = {"kind": "language", "tag": "ar-eg", "level": 3}
    # Open to the shared workforce: a skill granted there routes other organizations' work.
    error_of(put_exam(tenant.owner, shared, questions=2, grants=grant), 403)
    error_of(put_exam(tenant.member, shared, questions=2, grants=grant), 403)
    made = put_exam(world.admin, shared, questions=2, pass_mark=100, grants=grant)
    assert made.status_code == 200 and made.json()["grants"] == {"kind": "language", "tag": "ar-EG", "level": 3}
    # A member may change an exam's settings (not its grant); the grant stays.
    assert put_exam(tenant.member, shared, questions=2, pass_mark=100).json()["grants"] is None
    assert put_exam(world.admin, shared, questions=2, pass_mark=100, grants=grant).status_code == 200
    start(worker, shared)
    sit(worker, shared, right=2)
    skills = world.admin.get(f"/users/{worker_id}/skills").json()["skills"]
    assert {"kind": "language", "tag": "ar-EG", "level": 3} in skills
    # An exam only the organization's own annotators take: its owners set the grant.
    inhouse = exam_project(tenant, "In-house exam", questions=1, workforce="org")
    assert put_exam(tenant.owner, inhouse, questions=1, grants={"kind": "domain", "tag": "legal", "level": 2}
                    ).status_code == 200
    start(tenant.inhouse, inhouse)
    sit(tenant.inhouse, inhouse, right=0)
    inhouse_id = tenant.inhouse.get("/me").json()["id"]
    with world.database.reader() as session:
        assert session.scalar(select(func.count()).select_from(UserSkill).where(UserSkill.user_id == inhouse_id)) == 0
    worker.close()


def test_exams_follow_the_tenant_rules(world: World) -> None:
    tenant, rival = world.tenant, world.rival
    pid = exam_project(tenant, "Private exam", questions=2, workforce="org")
    assert put_exam(tenant.owner, pid, questions=1).status_code == 200
    for outsider in (rival.owner, rival.member, rival.inhouse, tenant.annotators[0]):
        error_of(outsider.get(f"/projects/{pid}/exam"), 404)
        error_of(outsider.put(f"/projects/{pid}/exam", json={"pass_mark": 1, "questions": 1}), 404)
        error_of(outsider.post(f"/projects/{pid}/exam/attempts"), 404)
        error_of(outsider.get(f"/projects/{pid}/exam/attempts"), 404)
        assert pid not in [e["id"] for e in outsider.get("/exams").json()]
    error_of(tenant.owner.post(f"/projects/{pid}/exam/attempts"), 403)  # staff do not sit exams
    error_of(tenant.inhouse.put(f"/projects/{pid}/exam", json={"pass_mark": 1, "questions": 1}), 403)
    assert tenant.inhouse.get(f"/projects/{pid}/exam").json()["gold_tasks"] is None
    assert pid in [e["id"] for e in tenant.inhouse.get("/exams").json()]
    assert pid in [e["id"] for e in tenant.member.get("/exams").json()]
    # Another organization's project cannot require this exam.
    theirs = rival.project(name="Poacher")["id"]
    error_of(rival.owner.patch(f"/projects/{theirs}", json={"routing": {"exams": [pid]}}), 404)
    # An annotator reads only their own attempts.
    start(tenant.inhouse, pid)
    assert len(attempts(tenant.inhouse, pid)) == 1
    assert attempts(tenant.inhouse, pid)[0]["annotator"] is None
