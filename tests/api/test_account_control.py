"""Accounts an owner controls: token scopes, expiry, listing and revocation; deactivation;
passwords. Sign-in abuse (throttle, timing, links) is in test_sign_in.py."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, select, update

from qistas.db.engine import Database
from qistas.db.models import ApiToken, Assignment, User, WebSession
from qistas.db.types import utcnow
from qistas.domain.security import verify_password
from qistas.domain.web_sessions import open_session
from tests.api.conftest import World
from tests.api.helpers import error_of, field_of, take
from tests.api.test_engine_processes import serve_processes
from tests.factories import client_for, new_user

TOKEN_FIELDS = {"id", "name", "scope", "created_at", "expires_at", "last_used_at", "revoked_at"}


def me_id(client: httpx.Client) -> int:
    return int(client.get("/me").json()["id"])


def issue(client: httpx.Client, user_id: int, **body: object) -> str:
    made = client.post(f"/users/{user_id}/tokens", json=body)
    assert made.status_code == 201, made.text
    return str(made.json()["token"])


def token_id_of(database: Database, token: str) -> int:
    from qistas.domain.security import hash_token

    with database.reader() as session:
        return int(session.scalar(select(ApiToken.id).where(ApiToken.token_hash == hash_token(token))))


def refused_within(client: httpx.Client, seconds: float) -> float:
    """Poll until the client's token is refused; how long that took."""
    start = time.monotonic()
    while time.monotonic() - start < seconds + 2:
        if client.get("/me").status_code == 401:
            return time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError("the token was still accepted")


# --- scopes -------------------------------------------------------------------------------


def test_a_read_token_only_reads_and_is_refused_403_on_its_own_objects(world: World) -> None:
    owner_id = me_id(world.tenant.owner)
    project = world.tenant.project(name="scoped reads")
    with client_for(world.url, issue(world.tenant.owner, owner_id, name="ro", scope="read")) as reader:
        assert reader.get(f"/projects/{project['id']}").status_code == 200
        refused = error_of(reader.post(f"/projects/{project['id']}/batches", json={"name": "b1"}), 403)
        assert refused["code"] == "token_scope"
        mine = reader.get("/users/me/tokens").json()
        assert error_of(reader.delete(f"/tokens/{mine[0]['id']}"), 403)["code"] == "token_scope"
        # Another tenant's object, with a request the scope allows: 404, like a missing one.
        rival_id = me_id(world.rival.owner)
        assert error_of(reader.get(f"/users/{rival_id}/tokens"), 404)["message"] == "user not found"
        assert world.tenant.owner.get(f"/projects/{project['id']}/batches").json()["items"] == []


def test_an_annotate_token_works_the_loop_and_nothing_else(world: World) -> None:
    project = world.tenant.project(name="scoped loop")
    world.tenant.add_tasks(project["id"], [{"data": {"text": "one"}}])
    worker = world.tenant.annotators[0]
    with client_for(world.url, issue(worker, me_id(worker), scope="annotate")) as annotating:
        lease = take(annotating, project["id"])
        done = annotating.post(f"/assignments/{lease['id']}/submit", json={"answer": {"label": "positive"}})
        assert done.status_code == 201, done.text
        assert annotating.get("/me").status_code == 200
        assert error_of(annotating.post(f"/users/{me_id(worker)}/tokens", json={}), 403)["code"] == "token_scope"
    with client_for(world.url, issue(worker, me_id(worker), scope="read")) as reading:
        assert error_of(reading.post(f"/projects/{project['id']}/assignments"), 403)["code"] == "token_scope"


def test_unknown_scope_and_bad_expiry_name_their_field(world: World) -> None:
    owner_id = me_id(world.tenant.owner)
    assert field_of(world.tenant.owner.post(f"/users/{owner_id}/tokens", json={"scope": "root"})) == "scope"
    assert field_of(world.tenant.owner.post(f"/users/{owner_id}/tokens", json={"expires_in_days": 0})) == \
        "expires_in_days"


def test_an_expired_token_is_refused(world: World) -> None:
    owner_id = me_id(world.tenant.owner)
    token = issue(world.tenant.owner, owner_id, name="short", expires_in_days=1)
    listed = {t["name"]: t for t in world.tenant.owner.get("/users/me/tokens").json()}
    assert listed["short"]["expires_at"] is not None
    with world.database.writer.begin() as session:
        session.execute(update(ApiToken).where(ApiToken.id == token_id_of(world.database, token))
                        .values(expires_at=utcnow() - timedelta(seconds=1)))
    with client_for(world.url, token) as expired:
        assert error_of(expired.get("/me"), 401)["code"] == "unauthorized"


# --- listing and revoking -------------------------------------------------------------------


def test_tokens_are_listed_without_secrets_with_their_last_use(world: World) -> None:
    user, token = new_user(world.database, email="lister@acme.test", role="member", org_id=world.tenant.org_id)
    with client_for(world.url, token) as member:
        assert member.get("/me").status_code == 200
        listed = member.get("/users/me/tokens").json()
    assert len(listed) == 1 and set(listed[0]) == TOKEN_FIELDS
    assert listed[0]["scope"] == "admin" and listed[0]["last_used_at"] is not None
    assert token not in str(listed)
    # The owner sees the member's tokens; a colleague may not; another tenant finds no such user.
    assert world.tenant.owner.get(f"/users/{user.id}/tokens").json()[0]["id"] == listed[0]["id"]
    assert error_of(world.tenant.member.get(f"/users/{user.id}/tokens"), 403)["code"] == "forbidden"
    assert error_of(world.rival.owner.get(f"/users/{user.id}/tokens"), 404)["code"] == "not_found"


def test_last_use_is_written_at_most_once_a_minute(world: World) -> None:
    _, token = new_user(world.database, email="busy@acme.test", role="member", org_id=world.tenant.org_id)
    with client_for(world.url, token) as member:
        member.get("/me")
        first = member.get("/users/me/tokens").json()[0]["last_used_at"]
        time.sleep(0.7)  # past the token cache: looked up again
        for _ in range(3):
            member.get("/me")
        assert member.get("/users/me/tokens").json()[0]["last_used_at"] == first


def test_revoking_another_tenants_token_is_404_and_changes_nothing(world: World) -> None:
    _, token = new_user(world.database, email="kept@globex.test", role="member", org_id=world.rival.org_id)
    token_id = token_id_of(world.database, token)
    assert error_of(world.tenant.owner.delete(f"/tokens/{token_id}"), 404)["message"] == "token not found"
    assert error_of(world.tenant.owner.delete("/tokens/987654321"), 404)["message"] == "token not found"
    with client_for(world.url, token) as kept:
        assert kept.get("/me").status_code == 200


def test_revocation_is_refused_within_a_second_on_another_server_process(
    database: Database, db_url: str, tmp_path: Path
) -> None:
    admin, admin_token = new_user(database, email="root@instance.test", role="admin")
    worker, token = new_user(database, email="gone@crowd.test", role="annotator")
    leaver, leaver_token = new_user(database, email="leaver@crowd.test", role="annotator")
    with serve_processes(db_url, tmp_path, 2) as (first, second), \
            client_for(first, admin_token) as operator, client_for(second, token) as elsewhere, \
            client_for(second, leaver_token) as leaving:
        for _ in range(3):  # remembered by the second process
            assert elsewhere.get("/me").status_code == 200 and leaving.get("/me").status_code == 200
        assert operator.delete(f"/tokens/{token_id_of(database, token)}").status_code == 204
        assert refused_within(elsewhere, 1.0) < 1.0
        assert operator.post(f"/users/{leaver.id}/deactivate").status_code == 200
        assert refused_within(leaving, 1.0) < 1.0
        revoked = operator.get(f"/users/{worker.id}/tokens").json()
        assert revoked[0]["revoked_at"] is not None
        assert admin.id != worker.id


# --- deactivation ---------------------------------------------------------------------------


def test_deactivation_releases_leases_and_ends_sessions_and_tokens(world: World) -> None:
    worker, token = new_user(world.database, email="quitter@crowd.test", role="annotator")
    project = world.tenant.project(name="deactivation")
    world.tenant.add_tasks(project["id"], [{"data": {"text": "only one"}}])
    with world.database.writer.begin() as session:
        open_session(session, user=session.get(User, worker.id), now=utcnow())
    with client_for(world.url, token) as quitter:
        take(quitter, project["id"])
        other = world.tenant.annotators[1]
        assert other.post(f"/projects/{project['id']}/assignments").status_code == 204  # held by the quitter
        stopped = world.admin.post(f"/users/{worker.id}/deactivate")
        assert stopped.status_code == 200, stopped.text
        assert stopped.json() == {"id": worker.id, "is_active": False, "released_leases": 1}
        assert take(other, project["id"])["task"]["data"] == {"text": "only one"}
        assert refused_within(quitter, 1.0) < 1.0
    with world.database.reader() as session:
        assert session.scalar(select(func.count()).select_from(WebSession).where(WebSession.user_id == worker.id)) == 0
        statuses = session.scalars(select(Assignment.status).where(Assignment.annotator_id == worker.id)).all()
    assert statuses == ["released"]
    # Reactivated, the account works again with a new token; the old one stays revoked.
    back = world.admin.post(f"/users/{worker.id}/reactivate")
    assert back.status_code == 200 and back.json()["is_active"] is True
    with client_for(world.url, token) as old:
        assert old.get("/me").status_code == 401
    with client_for(world.url, issue(world.admin, worker.id)) as fresh:
        assert fresh.get("/me").json()["email"] == "quitter@crowd.test"


def test_who_may_deactivate_whom(world: World) -> None:
    colleague, _ = new_user(world.database, email="colleague@acme.test", role="member", org_id=world.tenant.org_id)
    crowd = world.tenant.annotators[2]
    assert error_of(world.tenant.member.post(f"/users/{colleague.id}/deactivate"), 403)["code"] == "forbidden"
    assert error_of(world.rival.owner.post(f"/users/{colleague.id}/deactivate"), 404)["code"] == "not_found"
    # The shared workforce is the instance's: an owner does not reach it.
    assert error_of(world.tenant.owner.post(f"/users/{me_id(crowd)}/deactivate"), 404)["code"] == "not_found"
    assert world.tenant.owner.post(f"/users/{colleague.id}/deactivate").status_code == 200
    assert world.tenant.owner.post(f"/users/{colleague.id}/reactivate").status_code == 200


def owner_of_new_org(world: World, slug: str) -> tuple[int, str]:
    assert world.admin.post("/orgs", json={"name": slug.title(), "slug": slug}).status_code == 201
    made = world.admin.post("/users", json={"email": f"owner@{slug}.test", "role": "owner", "org": slug})
    user_id = made.json()["id"]
    return user_id, issue(world.admin, user_id)


def test_the_last_owner_cannot_deactivate_themselves(world: World) -> None:
    owner_id, token = owner_of_new_org(world, "solo")
    with client_for(world.url, token) as owner:
        assert error_of(owner.post(f"/users/{owner_id}/deactivate"), 409)["code"] == "last_owner"
        assert owner.get("/me").json()["is_active"] is True
        second = owner.post("/users", json={"email": "second@solo.test", "role": "owner", "password": "x" * 10})
        assert owner.post(f"/users/{owner_id}/deactivate").status_code == 200  # another owner remains
    second_id = second.json()["id"]
    with client_for(world.url, issue(world.admin, second_id)) as remaining:
        assert error_of(remaining.post(f"/users/{second_id}/deactivate"), 409)["code"] == "last_owner"


def test_an_admin_may_deactivate_an_organizations_last_owner(world: World) -> None:
    owner_id, _ = owner_of_new_org(world, "closing")
    assert world.admin.post(f"/users/{owner_id}/deactivate").status_code == 200


def test_the_last_admin_is_not_deactivated(admin: httpx.Client) -> None:
    admin_id = me_id(admin)
    assert error_of(admin.post(f"/users/{admin_id}/deactivate"), 409)["code"] == "last_owner"
    assert admin.get("/me").status_code == 200


# --- passwords ------------------------------------------------------------------------------


def stored_hash(database: Database, user_id: int) -> str:
    with database.reader() as session:
        return str(session.scalar(select(User.password_hash).where(User.id == user_id)))


def test_a_user_changes_their_password_with_the_current_one(world: World) -> None:
    user, token = new_user(world.database, email="changer@acme.test", role="member", org_id=world.tenant.org_id,
                           password="first-password")
    with client_for(world.url, token) as member:
        wrong = error_of(member.post("/users/me/password", json={"current_password": "nope-nope",
                                                                 "new_password": "second-password"}), 422)
        assert (wrong["code"], wrong["details"]["field"]) == ("wrong_password", "current_password")
        assert field_of(member.post("/users/me/password", json={"current_password": "first-password",
                                                                "new_password": "short"})) == "new_password"
        done = member.post("/users/me/password", json={"current_password": "first-password",
                                                       "new_password": "second-password"})
        assert done.status_code == 204, done.text
    assert verify_password(stored_hash(world.database, user.id), "second-password")


def test_an_owner_resets_a_password_and_ends_the_users_sessions(world: World) -> None:
    user, _ = new_user(world.database, email="forgetful@acme.test", role="member", org_id=world.tenant.org_id)
    with world.database.writer.begin() as session:
        open_session(session, user=session.get(User, user.id), now=utcnow())
    reset = world.tenant.owner.post(f"/users/{user.id}/password", json={"password": "brand-new-pass"})
    assert reset.status_code == 204, reset.text
    assert verify_password(stored_hash(world.database, user.id), "brand-new-pass")
    with world.database.reader() as session:
        assert session.scalar(select(func.count()).select_from(WebSession).where(WebSession.user_id == user.id)) == 0
    assert error_of(world.rival.owner.post(f"/users/{user.id}/password", json={"password": "x" * 10}), 404)
    assert error_of(world.tenant.member.post(f"/users/{user.id}/password", json={"password": "x" * 10}), 403)
