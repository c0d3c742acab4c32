"""Pools, skills and routing: who may work on a project, through the real API."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from qistas.db.models import Assignment, Pool, PoolMember, User, UserSkill
from qistas.domain.workforce import language_tag
from tests.api.conftest import World
from tests.api.helpers import error_of, field_of, take, take_if_any
from tests.factories import client_for, new_user

MISSING = 987_654_321


def settle(world: World) -> None:
    """Wait out the token cache, which carries each user's work profile."""
    time.sleep(world.settings.token_cache_seconds + 0.1)


def pool(client: httpx.Client, name: str, kind: str, **fields: Any) -> dict[str, Any]:
    made = client.post("/pools", json={"name": name, "kind": kind, **fields})
    assert made.status_code == 201, made.text
    return made.json()  # type: ignore[no-any-return]


def skills(client: httpx.Client, user_id: int, *items: tuple[str, str, int]) -> httpx.Response:
    return client.put(f"/users/{user_id}/skills",
                      json={"skills": [{"kind": k, "tag": t, "level": n} for k, t, n in items]})


@pytest.mark.parametrize(("raw", "normal"), [
    ("ar-eg", "ar-EG"), ("AR-SA", "ar-SA"), ("ar", "ar"), ("zh-hant-tw", "zh-Hant-TW"), ("es-419", "es-419"),
    ("ar_EG", None), ("a", None), ("arab-EG", None), ("ar-EGY", None), ("ar-EG-x", None), ("", None),
])
def test_language_tags_are_checked_and_normalised(raw: str, normal: str | None) -> None:
    assert language_tag(raw) == normal


def test_bad_skills_are_422_and_nothing_is_written(world: World) -> None:
    worker_id = world.tenant.annotator_ids[0]
    assert skills(world.admin, worker_id, ("language", "ar-eg", 4)).json()["skills"] == [
        {"kind": "language", "tag": "ar-EG", "level": 4}]
    for bad in (("language", "ar_EG", 3), ("language", "arabic", 3), ("dialect", "ar-EG", 3),
                ("domain", "Med ical", 3), ("task_type", "nope", 3), ("language", "ar-SA", 0),
                ("language", "ar-SA", 6)):
        refused = skills(world.admin, worker_id, ("language", "ar-MA", 2), bad)
        assert field_of(refused).startswith("skills[1]"), refused.text
    assert world.admin.get(f"/users/{worker_id}/skills").json()["skills"] == [
        {"kind": "language", "tag": "ar-EG", "level": 4}]
    with world.database.reader() as session:
        assert session.scalar(select(func.count()).select_from(UserSkill)
                              .where(UserSkill.user_id == worker_id)) == 1
    skills(world.admin, worker_id)  # none again


def test_routing_serves_only_eligible_annotators(world: World) -> None:
    tenant = world.tenant
    egypt, saudi, nobody = tenant.annotators
    egypt_id, saudi_id, _ = tenant.annotator_ids
    dialects = pool(world.admin, "Arabic dialects", "vendor")
    for user_id in (egypt_id, saudi_id):
        assert world.admin.put(f"/pools/{dialects['id']}/members/{user_id}", json={}).status_code == 204
    assert skills(world.admin, egypt_id, ("language", "ar-EG", 4), ("domain", "medical", 3)).status_code == 200
    assert skills(world.admin, saudi_id, ("language", "ar-SA", 5)).status_code == 200
    project = tenant.project(name="Egyptian medical", routing={
        "pools": [dialects["id"]], "all": [{"kind": "language", "tag": "ar-eg", "min_level": 3}]})
    assert project["routing"] == {"pools": [dialects["id"]], "any": [], "exams": [],
                                  "all": [{"kind": "language", "tag": "ar-EG", "min_level": 3}]}
    pid = project["id"]
    tenant.add_tasks(pid, [{"data": {"text": f"t{n}"}} for n in range(6)])
    settle(world)
    # The ineligible: not in the pool (nobody, the in-house annotator), in it without the dialect (saudi).
    for outsider in (saudi, nobody, tenant.inhouse):
        error_of(outsider.post(f"/projects/{pid}/assignments"), 404)
        assert pid not in [p["id"] for p in outsider.get("/projects").json()]
        error_of(outsider.get(f"/projects/{pid}"), 404)
    assert take(egypt, pid)["project_id"] == pid
    # Any of: a language without a region is met by its dialects.
    wide = tenant.project(name="Any Arabic", routing={"any": [{"kind": "language", "tag": "ar", "min_level": 5},
                                                              {"kind": "domain", "tag": "legal"}]})
    tenant.add_tasks(wide["id"], [{"data": {"text": "x"}}, {"data": {"text": "y"}}])
    assert take(saudi, wide["id"])["project_id"] == wide["id"]
    error_of(egypt.post(f"/projects/{wide['id']}/assignments"), 404)  # ar-EG at 4 < 5, no legal
    # Skills changed: eligibility follows within the token cache's second.
    assert skills(world.admin, saudi_id, ("language", "ar-SA", 5), ("language", "ar-EG", 3)).status_code == 200
    settle(world)
    assert take(saudi, pid)["project_id"] == pid


def test_concurrent_takes_never_serve_the_ineligible(world: World) -> None:
    tenant = world.tenant
    team = pool(tenant.owner, "Acme night shift", "team")
    assert team["org"] == tenant.slug
    users = [new_user(world.database, email=f"rush{n}@crowd.test", role="annotator")[1] for n in range(6)]
    clients = [client_for(world.server.url, token) for token in users]
    try:
        project = tenant.project(name="Guarded", redundancy={"min": 3, "max": 3},
                                 routing={"all": [{"kind": "domain", "tag": "code", "min_level": 2}]})
        pid = project["id"]
        tenant.add_tasks(pid, [{"data": {"text": f"g{n}"}} for n in range(4)])
        # Half of them have the skill at level 2, half at level 1.
        for n, client in enumerate(clients):
            me = client.get("/me").json()["id"]
            assert skills(world.admin, me, ("domain", "code", 2 if n % 2 == 0 else 1)).status_code == 200
        settle(world)

        def rush(n: int) -> list[int]:
            codes = []
            for _ in range(3):
                codes.append(clients[n].post(f"/projects/{pid}/assignments").status_code)
            return codes

        with ThreadPoolExecutor(6) as pool_:
            found = list(pool_.map(rush, range(6)))
        for n, codes in enumerate(found):
            assert set(codes) == ({201} if n % 2 == 0 else {404}), (n, codes)
        with world.database.reader() as session:
            holders = set(session.scalars(select(Assignment.annotator_id).where(Assignment.project_id == pid)))
            level_one = {session.scalar(select(User.id).where(User.email == f"rush{n}@crowd.test"))
                         for n in range(1, 6, 2)}
        assert len(holders) == 3 and not holders & level_one
    finally:
        for client in clients:
            client.close()


def test_priority_orders_an_annotators_projects(world: World) -> None:
    tenant = world.tenant
    low = tenant.project(name="Low", priority=-5)["id"]
    high = tenant.project(name="High", priority=50)["id"]
    middle = tenant.project(name="Middle", priority=10)["id"]
    listed = [p["id"] for p in tenant.annotators[0].get("/projects").json()]
    mine = [pid for pid in listed if pid in (low, high, middle)]
    assert mine == [high, middle, low]
    priorities = [p["priority"] for p in tenant.owner.get("/projects").json()]
    assert priorities  # staff see projects in id order, with their priority
    assert world.tenant.owner.patch(f"/projects/{low}", json={"priority": 99}).status_code == 200
    listed = [p["id"] for p in tenant.annotators[0].get("/projects").json() if p["id"] in (low, high, middle)]
    assert listed == [low, high, middle]


def test_pool_managers_manage_their_pool_only(world: World) -> None:
    tenant, rival = world.tenant, world.rival
    manager_user, manager_token = new_user(world.database, email="lead@vendor.test", role="annotator")
    mine = pool(world.admin, "Vendor North", "vendor")
    theirs = pool(world.admin, "Vendor South", "vendor")
    assert world.admin.put(f"/pools/{mine['id']}/members/{manager_user.id}", json={"manager": True}).status_code == 204
    worker = tenant.annotator_ids[1]
    with client_for(world.server.url, manager_token) as manager:
        assert [p["id"] for p in manager.get("/pools").json()] == [mine["id"]]
        assert manager.put(f"/pools/{mine['id']}/members/{worker}", json={}).status_code == 204
        members = manager.get(f"/pools/{mine['id']}/members").json()["items"]
        assert {m["user_id"] for m in members} == {manager_user.id, worker}
        assert skills(manager, worker, ("language", "ar-LB", 3)).status_code == 200
        # Another pool, a user outside their pools, naming a manager: refused, nothing written.
        error_of(manager.get(f"/pools/{theirs['id']}/members"), 404)
        error_of(manager.put(f"/pools/{theirs['id']}/members/{worker}", json={}), 404)
        error_of(skills(manager, tenant.annotator_ids[0], ("language", "ar-LB", 3)), 404)
        error_of(manager.put(f"/pools/{mine['id']}/members/{tenant.annotator_ids[2]}", json={"manager": True}), 403)
        error_of(manager.put(f"/pools/{mine['id']}/members/{MISSING}", json={}), 404)
        error_of(manager.post("/pools", json={"name": "Mine now", "kind": "vendor"}), 403)
    # An organization's pools: its owners manage them; a member may not; another tenant sees nothing.
    acme = pool(tenant.owner, "Acme reviewers", "team")
    error_of(tenant.member.put(f"/pools/{acme['id']}/members/{MISSING}", json={}), 403)
    for outsider in (rival.owner, rival.member, rival.inhouse, tenant.annotators[0]):
        error_of(outsider.get(f"/pools/{acme['id']}"), 404)
        error_of(outsider.get(f"/pools/{acme['id']}/members"), 404)
        assert acme["id"] not in [p["id"] for p in outsider.get("/pools").json()]
    # A shared annotator cannot join an organization's pool; a customer cannot see a vendor's people.
    error_of(tenant.owner.put(f"/pools/{acme['id']}/members/{worker}", json={}), 404)
    error_of(tenant.owner.get(f"/pools/{mine['id']}/members"), 403)
    # A project names only its own organization's pools and the instance's.
    error_of(rival.owner.post("/projects", json={"name": "x", "task": {"type": "classification",
             "labels": ["a", "b"], "text_field": "text"}, "routing": {"pools": [acme["id"]]}}), 404)
    with world.database.reader() as session:
        assert session.scalar(select(func.count()).select_from(PoolMember)
                              .where(PoolMember.pool_id == theirs["id"])) == 0


CSV_OK = ("email,skills,manager\n"
          "amal@dialects.test,language:ar-EG=4;domain:medical=2,no\n"
          "badr@dialects.test,language:ar-ma=3,\n")


def test_csv_import_of_annotators(world: World) -> None:
    dialects = pool(world.admin, "Maghreb team", "vendor")
    url = f"/pools/{dialects['id']}/members/import"
    headers = {"content-type": "text/csv"}
    bad_rows = [
        CSV_OK + "carl@dialects.test,language:ar_MA=3,\n",  # ill-formed tag
        CSV_OK + "carl@dialects.test,language:ar-MA=9,\n",  # level out of range
        CSV_OK + "not-an-email,,\n",
        CSV_OK + "amal@dialects.test,,\n",  # listed twice
    ]
    for body in bad_rows:
        refused = world.admin.post(url, content=body.encode(), headers=headers)
        assert error_of(refused, 422)["details"]["row"] == 4, refused.text
        assert "row 4" in refused.json()["error"]["message"]
    error_of(world.admin.post(url, content=b"mail,skills\nx@y.test,\n", headers=headers), 422)
    with world.database.reader() as session:
        assert session.scalar(select(func.count()).select_from(User)
                              .where(User.email.like("%@dialects.test"))) == 0
        assert session.scalar(select(func.count()).select_from(PoolMember)
                              .where(PoolMember.pool_id == dialects["id"])) == 0
    done = world.admin.post(url, content=CSV_OK.encode(), headers=headers)
    assert done.status_code == 201, done.text
    assert done.json() == {"rows": 2, "created": 2}
    members = {m["email"]: m for m in world.admin.get(f"/pools/{dialects['id']}/members").json()["items"]}
    assert members["badr@dialects.test"]["skills"] == [{"kind": "language", "tag": "ar-MA", "level": 3}]
    assert {"kind": "domain", "tag": "medical", "level": 2} in members["amal@dialects.test"]["skills"]
    with world.database.reader() as session:
        found = session.scalars(select(Pool).where(Pool.id == dialects["id"])).one()
        assert found.kind == "vendor" and found.org_id is None
    # Customers may not import into an instance pool; an annotator does not even see it.
    error_of(world.tenant.owner.post(url, content=CSV_OK.encode(), headers=headers), 403)
    error_of(world.tenant.annotators[0].post(url, content=CSV_OK.encode(), headers=headers), 404)


def test_bad_routing_is_422_and_changes_nothing(world: World) -> None:
    tenant = world.tenant
    project = tenant.project(name="Routing checks")
    pid = project["id"]
    for routing, field in (
        ({"all": [{"kind": "language", "tag": "ar__EG"}]}, "routing.all[0]"),
        ({"any": [{"kind": "language", "tag": "ar-EG", "min_level": 7}]}, "routing.any[0].min_level"),
        ({"pools": ["one"]}, "routing.pools"),
        ({"who": []}, "routing"),
    ):
        assert field_of(tenant.owner.patch(f"/projects/{pid}", json={"routing": routing})) == field
    error_of(tenant.owner.patch(f"/projects/{pid}", json={"routing": {"pools": [MISSING]}}), 404)
    assert tenant.owner.get(f"/projects/{pid}").json()["routing"] == {"pools": [], "all": [], "any": [], "exams": []}
    take_if_any(tenant.annotators[0], pid)  # still open to everyone: no tasks, no error


def test_a_pools_members_are_listed_a_page_at_a_time(world: World) -> None:
    url = f"/pools/{pool(world.admin, 'Paged crowd', 'vendor')['id']}/members/import"
    rows = "".join(f"paged{n}@pagedcrowd.test,,\n" for n in range(7))
    done = world.admin.post(url, content=("email,skills,manager\n" + rows).encode(),
                            headers={"content-type": "text/csv"})
    assert done.status_code == 201, done.text
    members = url.removesuffix("/import")
    whole = world.admin.get(members, params={"limit": 1000}).json()
    assert len(whole["items"]) == 7 and whole["next"] is None
    paged, after = [], None
    while True:
        page = world.admin.get(members, params={"limit": 3, **({"after": after} if after is not None else {})}).json()
        paged += page["items"]
        after = page["next"]
        if after is None:
            break
    assert paged == whole["items"]  # the same members in user id order, none twice
    found = world.admin.get(members, params={"email": "PAGED3@"}).json()
    assert [m["email"] for m in found["items"]] == ["paged3@pagedcrowd.test"] and found["next"] is None
    assert world.admin.get(members, params={"email": "paged%"}).json()["items"] == []  # no wildcard
    assert field_of(world.admin.get(members, params={"limit": 0})) == "limit"
    assert field_of(world.admin.get(members, params={"email": ""})) == "email"
