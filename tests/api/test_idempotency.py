"""``Idempotency-Key`` on the creating POSTs, over real HTTP: a retry gets the first answer and
does nothing again; the same key with another request is refused; two at once run once."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from qistas.db.engine import Database
from qistas.db.models import IdempotentRequest, Project, User
from qistas.db.types import utcnow
from qistas.db.unit_of_work import write
from qistas.domain import idempotency
from qistas.workers import start_workers
from tests.api.conftest import World
from tests.api.helpers import count_annotations, count_tasks, error_of, field_of
from tests.conftest import LiveServer

ROWS = [{"data": {"text": "one"}}, {"data": {"text": "two"}}, {"data": {"text": "three"}}]


def _key() -> str:
    return f"key-{uuid.uuid4()}"


def _import(client: httpx.Client, pid: int, rows: Any, key: str | None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(f"/projects/{pid}/tasks", json=rows, headers=headers)


def _owner_id(world: World) -> int:
    with world.database.reader() as session:
        found = session.scalar(select(User.id).where(User.email == "owner@acme.test"))
    assert found is not None
    return found


def _row(world: World, key: str) -> IdempotentRequest | None:
    with world.database.reader() as session:
        return session.scalar(select(IdempotentRequest).where(IdempotentRequest.key == key))


def test_a_retried_import_without_unique_id_creates_its_tasks_once(world: World) -> None:
    pid = world.tenant.project()["id"]
    plain = [_import(world.tenant.owner, pid, ROWS, None) for _ in range(2)]
    assert [r.status_code for r in plain] == [201, 201]
    assert count_tasks(world.database, pid) == 6  # without a key, a retry imports again

    key = _key()
    first = _import(world.tenant.owner, pid, ROWS, key)
    again = _import(world.tenant.owner, pid, ROWS, key)
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert again.json() == first.json() == {"created": 3, "duplicates": 0}
    assert again.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers
    assert again.headers["content-type"] == "application/json"
    assert count_tasks(world.database, pid) == 9


def test_the_same_key_with_another_request_is_refused(world: World) -> None:
    pid = world.tenant.project()["id"]
    key = _key()
    assert _import(world.tenant.owner, pid, ROWS, key).status_code == 201
    other = _import(world.tenant.owner, pid, ROWS[:1], key)
    assert error_of(other, 422)["code"] == "idempotency_key_reused"
    assert field_of(other) == "Idempotency-Key"
    elsewhere = world.tenant.owner.post("/projects", json={"name": "p", "task": {"type": "text"}},
                                        headers={"Idempotency-Key": key})
    assert error_of(elsewhere, 422)["code"] == "idempotency_key_reused"
    assert count_tasks(world.database, pid) == 3


def test_a_retry_while_the_first_runs_is_409(world: World) -> None:
    pid = world.tenant.project()["id"]
    key = _key()
    assert _import(world.tenant.owner, pid, ROWS, key).status_code == 201
    # Back to what the row is while the first request runs (here or on another process): no answer yet.
    with world.database.writer.begin() as session:
        session.execute(update(IdempotentRequest).where(IdempotentRequest.key == key)
                        .values(status_code=None, body_sealed=None))
    running = _import(world.tenant.owner, pid, ROWS, key)
    assert error_of(running, 409)["code"] == "idempotency_key_in_use"
    assert error_of(running, 409)["details"]["field"] == "Idempotency-Key"
    assert count_tasks(world.database, pid) == 3


def test_identical_requests_at_once_run_once_across_servers(world: World) -> None:
    """Six identical imports at once, on two servers (each its own app, pool and caches) of one database."""
    pid = world.tenant.project()["id"]
    key = _key()
    rows = [{"data": {"text": f"row {i}"}} for i in range(200)]
    answers: list[httpx.Response] = []
    start = threading.Barrier(6)
    other_db = Database.from_url(world.settings.sqlalchemy_url)
    with LiveServer(world.settings.model_copy(update={"background_workers": False}), other_db) as other:

        def send(base_url: str) -> None:
            with httpx.Client(base_url=base_url + "/api/v1", headers=dict(world.tenant.owner.headers),
                              timeout=60) as client:
                start.wait()
                answers.append(_import(client, pid, rows, key))

        threads = [threading.Thread(target=send, args=(url,)) for url in [world.url, other.url] * 3]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    other_db.dispose()
    statuses = sorted(r.status_code for r in answers)
    assert set(statuses) <= {201, 409}, [r.text for r in answers]
    assert statuses.count(201) >= 1
    for answer in answers:
        if answer.status_code == 201:
            assert answer.json() == {"created": 200, "duplicates": 0}
        else:
            assert error_of(answer, 409)["code"] == "idempotency_key_in_use"
    assert count_tasks(world.database, pid) == 200
    # Once the first has answered, every retry gets its answer.
    later = _import(world.tenant.owner, pid, rows, key)
    assert later.status_code == 201 and later.headers["idempotent-replayed"] == "true"
    assert count_tasks(world.database, pid) == 200


def test_keys_belong_to_their_user(world: World) -> None:
    pid = world.tenant.project()["id"]
    key = _key()
    assert _import(world.tenant.owner, pid, ROWS, key).status_code == 201
    theirs = _import(world.tenant.member, pid, ROWS, key)
    assert theirs.status_code == 201 and "idempotent-replayed" not in theirs.headers
    assert count_tasks(world.database, pid) == 6
    # Another tenant's user with the same key and a project it cannot see: 404, as without a key.
    assert error_of(_import(world.rival.owner, pid, ROWS, key), 404)["code"] == "not_found"


def test_an_error_leaves_the_key_free(world: World) -> None:
    pid = world.tenant.project()["id"]
    key = _key()
    bad = _import(world.tenant.owner, pid, [{"data": {"text": "ok"}}, {"nodata": 1}], key)
    assert error_of(bad, 422)["code"] == "invalid"
    assert _row(world, key) is None
    fixed = _import(world.tenant.owner, pid, ROWS, key)
    assert fixed.status_code == 201 and "idempotent-replayed" not in fixed.headers
    assert count_tasks(world.database, pid) == 3


def test_an_expired_key_runs_again_and_old_keys_are_purged(world: World) -> None:
    pid = world.tenant.project()["id"]
    key = _key()
    assert _import(world.tenant.owner, pid, ROWS, key).status_code == 201
    hours = world.settings.idempotency_key_hours
    with world.database.writer.begin() as session:
        session.execute(update(IdempotentRequest).where(IdempotentRequest.key == key)
                        .values(created_at=utcnow() - timedelta(hours=hours, minutes=1)))
    again = _import(world.tenant.owner, pid, ROWS, key)
    assert again.status_code == 201 and "idempotent-replayed" not in again.headers
    assert count_tasks(world.database, pid) == 6
    # Purging forgets keys past their time, and only those.
    old = _key()
    assert _import(world.tenant.owner, pid, [{"data": {"text": "x"}}], old).status_code == 201
    _age(world, old, timedelta(hours=hours + 1))
    kept_since = utcnow() - timedelta(hours=hours)
    write(world.database, lambda session: idempotency.purge(session, kept_since=kept_since))
    assert _row(world, old) is None and _row(world, key) is not None


def test_the_background_workers_purge_expired_keys(world: World) -> None:
    pid = world.tenant.project()["id"]
    old = _key()
    assert _import(world.tenant.owner, pid, ROWS, old).status_code == 201
    _age(world, old, timedelta(hours=world.settings.idempotency_key_hours + 1))
    workers = start_workers(world.settings, world.database)
    try:
        deadline = time.monotonic() + 10
        while _row(world, old) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        workers.stop()
    assert _row(world, old) is None


def _age(world: World, key: str, by: timedelta) -> None:
    with world.database.writer.begin() as session:
        session.execute(update(IdempotentRequest).where(IdempotentRequest.key == key)
                        .values(created_at=utcnow() - by))


def test_a_bad_key_is_refused_naming_the_header(world: World) -> None:
    pid = world.tenant.project()["id"]
    for bad in ("x" * 256, ""):
        response = _import(world.tenant.owner, pid, ROWS, bad)
        assert field_of(response) == "Idempotency-Key", response.text
    assert count_tasks(world.database, pid) == 0
    # Without credentials the answer is 401 first, as without the header.
    with httpx.Client(base_url=world.api) as anonymous:
        assert error_of(_import(anonymous, pid, ROWS, "x" * 300), 401)["code"] == "unauthorized"


def test_a_retried_upload_matches_whatever_its_multipart_boundary(world: World) -> None:
    pid = world.tenant.project()["id"]
    key = _key()
    jsonl = b'{"data": {"text": "a"}}\n{"data": {"text": "b"}}\n'
    answers = [world.tenant.owner.post(f"/projects/{pid}/tasks", files={"file": ("rows.jsonl", jsonl)},
                                       headers={"Idempotency-Key": key}) for _ in range(2)]
    assert [a.status_code for a in answers] == [201, 201], answers[0].text
    assert answers[1].headers["idempotent-replayed"] == "true"
    assert count_tasks(world.database, pid) == 2
    other = world.tenant.owner.post(f"/projects/{pid}/tasks", files={"file": ("rows.jsonl", jsonl + jsonl)},
                                    headers={"Idempotency-Key": key})
    assert error_of(other, 422)["code"] == "idempotency_key_reused"


def test_other_creating_posts_take_the_key(world: World) -> None:
    owner = world.tenant.owner
    key = _key()
    body = {"name": f"once-{key}", "task": {"type": "text"}}
    made = [owner.post("/projects", json=body, headers={"Idempotency-Key": key}) for _ in range(2)]
    assert made[0].status_code == made[1].status_code == 201
    assert made[0].json() == made[1].json()
    with world.database.reader() as session:
        assert len(session.scalars(select(Project).where(Project.name == body["name"])).all()) == 1
    pid = made[0].json()["id"]
    batch_key = _key()
    batches = [owner.post(f"/projects/{pid}/batches", json={"name": "b"}, headers={"Idempotency-Key": batch_key})
               for _ in range(2)]
    assert batches[0].json() == batches[1].json() and len(owner.get(f"/projects/{pid}/batches").json()["items"]) == 1
    world.tenant.add_tasks(pid, [{"data": {"prompt": "t"}, "unique_id": "t1"}])
    answers_key = _key()
    rows = [{"task": "t1", "annotator": "vendor-1", "answer": {"text": "done"}}]
    imported = [owner.post(f"/projects/{pid}/annotations", json=rows, headers={"Idempotency-Key": answers_key})
                for _ in range(2)]
    assert [i.status_code for i in imported] == [201, 201] and imported[1].json() == {"created": 1}
    assert imported[1].headers["idempotent-replayed"] == "true"
    assert count_annotations(world.database, pid) == 1


def test_a_replayed_token_is_stored_sealed(world: World) -> None:
    owner_id = _owner_id(world)
    key = _key()
    made = [world.tenant.owner.post(f"/users/{owner_id}/tokens", json={"name": f"ci-{key}"},
                                    headers={"Idempotency-Key": key}) for _ in range(2)]
    assert made[0].status_code == made[1].status_code == 201, made[0].text
    token = made[0].json()["token"]
    assert made[1].json()["token"] == token
    listed = world.tenant.owner.get(f"/users/{owner_id}/tokens").json()
    assert sum(1 for t in listed if t["name"] == f"ci-{key}") == 1
    row = _row(world, key)
    assert row is not None and row.body_sealed is not None
    assert token not in row.body_sealed and row.body_sealed.startswith("v1.")
