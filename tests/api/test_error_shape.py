"""Every error, whatever raised it, answers ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from qistas.config import Settings
from qistas.db.engine import Database
from tests.api.conftest import World
from tests.api.helpers import error_of
from tests.conftest import LiveServer
from tests.factories import CLASSIFICATION


def test_401_without_or_with_a_bad_token(world: World) -> None:
    with httpx.Client(base_url=world.api) as anonymous:
        error = error_of(anonymous.get("/me"), 401)
        assert error["code"] == "unauthorized"
        bad = anonymous.get("/me", headers={"Authorization": "Bearer qst_not-a-token"})
        assert error_of(bad, 401)["code"] == "unauthorized"
        assert bad.headers["www-authenticate"] == "Bearer"


def test_403_wrong_role(world: World) -> None:
    response = world.tenant.member.post("/users", json={"email": "x@acme.test", "role": "member"})
    assert error_of(response, 403)["code"] == "forbidden"


def test_404_missing_object_and_unknown_route(world: World) -> None:
    assert error_of(world.tenant.owner.get("/projects/987654"), 404)["code"] == "not_found"
    assert error_of(world.tenant.owner.get("/no/such/route"), 404)["code"] == "not_found"
    with httpx.Client(base_url=world.url) as anonymous:
        assert error_of(anonymous.get("/api/v1/nothing-here"), 404)["code"] == "not_found"
        assert error_of(anonymous.get("/nothing-here"), 404)["code"] == "not_found"


def test_405_method_not_allowed(world: World) -> None:
    response = world.tenant.owner.delete("/projects")
    assert error_of(response, 405)["code"] == "method_not_allowed"


def test_409_conflict(world: World) -> None:
    assert world.admin.post("/orgs", json={"name": "Twice", "slug": "twice"}).status_code == 201
    response = world.admin.post("/orgs", json={"name": "Twice", "slug": "twice"})
    error = error_of(response, 409)
    assert error["code"] == "conflict"
    assert error["details"] == {"field": "slug"}


def test_415_unsupported_media_type(world: World) -> None:
    project = world.tenant.project()
    response = world.tenant.owner.post(f"/projects/{project['id']}/tasks", content=b"hello",
                                       headers={"content-type": "text/plain"})
    assert error_of(response, 415)["code"] == "unsupported_media_type"


def field_named(response: httpx.Response) -> str:
    """The one 422 shape: ``details.field`` names the field, whoever refused it."""
    error = error_of(response, 422)
    assert error["code"] == "invalid"
    assert isinstance(error["details"], dict) and isinstance(error["details"]["field"], str), error
    return error["details"]["field"]


def test_422_validation_names_the_field(world: World) -> None:
    owner = world.tenant.owner
    pid = world.tenant.project()["id"]
    assert field_named(owner.post("/projects", json={"task": CLASSIFICATION})) == "name"
    not_json = owner.post("/projects", content=b"{not json", headers={"content-type": "application/json"})
    assert field_named(not_json) == "body"
    assert field_named(owner.get(f"/projects/{pid}/tasks", params={"limit": "many"})) == "limit"
    assert field_named(owner.get(f"/projects/{pid}/tasks", params={"limit": 0})) == "limit"
    assert field_named(owner.get("/projects/abc")) == "project_id"
    # Refused by the framework or by the domain, the same shape.
    assert field_named(owner.get(f"/projects/{pid}/tasks", params={"status": "done"})) == "status"
    assert field_named(owner.post("/projects", json={"name": "p", "task": CLASSIFICATION,
                                                     "redundancy": {"min": 0}})) == "redundancy.min"


def test_422_with_several_fields_names_the_first_and_lists_all(world: World) -> None:
    """Path, then query, then body; in the body, in the order of the schema. All in ``fields``."""
    owner = world.tenant.owner
    error = error_of(owner.get("/projects/abc/tasks", params={"limit": 0, "after": "x"}), 422)
    assert error["details"]["field"] == "project_id"
    assert [f["field"] for f in error["details"]["fields"]] == ["project_id", "limit", "after"]
    assert all(isinstance(f["message"], str) and f["message"] for f in error["details"]["fields"])
    assert error["message"].startswith("project_id: ")
    body = error_of(owner.post("/projects", json={"instructions": 3}), 422)["details"]
    assert body["field"] == body["fields"][0]["field"] and len(body["fields"]) >= 2


def test_413_declared_body_over_the_limit(tight: World) -> None:
    body = {"name": "x" * 2000, "task": CLASSIFICATION}
    error = error_of(tight.tenant.owner.post("/projects", json=body), 413)
    assert error["code"] == "too_large"
    assert error["details"] == {"limit": 1024}


def _chunks(payload: bytes, size: int = 256) -> Iterator[bytes]:
    for start in range(0, len(payload), size):
        yield payload[start:start + size]


def test_413_streamed_body_over_the_limit(tight: World) -> None:
    """A chunked body (no Content-Length) is counted as it arrives."""
    payload = b'{"name": "' + b"x" * 3000 + b'", "task": {"type": "text"}}'
    response = tight.tenant.owner.post("/projects", content=_chunks(payload),
                                       headers={"content-type": "application/json"})
    assert error_of(response, 413)["code"] == "too_large"


@pytest.mark.parametrize("streamed", [False, True])
def test_413_import_over_the_upload_limit(tight: World, streamed: bool) -> None:
    project = tight.tenant.project()
    rows = b"".join(b'{"data": {"text": "%d"}}\n' % i for i in range(400))
    assert len(rows) > tight.settings.max_upload_bytes
    content = _chunks(rows) if streamed else rows
    response = tight.tenant.owner.post(f"/projects/{project['id']}/tasks", content=content,
                                       headers={"content-type": "application/x-ndjson"})
    assert error_of(response, 413)["code"] == "too_large"
    assert tight.tenant.owner.get(f"/projects/{project['id']}/stats").json()["tasks_total"] == 0


HUGE = "9" * 23


def test_ids_beyond_64_bits_are_422_not_500(world: World) -> None:
    owner, worker = world.tenant.owner, world.tenant.annotators[0]
    pid = world.tenant.project()["id"]
    for path in (f"/projects/{HUGE}", f"/projects/{HUGE}/stats", f"/tasks/{HUGE}", f"/batches/{HUGE}",
                 f"/projects/{HUGE}/export", f"/projects/{HUGE}/quality"):
        assert field_named(owner.get(path)).endswith("_id"), path
    for path in (f"/projects/{pid}/tasks", f"/projects/{pid}/results"):
        assert field_named(owner.get(path, params={"after": HUGE})) == "after"
    for action in ("submit", "skip", "renew"):
        response = worker.post(f"/assignments/{HUGE}/{action}", json={"answer": {"label": "positive"}})
        assert field_named(response) == "assignment_id"
    error_of(owner.post(f"/users/{HUGE}/tokens"), 422)
    error_of(owner.post(f"/projects/{HUGE}/quality/refit"), 422)
    error_of(world.admin.get(f"/annotators/{HUGE}/quality"), 422)
    for since in (f"1.{HUGE}", f"{HUGE}.1", "1.-1"):
        assert field_named(owner.get(f"/projects/{pid}/results", params={"since": since})) == "since"
        assert field_named(owner.post(f"/projects/{pid}/exports", json={"format": "jsonl", "since": since})) \
            == "since"
    for path in (f"/projects/{pid}/deliveries", f"/projects/{pid}/webhooks/1/deliveries"):
        assert field_named(owner.get(path, params={"before": HUGE})) == "before"
    # The largest id that fits is simply missing.
    assert error_of(owner.get(f"/projects/{2**63 - 1}"), 404)["message"] == "project not found"
    assert owner.get(f"/projects/{pid}/tasks", params={"after": 2**63 - 1}).json() == {"items": [], "next": None}


def test_an_admin_creating_a_project_names_the_org(world: World) -> None:
    response = world.admin.post("/projects", json={"name": "p", "task": {"type": "text"}})
    assert error_of(response, 422)["details"] == {"field": "org"}
    error_of(world.admin.post("/projects", json={"name": "p", "task": {"type": "text"}, "org": "nope"}), 404)
    created = world.admin.post("/projects", json={"name": "p", "task": {"type": "text"}, "org": "globex"})
    assert created.status_code == 201 and created.json()["org"] == "globex"


def test_500_unexpected_errors_keep_the_shape_and_hide_the_cause(settings: Settings, database: Database,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    live = LiveServer(settings, database)

    @live.app.get("/api/v1/broken")
    def broken() -> None:
        raise RuntimeError("secret internals")

    with live, httpx.Client(base_url=live.url) as anonymous:
        response = anonymous.get("/api/v1/broken")
    error = error_of(response, 500)
    assert error == {"code": "internal_error", "message": "an unexpected error occurred", "details": None}
    assert "secret internals" not in response.text
    assert any(r.name == "qistas.api" and r.exc_info for r in caplog.records)


def test_every_get_refuses_an_unknown_query_parameter(world: World) -> None:
    """One rule for all GET paths of the API: a misspelt filter is refused, never ignored."""
    owner = world.tenant.owner
    with httpx.Client(base_url=world.url) as anonymous:
        document = anonymous.get("/api/v1/openapi.json").json()
    paths = [path for path, methods in document["paths"].items() if "get" in methods]
    assert len(paths) >= 20
    for path in paths:
        url = re.sub(r"\{[^}]+\}", "1", path.removeprefix("/api/v1"))
        error = error_of(owner.get(url, params={"sort": "id"}), 422)
        assert error["details"]["field"] == "sort", path
        assert error["message"].startswith("unknown query parameter 'sort'"), path
    # Credentials are still checked first.
    with httpx.Client(base_url=world.api) as anonymous:
        assert error_of(anonymous.get("/projects", params={"sort": "id"}), 401)["code"] == "unauthorized"
    # Other methods are not concerned; declared parameters are fine.
    assert owner.get("/projects/1/tasks", params={"limit": 1}).status_code in (200, 404)
