"""The OpenAPI document lists the paths outside tools rely on."""

from __future__ import annotations

import httpx

from tests.api.conftest import World

STABLE = {
    "/api/v1/orgs": {"post", "get"},
    "/api/v1/users": {"post", "get"},
    "/api/v1/users/{user_id}/tokens": {"post"},
    "/api/v1/me": {"get"},
    "/api/v1/projects": {"post", "get"},
    "/api/v1/projects/{project_id}": {"get"},
    "/api/v1/projects/{project_id}/batches": {"post", "get"},
    "/api/v1/batches/{batch_id}": {"get"},
    "/api/v1/batches/{batch_id}/{action}": {"post"},
    "/api/v1/projects/{project_id}/tasks": {"post", "get"},
    "/api/v1/tasks/{task_id}": {"get"},
    "/api/v1/projects/{project_id}/assignments": {"post"},
    "/api/v1/assignments/{assignment_id}/submit": {"post"},
    "/api/v1/assignments/{assignment_id}/skip": {"post"},
    "/api/v1/assignments/{assignment_id}/renew": {"post"},
    "/api/v1/projects/{project_id}/results": {"get"},
    "/api/v1/projects/{project_id}/export": {"get"},
    "/api/v1/projects/{project_id}/stats": {"get"},
    "/api/v1/projects/{project_id}/quality": {"get"},
    "/api/v1/projects/{project_id}/quality/refit": {"post"},
    "/api/v1/annotators/{user_id}/quality": {"get"},
}


def test_openapi_document(world: World) -> None:
    with httpx.Client(base_url=world.url) as anonymous:
        response = anonymous.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Qistas"
    for path, methods in STABLE.items():
        assert path in document["paths"], path
        assert methods <= set(document["paths"][path]), (path, set(document["paths"][path]))
    body = document["paths"]["/api/v1/projects/{project_id}/tasks"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/x-ndjson", "text/csv", "multipart/form-data"} <= set(body)
    assert "204" in document["paths"]["/api/v1/projects/{project_id}/assignments"]["post"]["responses"]


def test_health_and_home(world: World) -> None:
    with httpx.Client(base_url=world.url) as anonymous:
        assert anonymous.get("/healthz").json() == {"status": "ok"}
        home = anonymous.get("/", follow_redirects=True)
        assert home.status_code == 200 and home.headers["content-type"].startswith("text/html")
        assert anonymous.get("/api/v1/docs").status_code == 200
