"""Projects with tasks, made through the API as their owner."""

from __future__ import annotations

import base64
from typing import Any

import httpx
from playwright.sync_api import Page

# A 400×300 picture for box tasks, inline so the test needs no network.
SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="400" height="300">'
    '<rect width="400" height="300" fill="#dde"/><circle cx="120" cy="120" r="60" fill="#c55"/>'
    '<rect x="240" y="150" width="120" height="100" fill="#5a5"/></svg>'
)
IMAGE = "data:image/svg+xml;base64," + base64.b64encode(SVG.encode()).decode()


def project_with_tasks(
    owner: httpx.Client, task: dict[str, Any], rows: list[dict[str, Any]], **fields: Any
) -> tuple[int, list[int]]:
    body = {"name": f"{task['type']} project", "task": task, **fields}
    created = owner.post("/projects", json=body)
    assert created.status_code == 201, created.text
    project_id = created.json()["id"]
    imported = owner.post(f"/projects/{project_id}/tasks", json=[{"data": data} for data in rows])
    assert imported.status_code == 201, imported.text
    tasks = owner.get(f"/projects/{project_id}/tasks").json()["items"]
    return project_id, [t["id"] for t in tasks]


def answers(owner: httpx.Client, task_id: int) -> list[Any]:
    found = owner.get(f"/tasks/{task_id}")
    assert found.status_code == 200, found.text
    return [a["answer"] for a in found.json()["annotations"]]


def wait_task(page: Page, task_id: int) -> None:
    page.wait_for_selector(f'.widget[data-task="{task_id}"]')


def wait_empty(page: Page) -> None:
    page.wait_for_selector("#btn-again")
