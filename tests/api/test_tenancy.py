"""Neutrality: another tenant's objects look missing, roles are enforced, annotators learn nothing."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.api.conftest import World
from tests.api.helpers import error_of, take
from tests.factories import CLASSIFICATION, Tenant

MISSING = 987_654_321
SECRET_META = {"customer_ref": "ACME-INTERNAL-7731"}


@pytest.fixture(scope="module")
def owned(world: World) -> dict[str, Any]:
    """A tenant project with a batch, a gold task with metadata, a lease and a result."""
    tenant = world.tenant
    project = tenant.project(name="Sentiment", redundancy={"min": 1, "max": 1})
    pid = project["id"]
    batch = tenant.owner.post(f"/projects/{pid}/batches", json={"name": "b1"}).json()
    tenant.add_tasks(pid, [
        {"data": {"text": "one"}, "unique_id": "u1", "metadata": SECRET_META, "gold": {"label": "positive"}},
        {"data": {"text": "two"}, "unique_id": "u2", "metadata": SECRET_META},
        {"data": {"text": "three"}, "unique_id": "u3", "batch": "b1"},
        {"data": {"text": "four"}, "unique_id": "u4"},
    ])
    done = take(tenant.annotators[0], pid)
    assert tenant.annotators[0].post(f"/assignments/{done['id']}/submit",
                                     json={"answer": {"label": "positive"}}).status_code == 201
    held = take(tenant.annotators[1], pid)
    return {"project": project, "batch": batch, "done": done, "held": held}


def _same_as_missing(response: httpx.Response, missing: httpx.Response) -> None:
    assert response.status_code == 404, response.text
    assert missing.status_code == 404, missing.text
    assert response.json() == missing.json()
    error_of(response, 404)


def _project_routes(pid: int) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        ("GET", f"/projects/{pid}", {}),
        ("GET", f"/projects/{pid}/tasks", {}),
        ("POST", f"/projects/{pid}/tasks", {"json": [{"data": {"text": "x"}}]}),
        ("GET", f"/projects/{pid}/results", {}),
        ("GET", f"/projects/{pid}/export", {}),
        ("GET", f"/projects/{pid}/export", {"params": {"format": "csv"}}),
        ("GET", f"/projects/{pid}/stats", {}),
        ("GET", f"/projects/{pid}/batches", {}),
        ("POST", f"/projects/{pid}/batches", {"json": {"name": "mine"}}),
        ("GET", f"/projects/{pid}/quality", {}),
        ("POST", f"/projects/{pid}/quality/refit", {}),
        ("GET", f"/projects/{pid}/cost", {}),
        ("GET", f"/projects/{pid}/effective-rate", {}),
    ]


@pytest.mark.parametrize("who", ["owner", "member", "inhouse"])
def test_another_tenants_project_is_404_like_a_missing_one(world: World, owned: dict[str, Any], who: str) -> None:
    client: httpx.Client = getattr(world.rival, who)
    pid = owned["project"]["id"]
    for (method, path, kwargs), (_, missing_path, _) in zip(_project_routes(pid), _project_routes(MISSING),
                                                           strict=True):
        _same_as_missing(client.request(method, path, **kwargs), client.request(method, missing_path, **kwargs))
    _same_as_missing(client.post(f"/projects/{pid}/assignments"), client.post(f"/projects/{MISSING}/assignments"))
    assert world.tenant.owner.get(f"/projects/{pid}/stats").json()["tasks_total"] == 4  # nothing imported


@pytest.mark.parametrize("who", ["owner", "member", "inhouse"])
def test_another_tenants_task_and_batch_are_404(world: World, owned: dict[str, Any], who: str) -> None:
    client: httpx.Client = getattr(world.rival, who)
    task_id = owned["done"]["task"]["id"]
    _same_as_missing(client.get(f"/tasks/{task_id}"), client.get(f"/tasks/{MISSING}"))
    bid = owned["batch"]["id"]
    _same_as_missing(client.get(f"/batches/{bid}"), client.get(f"/batches/{MISSING}"))
    for action in ("finalize", "pause", "resume", "cancel"):
        _same_as_missing(client.post(f"/batches/{bid}/{action}"), client.post(f"/batches/{MISSING}/{action}"))
    assert world.tenant.owner.get(f"/batches/{bid}").json()["status"] == "staging"


def test_someone_elses_assignment_is_404(world: World, owned: dict[str, Any]) -> None:
    held = owned["held"]["id"]
    for client in (world.rival.annotators[0], world.tenant.annotators[2], world.tenant.inhouse, world.rival.inhouse):
        for action, kwargs in (("submit", {"json": {"answer": {"label": "negative"}}}), ("skip", {}), ("renew", {})):
            _same_as_missing(client.post(f"/assignments/{held}/{action}", **kwargs),
                             client.post(f"/assignments/{MISSING}/{action}", **kwargs))
    # The holder's lease is untouched.
    renewed = world.tenant.annotators[1].post(f"/assignments/{held}/renew")
    assert renewed.status_code == 200, renewed.text


def test_customers_staff_may_not_work_and_annotators_may_not_read(world: World, owned: dict[str, Any]) -> None:
    tenant, pid = world.tenant, owned["project"]["id"]
    for annotator in (tenant.inhouse, tenant.annotators[0]):
        for method, path, kwargs in _project_routes(pid)[1:]:
            error_of(annotator.request(method, path, **kwargs), 403)
        error_of(annotator.post("/projects", json={"name": "mine", "task": CLASSIFICATION}), 403)
        error_of(annotator.get(f"/batches/{owned['batch']['id']}"), 403)
        error_of(annotator.post(f"/batches/{owned['batch']['id']}/pause"), 403)
    for staff in (tenant.owner, tenant.member, world.admin):
        error_of(staff.post(f"/projects/{pid}/assignments"), 403)
    assert tenant.member.get(f"/projects/{pid}/export").status_code == 200
    assert world.admin.get(f"/projects/{pid}/stats").status_code == 200


def _no_customer_secrets(payload: Any, tenant: Tenant) -> None:
    text = json.dumps(payload, ensure_ascii=False).lower()
    for secret in (tenant.slug, "acme-internal", "customer_ref", "gold", "metadata", "positive\"}"):
        assert secret not in text, (secret, payload)


def test_annotators_never_see_the_customer(world: World) -> None:
    tenant = world.tenant
    # Gold is served (almost) every time: whichever task comes, it must look the same.
    project = tenant.project(name="Sentiment", instructions="Pick one.", redundancy={"min": 2, "max": 2},
                             gold={"share": 0.99})
    pid = project["id"]
    tenant.add_tasks(pid, [{"data": {"text": "hello"}, "metadata": SECRET_META, "gold": {"label": "positive"}},
                           {"data": {"text": "hello"}, "metadata": SECRET_META}])
    for annotator in (tenant.annotators[0], tenant.inhouse):
        taken = take(annotator, pid)
        assert set(taken) == {"id", "project_id", "task", "expires_at"}
        assert taken["task"] == {"id": taken["task"]["id"], "data": {"text": "hello"}}
        _no_customer_secrets(taken, tenant)

        seen = annotator.get(f"/projects/{pid}")
        assert seen.status_code == 200
        assert seen.json() == {"id": pid, "name": project["work_name"], "task": project["task"],
                               "instructions": "Pick one.", "pay": {}}
        assert project["work_name"] and "Sentiment" not in project["work_name"]

        task = annotator.get(f"/tasks/{taken['task']['id']}")
        assert task.status_code == 200
        assert task.json() == taken["task"]

        listed = annotator.get("/projects")
        assert listed.status_code == 200
        mine = [p for p in listed.json() if p["id"] == pid]
        assert mine == [seen.json()]
        for other in listed.json():
            assert set(other) == {"id", "name", "task", "instructions", "pay"}
    # An annotator who never held the task cannot read it.
    _same_as_missing(tenant.annotators[1].get(f"/tasks/{taken['task']['id']}"),
                     tenant.annotators[1].get(f"/tasks/{MISSING}"))


def test_org_workforce_projects_are_not_served_to_the_shared_workforce(world: World) -> None:
    tenant, rival = world.tenant, world.rival
    project = tenant.project(name="Internal", workforce="org")
    pid = project["id"]
    tenant.add_tasks(pid, [{"data": {"text": "private"}}])
    for outsider in (tenant.annotators[0], rival.annotators[0], rival.inhouse):
        _same_as_missing(outsider.post(f"/projects/{pid}/assignments"),
                         outsider.post(f"/projects/{MISSING}/assignments"))
        _same_as_missing(outsider.get(f"/projects/{pid}"), outsider.get(f"/projects/{MISSING}"))
        assert pid not in [p["id"] for p in outsider.get("/projects").json()]
    assert take(tenant.inhouse, pid)["task"]["data"] == {"text": "private"}


def test_inhouse_annotators_of_another_org_get_404_on_shared_projects(world: World) -> None:
    project = world.tenant.project(name="Shared one")
    pid = project["id"]
    world.tenant.add_tasks(pid, [{"data": {"text": "x"}}])
    _same_as_missing(world.rival.inhouse.post(f"/projects/{pid}/assignments"),
                     world.rival.inhouse.post(f"/projects/{MISSING}/assignments"))
    assert pid not in [p["id"] for p in world.rival.inhouse.get("/projects").json()]
    assert pid in [p["id"] for p in world.rival.annotators[0].get("/projects").json()]


def test_staff_list_only_their_own_projects(world: World) -> None:
    mine = world.tenant.project(name="Listed")["id"]
    theirs = world.rival.project(name="Theirs")["id"]
    for client in (world.tenant.owner, world.tenant.member):
        ids = [p["id"] for p in client.get("/projects").json()]
        assert mine in ids and theirs not in ids
        assert {p["org"] for p in client.get("/projects").json()} == {"acme"}
    assert {mine, theirs} <= {p["id"] for p in world.admin.get("/projects").json()}


def test_staff_naming_another_organization_for_a_new_project_get_404_and_nothing_is_made(world: World) -> None:
    before = {p["id"] for p in world.tenant.owner.get("/projects").json()}
    body = {"name": "Misplaced", "task": CLASSIFICATION}
    for slug in (world.rival.slug, "no-such-org"):
        refused = world.tenant.owner.post("/projects", json={**body, "org": slug})
        assert error_of(refused, 404)["message"] == f"organization {slug!r} not found"
    assert {p["id"] for p in world.tenant.owner.get("/projects").json()} == before
    assert {p["name"] for p in world.rival.owner.get("/projects").json()}.isdisjoint({"Misplaced"})
    own = world.tenant.owner.post("/projects", json={**body, "org": world.tenant.slug})
    assert own.status_code == 201 and own.json()["org"] == world.tenant.slug


WALL_ORG, WALL_SLUG, WALL_PROJECT = "Zanzibar Holdings", "zanzibar-holdings", "Quarterly Churn Secret"


def _reached(text: str) -> None:
    for secret in (WALL_ORG, WALL_SLUG, WALL_PROJECT):
        assert secret.lower() not in text.lower(), (secret, text[:2000])


def _path_for(template: str, ids: dict[str, int]) -> str:
    import re

    return re.sub(r"\{(\w+)\}", lambda m: str(ids.get(m.group(1), MISSING)), template)


def test_the_wall_every_path_an_annotator_reaches(world: World, tmp_path: Any) -> None:
    """Every API path (from the OpenAPI document) and every page an annotator can call, with the
    ids they know: none answers with the organization's name or slug or the project's real name."""
    from qistas.domain import users as user_rules
    from qistas.domain.security import hash_password
    from qistas.web.pages import admin, auth, console, review, work
    from tests.factories import client_for, new_user

    with world.database.writer.begin() as session:
        org_id = user_rules.create_org(session, name=WALL_ORG, slug=WALL_SLUG).id
    _, owner_token = new_user(world.database, email="boss@wall.test", role="owner", org_id=org_id)
    with world.database.writer.begin() as session:
        crowd = user_rules.create_user(session, email="walker@crowd.test", role="annotator", is_reviewer=True)
        crowd.password_hash = hash_password("a long enough password 1")
        crowd_token = user_rules.create_token(session, user=crowd)
        staff = user_rules.create_user(session, email="staff7@inhouse.test", role="annotator", org_id=org_id,
                                       is_reviewer=True)
        staff_token = user_rules.create_token(session, user=staff)
        crowd_id, staff_id = crowd.id, staff.id
    with client_for(world.server.url, owner_token) as owner:
        made = owner.post("/projects", json={"name": WALL_PROJECT, "task": CLASSIFICATION,
                                             "instructions": "Pick one.", "redundancy": {"min": 2, "max": 2},
                                             "review": {"share": 1}})
        assert made.status_code == 201, made.text
        pid = made.json()["id"]
        assert owner.post(f"/projects/{pid}/batches", json={"name": WALL_PROJECT}).status_code == 201
        owner.post(f"/projects/{pid}/tasks", json=[{"data": {"text": "a"}, "metadata": SECRET_META}] * 3)
        spec = httpx.get(world.url + "/api/v1/openapi.json").json()["paths"]
    for user_id, token in ((crowd_id, crowd_token), (staff_id, staff_token)):
        with client_for(world.server.url, token) as annotator:
            lease = take(annotator, pid)
            ids = {"project_id": pid, "task_id": lease["task"]["id"], "assignment_id": lease["id"],
                   "user_id": user_id}
            _reached(json.dumps(lease))
            walked, answered = 0, 0
            for template, methods in spec.items():
                path = _path_for(template.removeprefix("/api/v1"), ids)
                for method in methods:
                    if method not in ("get", "post", "put", "patch", "delete"):
                        continue
                    if template.endswith(("/skip", "/submit", "/password")) or "{token_id}" in template:
                        continue
                    answer = annotator.request(method.upper(), path, json={} if method != "get" else None)
                    _reached(answer.text)
                    walked += 1
                    answered += answer.status_code < 300
            assert walked > 40 and answered >= 8, (walked, answered)
            annotator.post(f"/assignments/{lease['id']}/submit", json={"answer": {"label": "positive"}})
    # The pages, signed in as the shared annotator (also a reviewer).
    with httpx.Client(base_url=world.url, follow_redirects=True, timeout=30) as browser:
        form = browser.get("/login")
        csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
        browser.post("/login", data={"csrf": csrf, "email": "walker@crowd.test",
                                     "password": "a long enough password 1", "next": ""})
        home = browser.get("/work")
        assert home.status_code == 200 and f"/work/{pid}" in home.text
        pages = 0
        for module in (admin, auth, console, review, work):
            for route in module.router.routes:
                if "GET" not in getattr(route, "methods", ()):
                    continue
                answer = browser.get(_path_for(route.path, {"project_id": pid, "task_id": lease["task"]["id"]}))
                _reached(answer.text)
                pages += 1
        assert pages > 5
