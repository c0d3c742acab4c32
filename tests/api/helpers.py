"""Small steps the API tests repeat: take, submit, count, check the error shape."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from qistas.api.requests import SAFE_ID
from qistas.db.engine import Database
from qistas.db.models import Annotation, Task


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert the one error shape with this status; return the inner error."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert list(body) == ["error"], body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert SAFE_ID.fullmatch(response.headers["x-request-id"].encode()), response.headers  # errors carry it too
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


def field_of(response: httpx.Response) -> str:
    """The field a 422 names: always ``details.field``, whoever refused the request."""
    error = error_of(response, 422)
    return str(error["details"]["field"])


def take(client: httpx.Client, project_id: int) -> dict[str, Any]:
    response = client.post(f"/projects/{project_id}/assignments")
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def take_if_any(client: httpx.Client, project_id: int) -> dict[str, Any] | None:
    """A lease, or None when nothing is left for this annotator."""
    response = client.post(f"/projects/{project_id}/assignments")
    if response.status_code == 204:
        return None
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def answer_label(client: httpx.Client, lease: dict[str, Any], label: str) -> httpx.Response:
    """Submit a classification answer to a lease; the response, whatever its status."""
    return client.post(f"/assignments/{lease['id']}/submit", json={"answer": {"label": label}, "seconds": 2})


def nothing_left(client: httpx.Client, project_id: int) -> bool:
    response = client.post(f"/projects/{project_id}/assignments")
    assert response.status_code in (201, 204), response.text
    return response.status_code == 204


def submit(client: httpx.Client, assignment_id: int, answer: Any, status: int = 201, **extra: Any) -> httpx.Response:
    response = client.post(f"/assignments/{assignment_id}/submit", json={"answer": answer, **extra})
    assert response.status_code == status, response.text
    return response


def annotate(client: httpx.Client, project_id: int, answer: Any) -> dict[str, Any]:
    """Take the next task and answer it; return the taken assignment."""
    taken = take(client, project_id)
    submit(client, taken["id"], answer)
    return taken


def stats(client: httpx.Client, project_id: int) -> dict[str, Any]:
    response = client.get(f"/projects/{project_id}/stats")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def count_tasks(database: Database, project_id: int) -> int:
    with database.reader() as session:
        return session.scalar(select(func.count()).select_from(Task).where(Task.project_id == project_id)) or 0


def count_annotations(database: Database, project_id: int) -> int:
    with database.reader() as session:
        query = select(func.count()).select_from(Annotation).where(Annotation.project_id == project_id)
        return session.scalar(query) or 0


def all_tasks(client: httpx.Client, project_id: int, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after = None
    while True:
        query = {**params, **({"after": after} if after is not None else {})}
        page = client.get(f"/projects/{project_id}/tasks", params=query)
        assert page.status_code == 200, page.text
        body = page.json()
        items.extend(body["items"])
        if body["next"] is None:
            return items
        after = body["next"]


def children_named(parent: int, name: str) -> set[int]:
    """The pids of ``parent``'s child processes called ``name`` (Linux: /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if ppid == parent and (entry / "comm").read_text().strip() == name:
                    found.add(int(entry.name))
    return found


def process_alive(pid: int) -> bool:
    """Whether a process runs (a zombie has ended: only its parent, maybe gone, would reap it)."""
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str, token: str | None = None) -> Samples:
    """A scrape of the server at ``url``: every sample, by name and labels."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(url + "/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample of a scrape; 0 if absent (a counter not yet moved)."""
    return samples.get((name, frozenset(labels.items())), 0.0)
