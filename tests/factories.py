"""Test data built through domain functions, and HTTP clients that act as each person."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from qistas.db.engine import Database
from qistas.db.models import User
from qistas.domain import users
from qistas.domain.sealing import WEBHOOK_SECRET, Keyring

CLASSIFICATION = {"type": "classification", "labels": ["positive", "negative", "mixed"], "text_field": "text"}


def sealed_webhook_secret(secret_key: str, secret: str = "s" * 20) -> str:
    """A webhook signing secret as it is stored: sealed with the server's key."""
    return Keyring(secret_key).seal(secret.encode(), purpose=WEBHOOK_SECRET)


def client_for(base_url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base_url + "/api/v1", headers={"Authorization": f"Bearer {token}"},
                        timeout=30)


def new_user(database: Database, *, email: str, role: str, org_id: int | None = None,
             password: str | None = None, is_reviewer: bool = False) -> tuple[User, str]:
    with database.writer.begin() as session:
        user = users.create_user(session, email=email, role=role, org_id=org_id, password=password,
                                 is_reviewer=is_reviewer)
        return user, users.create_token(session, user=user)


@contextmanager
def make_reviewer(database: Database, base_url: str, name: str, *, role: str = "annotator",
                  org_id: int | None = None) -> Iterator[httpx.Client]:
    """A reviewer: of the shared workforce by default, or of an organization (``org_id``)."""
    _, token = new_user(database, email=f"{name}@review.test", role=role, org_id=org_id, is_reviewer=True)
    with client_for(base_url, token) as client:
        yield client


@contextmanager
def make_admin(database: Database, base_url: str) -> Iterator[httpx.Client]:
    _, token = new_user(database, email="admin@instance.test", role="admin")
    with client_for(base_url, token) as client:
        yield client


@dataclass
class Tenant:
    """One customer organization with its people, each an authenticated HTTP client."""

    slug: str
    org_id: int
    base_url: str
    owner: httpx.Client
    member: httpx.Client
    inhouse: httpx.Client  # an annotator employed by this organization
    annotators: list[httpx.Client] = field(default_factory=list)  # the shared workforce
    annotator_ids: list[int] = field(default_factory=list)

    def project(self, task: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        body = {"name": f"{self.slug} project", "task": task or CLASSIFICATION, **fields}
        response = self.owner.post("/projects", json=body)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def add_tasks(self, project_id: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
        response = self.owner.post(f"/projects/{project_id}/tasks", json=rows)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]


@contextmanager
def make_tenant(database: Database, base_url: str, slug: str, n_annotators: int = 3) -> Iterator[Tenant]:
    with database.writer.begin() as session:
        org_id = users.create_org(session, name=slug.title(), slug=slug).id
    _, owner = new_user(database, email=f"owner@{slug}.test", role="owner", org_id=org_id)
    _, member = new_user(database, email=f"member@{slug}.test", role="member", org_id=org_id)
    _, inhouse = new_user(database, email=f"inhouse@{slug}.test", role="annotator", org_id=org_id)
    with ExitStack() as stack:
        tenant = Tenant(
            slug=slug, org_id=org_id, base_url=base_url,
            owner=stack.enter_context(client_for(base_url, owner)),
            member=stack.enter_context(client_for(base_url, member)),
            inhouse=stack.enter_context(client_for(base_url, inhouse)),
        )
        for n in range(n_annotators):
            user, token = new_user(database, email=f"worker{n}-{slug}@crowd.test", role="annotator")
            tenant.annotators.append(stack.enter_context(client_for(base_url, token)))
            tenant.annotator_ids.append(user.id)
        yield tenant


def label_everything(tenant: Tenant, project_id: int, answer: Any, workers: int = 1) -> int:
    """Each of the first ``workers`` annotators takes and answers tasks until none is left.

    ``answer`` is an answer, or a function of the task's data (and the worker's index).
    """
    done = 0
    for index, worker in enumerate(tenant.annotators[:workers]):
        while True:
            taken = worker.post(f"/projects/{project_id}/assignments")
            if taken.status_code == 204:
                break
            assert taken.status_code == 201, taken.text
            body = taken.json()
            given = answer(body["task"]["data"], index) if callable(answer) else answer
            submitted = worker.post(f"/assignments/{body['id']}/submit", json={"answer": given})
            assert submitted.status_code == 201, submitted.text
            done += 1
    return done
