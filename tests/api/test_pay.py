"""Pay and time through the real API: the setting's validation, statements that reconcile with
the answers, corrections, payouts, the customer's cost reports, and who may read what."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from qistas.db.models import Annotation, PayEntry, Project
from tests.api.conftest import World
from tests.api.helpers import error_of, field_of, take
from tests.factories import CLASSIFICATION, client_for, new_user


@pytest.fixture
def crowd(world: World, request: pytest.FixtureRequest) -> Iterator[list[tuple[int, httpx.Client]]]:
    """Two annotators of the shared workforce of this test only (their statements are theirs alone)."""
    with ExitStack() as stack:
        people = []
        for n in range(2):
            user, token = new_user(world.database, email=f"{request.node.name[:40]}-{n}@pay.test", role="annotator")
            people.append((user.id, stack.enter_context(client_for(world.server.url, token))))
        yield people


def answer_all(client: httpx.Client, project_id: int, count: int) -> list[dict[str, Any]]:
    done = []
    for _ in range(count):
        lease = take(client, project_id)
        sent = client.post(f"/assignments/{lease['id']}/submit", json={"answer": {"label": "positive"}, "seconds": 999})
        assert sent.status_code == 201, sent.text
        done.append(sent.json())
    return done


def count_projects(world: World) -> int:
    with world.database.reader() as session:
        return session.scalar(select(func.count()).select_from(Project)) or 0


@pytest.mark.parametrize(("pay", "field"), [
    ({"currency": "usd", "per_task": 12}, "pay.currency"), ({"currency": "ZZZ", "per_task": 12}, "pay.currency"),
    ({"currency": "USD", "per_task": -1}, "pay.per_task"), ({"currency": "USD", "per_hour": 12.5}, "pay.per_hour"),
    ({"currency": "USD"}, "pay"), ({"currency": "USD", "per_task": 1, "per_hour": 1}, "pay"),
    ({"currency": "USD", "per_task": 1, "bonus": 3}, "pay.bonus"), ("twelve", "pay"),
])
def test_a_bad_pay_setting_is_422_naming_the_field_and_nothing_is_written(world: World, pay: Any,
                                                                         field: str) -> None:
    before = count_projects(world)
    made = world.tenant.owner.post("/projects", json={"name": "paid", "task": CLASSIFICATION, "pay": pay})
    assert field_of(made) == field
    assert count_projects(world) == before
    project = world.tenant.project(name="Paid", pay={"currency": "USD", "per_task": 12})
    changed = world.tenant.owner.patch(f"/projects/{project['id']}", json={"pay": pay, "name": "renamed"})
    assert field_of(changed) == field
    assert field_of(world.tenant.owner.patch(f"/projects/{project['id']}", json={"pay": None})) == "pay"
    kept = world.tenant.owner.get(f"/projects/{project['id']}").json()
    assert (kept["pay"], kept["name"]) == ({"currency": "USD", "per_task": 12}, "Paid")


def test_statements_payouts_and_costs_reconcile_with_the_answers(world: World,
                                                                  crowd: list[tuple[int, httpx.Client]]) -> None:
    tenant = world.tenant
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    (amal_id, amal), (badr_id, badr) = crowd
    project = tenant.project(name="Reconciled", redundancy={"min": 2, "max": 2},
                             pay={"currency": "SAR", "per_task": 75, "floor_per_hour": 4000})
    pid = project["id"]
    assert amal.get(f"/projects/{pid}").json()["pay"] == {"currency": "SAR", "per_task": 75}  # no floor
    tenant.add_tasks(pid, [{"data": {"text": f"r{n}"}} for n in range(5)])
    answer_all(amal, pid, 3)
    answer_all(badr, pid, 2)
    raised = {"currency": "SAR", "per_task": 90, "floor_per_hour": 4000}
    assert tenant.owner.patch(f"/projects/{pid}", json={"pay": raised}).json()["pay"] == raised
    answer_all(badr, pid, 1)
    # The server's time, not the 999 s the client claimed.
    with world.database.reader() as session:
        rows = session.execute(select(Annotation.annotator_id, Annotation.active_ms, Annotation.pay_minor,
                                      Annotation.pay_currency).where(Annotation.project_id == pid)).all()
    assert len(rows) == 6 and all(0 <= active < 60_000 for _, active, _, _ in rows)
    assert sorted(amount for _, _, amount, _ in rows) == [75] * 5 + [90] and {c for *_, c in rows} == {"SAR"}

    mine = amal.get("/me/earnings", params={"from": since}).json()
    assert mine == amal.get(f"/users/{amal_id}/earnings", params={"from": since}).json()
    assert (mine["answers"], mine["totals"][0]["earned_minor"], mine["totals"][0]["total"]) == (3, 225, "2.25")
    assert [(p["project_id"], p["work_name"], p["answers"]) for p in mine["projects"]] == [
        (pid, project["work_name"], 3)]
    assert "Reconciled" not in str(mine)
    theirs = world.admin.get(f"/users/{badr_id}/earnings", params={"from": since}).json()
    assert theirs["totals"][0]["earned_minor"] == 75 * 2 + 90

    # A correction: appended, with its reason and its audit event; the totals follow.
    fixed = world.admin.post(f"/users/{badr_id}/earnings/corrections",
                             json={"amount_minor": -75, "currency": "SAR", "reason": "copied answer", "project": pid})
    assert fixed.status_code == 201, fixed.text
    theirs = badr.get("/me/earnings", params={"from": since}).json()
    assert theirs["totals"] == [{"currency": "SAR", "answers": 3, "earned_minor": 240, "rejected_answers": 0,
                                 "rejected_minor": 0, "corrections_minor": -75, "total_minor": 165,
                                 "total": "1.65"}]
    assert [c["reason"] for c in theirs["corrections"]] == ["copied answer"]
    events = world.admin.get("/audit", params={"action": "pay.correct"}).json()["items"]
    assert any(e["object_id"] == badr_id and e["details"]["amount_minor"] == -75 for e in events)

    owed = world.admin.get("/payouts", params={"from": since}).json()
    mine_owed = {r["user_id"]: (r["answers"], r["earned_minor"], r["corrections_minor"], r["total_minor"])
                 for r in owed if r["user_id"] in (amal_id, badr_id)}
    assert mine_owed == {amal_id: (3, 225, 0, 225), badr_id: (3, 240, -75, 165)}
    exported = world.admin.get("/payouts", params={"from": since, "format": "csv"})
    assert exported.headers["content-type"].startswith("text/csv")
    lines = {int(r["user_id"]): r for r in csv.DictReader(io.StringIO(exported.text))}
    assert (lines[badr_id]["total_minor"], lines[badr_id]["total"], lines[badr_id]["org"]) == ("165", "1.65", "")

    cost = tenant.member.get(f"/projects/{pid}/cost").json()
    assert cost["currencies"] == [{
        "currency": "SAR", "answers": 6, "answers_minor": 465, "corrections_minor": -75, "total_minor": 390,
        "per_label_minor": 78, "completed_tasks": 3, "completed_minor": 465, "per_completed_task_minor": 155}]
    assert "pay.test" not in str(cost)  # no annotator named
    rate = tenant.owner.get(f"/projects/{pid}/effective-rate").json()
    # Answers in milliseconds: far above the floor.
    assert [(line["currency"], line["floor_per_hour"], line["below_floor"]) for line in rate["currencies"]] in (
        [("SAR", 4000, False)], [])


def test_who_may_read_and_correct_earnings(world: World, crowd: list[tuple[int, httpx.Client]]) -> None:
    tenant, rival = world.tenant, world.rival
    (shared_id, shared), (other_id, _) = crowd
    inhouse_id = tenant.inhouse.get("/me").json()["id"]
    # Reading: yourself; an owner their organization's annotators; admins anyone.
    assert shared.get(f"/users/{shared_id}/earnings").status_code == 200
    error_of(shared.get(f"/users/{other_id}/earnings"), 404)
    error_of(shared.get(f"/users/{inhouse_id}/earnings"), 404)
    assert tenant.owner.get(f"/users/{inhouse_id}/earnings").status_code == 200
    error_of(tenant.member.get(f"/users/{inhouse_id}/earnings"), 403)
    error_of(tenant.owner.get(f"/users/{shared_id}/earnings"), 404)  # the shared workforce is not theirs
    error_of(rival.owner.get(f"/users/{inhouse_id}/earnings"), 404)
    error_of(tenant.owner.get("/users/987654321/earnings"), 404)
    assert world.admin.get(f"/users/{inhouse_id}/earnings").status_code == 200

    # Correcting: admins; owners for their annotators, on their projects.
    body = {"amount_minor": 100, "currency": "USD", "reason": "bonus"}
    with world.database.reader() as session:
        before = session.scalar(select(func.count()).select_from(PayEntry))
    error_of(shared.post(f"/users/{shared_id}/earnings/corrections", json=body), 403)
    error_of(tenant.inhouse.post(f"/users/{inhouse_id}/earnings/corrections", json=body), 403)
    error_of(tenant.member.post(f"/users/{inhouse_id}/earnings/corrections", json=body), 403)
    error_of(rival.owner.post(f"/users/{inhouse_id}/earnings/corrections", json=body), 404)
    error_of(tenant.owner.post(f"/users/{shared_id}/earnings/corrections", json=body), 404)
    owner_id = tenant.owner.get("/me").json()["id"]
    error_of(world.admin.post(f"/users/{owner_id}/earnings/corrections", json=body), 404)  # not an annotator
    theirs = rival.project(name="Theirs")["id"]
    error_of(tenant.owner.post(f"/users/{inhouse_id}/earnings/corrections", json={**body, "project": theirs}), 404)
    for bad, field in (({"amount_minor": 0}, "amount_minor"), ({"amount_minor": 1.5}, "amount_minor"),
                       ({"currency": "usd"}, "currency"), ({"currency": "DOLLAR"}, "currency"),
                       ({"reason": ""}, "reason"), ({"reason": "   "}, "reason"),
                       ({"amount_minor": 10**13}, "amount_minor")):
        assert field_of(tenant.owner.post(f"/users/{inhouse_id}/earnings/corrections", json={**body, **bad})) == field
    with world.database.reader() as session:
        assert session.scalar(select(func.count()).select_from(PayEntry)) == before  # nothing written
    assert tenant.owner.post(f"/users/{inhouse_id}/earnings/corrections", json=body).status_code == 201

    # Payouts: admins and owners (their organization's annotators only).
    for refused in (tenant.member, shared, tenant.inhouse):
        error_of(refused.get("/payouts"), 403)
    error_of(rival.owner.get("/payouts", params={"org": tenant.slug}), 404)
    theirs_owed = tenant.owner.get("/payouts").json()
    assert theirs_owed and {r["org"] for r in theirs_owed} == {tenant.slug}
    assert inhouse_id in {r["user_id"] for r in tenant.owner.get("/payouts", params={"org": tenant.slug}).json()}
    assert shared_id not in {r["user_id"] for r in theirs_owed}
    assert all(r["org"] == tenant.slug for r in world.admin.get("/payouts", params={"org": tenant.slug}).json())

    # A time without a zone, an end before the start, an unknown parameter: 422 naming it.
    assert field_of(shared.get("/me/earnings", params={"from": "2026-01-01T00:00:00"})) == "from"
    assert field_of(shared.get("/me/earnings", params={"from": "2026-02-01T00:00:00Z",
                                                       "to": "2026-01-01T00:00:00Z"})) == "to"
    assert field_of(shared.get("/me/earnings", params={"since": "2026-01-01T00:00:00Z"})) == "since"
    assert field_of(world.admin.get("/payouts", params={"format": "xlsx"})) == "format"


def test_cost_reports_are_the_customers(world: World) -> None:
    tenant, rival = world.tenant, world.rival
    pid = tenant.project(name="Costed", pay={"currency": "EUR", "per_hour": 2000})["id"]
    for path in (f"/projects/{pid}/cost", f"/projects/{pid}/effective-rate"):
        assert tenant.member.get(path).status_code == 200
        assert world.admin.get(path).status_code == 200
        error_of(rival.owner.get(path), 404)
        assert rival.owner.get(path).json() == rival.owner.get(path.replace(str(pid), "987654321")).json()
        error_of(tenant.annotators[0].get(path), 403)
        error_of(tenant.inhouse.get(path), 403)
