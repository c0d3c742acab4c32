"""Organizations, users, tokens and /me: who may create whom, and what is stored."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from qistas.db.models import ApiToken, Base, User
from tests.api.conftest import World
from tests.api.helpers import error_of, field_of
from tests.factories import client_for


def test_admin_creates_and_lists_orgs(world: World) -> None:
    created = world.admin.post("/orgs", json={"name": "Initech", "slug": "initech"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"id", "name", "slug", "created_at"}
    assert (body["name"], body["slug"]) == ("Initech", "initech")
    slugs = [o["slug"] for o in world.admin.get("/orgs").json()]
    assert {"acme", "globex", "initech"} <= set(slugs)


def test_only_admins_manage_orgs(world: World) -> None:
    for client in (world.tenant.owner, world.tenant.member, world.tenant.annotators[0]):
        error_of(client.post("/orgs", json={"name": "Mine", "slug": "mine"}), 403)
        error_of(client.get("/orgs"), 403)


def test_org_slug_is_validated(world: World) -> None:
    assert field_of(world.admin.post("/orgs", json={"name": "Bad", "slug": "Not A Slug"})) == "slug"
    assert field_of(world.admin.post("/orgs", json={"name": "Bad", "slug": "ok", "extra": 1})) == "extra"


def test_me(world: World) -> None:
    me = world.tenant.owner.get("/me")
    assert me.status_code == 200
    assert me.json() == {"id": me.json()["id"], "email": "owner@acme.test", "role": "owner", "org": "acme",
                         "is_reviewer": False, "is_active": True}
    worker = world.tenant.annotators[0].get("/me").json()
    assert worker["role"] == "annotator" and worker["org"] is None


def test_owner_creates_people_of_their_own_org(world: World) -> None:
    member = world.tenant.owner.post("/users", json={"email": "New.Member@Acme.test", "role": "member"})
    assert member.status_code == 201, member.text
    assert member.json()["org"] == "acme"
    assert member.json()["email"] == "new.member@acme.test"
    named = world.tenant.owner.post("/users", json={"email": "ann2@acme.test", "role": "annotator", "org": "acme"})
    assert named.status_code == 201, named.text
    assert named.json()["org"] == "acme"
    listed = {u["email"] for u in world.tenant.owner.get("/users").json()["items"]}
    assert {"owner@acme.test", "new.member@acme.test", "ann2@acme.test"} <= listed
    assert not any(email.endswith("globex.test") or "crowd" in email for email in listed)


def test_admin_creates_users_anywhere(world: World) -> None:
    owner = world.admin.post("/users", json={"email": "boss@globex.test", "role": "owner", "org": "globex"})
    assert owner.status_code == 201 and owner.json()["org"] == "globex"
    crowd = world.admin.post("/users", json={"email": "crowd9@crowd.test", "role": "annotator"})
    assert crowd.status_code == 201 and crowd.json()["org"] is None
    admin = world.admin.post("/users", json={"email": "op2@instance.test", "role": "admin"})
    assert admin.status_code == 201 and admin.json()["role"] == "admin"
    everyone = {u["email"] for u in world.admin.get("/users", params={"limit": 1000}).json()["items"]}
    assert {"boss@globex.test", "crowd9@crowd.test", "owner@acme.test"} <= everyone


def _all_pages(client: httpx.Client, **params: object) -> list[dict[str, object]]:
    found, after = [], None
    while True:
        page = client.get("/users", params={**params, **({"after": after} if after is not None else {})})
        assert page.status_code == 200, page.text
        found.extend(page.json()["items"])
        after = page.json()["next"]
        if after is None:
            return found


def test_users_are_listed_a_page_at_a_time(world: World) -> None:
    for n in range(5):
        made = world.tenant.owner.post("/users", json={"email": f"Paged{n}@Acme.test", "role": "annotator",
                                                        "org": "acme"})
        assert made.status_code == 201, made.text
    whole = world.tenant.owner.get("/users", params={"limit": 1000}).json()
    assert whole["next"] is None
    paged = _all_pages(world.tenant.owner, limit=2)
    assert paged == whole["items"]  # the same users, in the same (id) order, none twice
    assert [u["id"] for u in paged] == sorted(u["id"] for u in paged)
    assert {u["org"] for u in paged} == {"acme"}  # an owner's pages hold their organization only
    first = world.tenant.owner.get("/users", params={"limit": 2}).json()
    assert len(first["items"]) == 2 and first["next"] == first["items"][-1]["id"]
    # Found by a part of the address, in any case; a wildcard of SQL's LIKE is a plain character.
    found = _all_pages(world.tenant.owner, email="PAGED", limit=2)
    assert sorted(u["email"] for u in found) == [f"paged{n}@acme.test" for n in range(5)]
    assert world.tenant.owner.get("/users", params={"email": "paged_%"}).json() == {"items": [], "next": None}
    assert _all_pages(world.admin, email="paged3@") == [u for u in paged if u["email"] == "paged3@acme.test"]
    # Another tenant's owner finds none of them.
    assert world.rival.owner.get("/users", params={"email": "paged"}).json()["items"] == []


def test_a_page_of_users_out_of_bounds_is_refused(world: World) -> None:
    assert field_of(world.admin.get("/users", params={"limit": 0})) == "limit"
    assert field_of(world.admin.get("/users", params={"after": -1})) == "after"
    assert field_of(world.admin.get("/users", params={"email": ""})) == "email"
    assert field_of(world.admin.get("/users", params={"email": "x" * 321})) == "email"
    capped = world.admin.get("/users", params={"limit": 10**6})
    assert capped.status_code == 200 and len(capped.json()["items"]) <= 1000


def test_wrong_role_creating_users_is_403(world: World) -> None:
    owner = world.tenant.owner
    error_of(owner.post("/users", json={"email": "root@acme.test", "role": "admin"}), 403)
    error_of(world.tenant.member.post("/users", json={"email": "m2@acme.test", "role": "member"}), 403)
    error_of(world.tenant.member.get("/users"), 403)
    error_of(world.tenant.inhouse.post("/users", json={"email": "m3@acme.test", "role": "annotator"}), 403)
    error_of(world.tenant.annotators[0].post("/users", json={"email": "m4@crowd.test", "role": "annotator"}), 403)
    error_of(world.tenant.annotators[0].get("/users"), 403)


def test_owner_naming_another_org_gets_what_a_missing_org_gets(world: World) -> None:
    owner = world.tenant.owner
    missing = owner.post("/users", json={"email": "spy@acme.test", "role": "member", "org": "no-such-org"})
    error_of(missing, 404)
    rival = owner.post("/users", json={"email": "spy@acme.test", "role": "member", "org": "globex"})
    error_of(rival, 404)
    assert rival.json()["error"] == {**missing.json()["error"], "message": "organization 'globex' not found"}


def test_user_input_is_validated(world: World) -> None:
    owner = world.tenant.owner
    assert field_of(owner.post("/users", json={"email": "nobody", "role": "member"})) == "email"
    assert field_of(owner.post("/users", json={"email": "r@acme.test", "role": "king"})) == "role"
    assert field_of(owner.post("/users", json={"email": "p@acme.test", "role": "member", "password": "short"})) \
        == "password"
    assert field_of(world.admin.post("/users", json={"email": "o@nowhere.test", "role": "owner"})) == "org"
    error_of(owner.post("/users", json={"email": "owner@acme.test", "role": "member"}), 409)


def test_tokens(world: World) -> None:
    owner, member = world.tenant.owner, world.tenant.member
    member_id = member.get("/me").json()["id"]
    owner_id = owner.get("/me").json()["id"]
    issued = owner.post(f"/users/{member_id}/tokens", json={"name": "ci"})
    assert issued.status_code == 201, issued.text
    assert list(issued.json()) == ["token"]
    with client_for(world.url, issued.json()["token"]) as as_member:
        assert as_member.get("/me").json()["email"] == "member@acme.test"
    own = member.post(f"/users/{member_id}/tokens")
    assert own.status_code == 201
    assert own.json()["token"] != issued.json()["token"]
    error_of(member.post(f"/users/{owner_id}/tokens"), 403)
    rival_owner_id = world.rival.owner.get("/me").json()["id"]
    worker_id = world.tenant.annotators[0].get("/me").json()["id"]
    missing = owner.post("/users/987654/tokens")
    for other in (rival_owner_id, worker_id):
        response = owner.post(f"/users/{other}/tokens")
        assert error_of(response, 404) == error_of(missing, 404)
    assert world.admin.post(f"/users/{rival_owner_id}/tokens").status_code == 201


def test_passwords_and_tokens_are_stored_only_as_hashes(world: World) -> None:
    password = "correct horse battery staple"
    created = world.tenant.owner.post("/users", json={"email": "hashed@acme.test", "role": "member",
                                                      "password": password})
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    token = world.tenant.owner.post(f"/users/{user_id}/tokens").json()["token"]
    with httpx.Client(base_url=world.api, headers={"Authorization": f"Bearer {token}"}) as as_user:
        assert as_user.get("/me").json()["id"] == user_id

    with world.database.reader() as session:
        user = session.get(User, user_id)
        assert user is not None and user.password_hash is not None
        assert user.password_hash.startswith("$argon2id$")
        assert password not in user.password_hash
        hashes = session.scalars(select(ApiToken.token_hash).where(ApiToken.user_id == user_id)).all()
        assert len(hashes) == 1 and token not in hashes[0]
        # No column of any table holds either secret in clear.
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)):
                cells = " ".join(str(value) for value in row)
                assert token not in cells, table.name
                assert token.removeprefix("qst_") not in cells, table.name
                assert password not in cells, table.name
