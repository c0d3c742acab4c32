"""The assignment engine over real HTTP: many annotator clients, one or several servers.

Each annotator thread has its own HTTP client and takes, submits, double-submits (one
after the other and racing from a second connection), retakes, skips and walks away from
leases. Afterwards the database is checked against DESIGN.md's invariants, and no request
may have answered 5xx. With several ``qistas serve`` processes sharing one database, the
locking must hold across processes, not only across threads.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from qistas.db.engine import Database
from tests.conftest import SECRET, LiveServer
from tests.engine_checks import Tally, annotation_count, check, expire, run_threads, status_counts
from tests.factories import CLASSIFICATION, Tenant, make_tenant

LABELS = CLASSIFICATION["labels"]


def twin(client: httpx.Client, base_url: str | None = None) -> httpx.Client:
    """A second connection for the same annotator (another tab, or another server)."""
    return httpx.Client(base_url=base_url or client.base_url, headers=client.headers, timeout=30)


def request(tally: Tally, client: httpx.Client, path: str, **kwargs: object) -> httpx.Response:
    response = client.post(path, **kwargs)  # type: ignore[arg-type]
    tally.add(f"HTTP {response.status_code}")
    if response.status_code >= 500:
        tally.fail(f"POST {path}: {response.status_code} {response.text[:200]}")
    return response


def annotator_loop(database: Database, project_id: int, client: httpx.Client, other: httpx.Client,
                   tally: Tally, seed: int, *, misbehave: bool) -> None:
    rng = random.Random(seed)
    served: set[int] = set()
    try:
        while True:
            taken = request(tally, client, f"/projects/{project_id}/assignments")
            if taken.status_code == 204:
                return
            if taken.status_code != 201:
                tally.fail(f"take: {taken.status_code} {taken.text[:200]}")
                return
            lease, task_id = taken.json()["id"], taken.json()["task"]["id"]
            if task_id in served:
                tally.fail(f"task {task_id} served twice to one annotator")
            served.add(task_id)
            answer = {"answer": {"label": rng.choice(LABELS)}, "seconds": 2.5}
            roll = rng.random() if misbehave else 0.0
            if roll < 0.55:
                expect(tally, request(tally, client, f"/assignments/{lease}/submit", json=answer), 201, "submit")
                tally.add("submitted")
            elif roll < 0.65:  # a double click, then a retry after a "timeout"
                first = request(tally, client, f"/assignments/{lease}/submit", json=answer)
                again = request(tally, other, f"/assignments/{lease}/submit", json=answer)
                if (first.status_code, again.status_code) != (201, 200) or first.json()["id"] != again.json()["id"]:
                    tally.fail(f"double submit: {first.status_code} {again.status_code}")
                tally.add("double")
            elif roll < 0.72:  # two tabs submitting at the same instant
                racing_submit(tally, lease, client, other, answer)
            elif roll < 0.8:  # a reload: taking again hands back the same lease
                again = request(tally, other, f"/projects/{project_id}/assignments")
                if again.status_code != 201 or again.json()["id"] != lease:
                    tally.fail(f"retake while holding {lease}: {again.status_code} {again.text[:100]}")
                expect(tally, request(tally, client, f"/assignments/{lease}/submit", json=answer), 201, "submit")
                tally.add("retaken")
            elif roll < 0.9:
                expect(tally, request(tally, client, f"/assignments/{lease}/skip"), 204, "skip")
                stale(database, tally, client, lease, answer, "skipped")
            else:
                expire(database, lease)
                stale(database, tally, client, lease, answer, "expired")
    except Exception as exc:  # any error is a finding; the test reports it
        tally.fail(f"{type(exc).__name__}: {exc}")


def expect(tally: Tally, response: httpx.Response, status: int, what: str) -> None:
    if response.status_code != status:
        tally.fail(f"{what}: {response.status_code} {response.text[:200]}")


def racing_submit(tally: Tally, lease: int, client: httpx.Client, other: httpx.Client, answer: object) -> None:
    barrier = threading.Barrier(2)
    answers: list[httpx.Response] = []

    def go(c: httpx.Client) -> None:
        barrier.wait()
        answers.append(request(tally, c, f"/assignments/{lease}/submit", json=answer))

    second_tab = threading.Thread(target=go, args=(other,))
    second_tab.start()
    go(client)
    second_tab.join(timeout=30)
    codes = sorted(r.status_code for r in answers)
    if codes != [200, 201] or len({r.json()["id"] for r in answers}) != 1:
        tally.fail(f"racing submits of {lease}: {codes}")
    tally.add("raced")


def stale(database: Database, tally: Tally, client: httpx.Client, lease: int, answer: object, why: str) -> None:
    late = request(tally, client, f"/assignments/{lease}/submit", json=answer)
    if late.status_code != 409 or late.json()["error"]["code"] != "conflict":
        tally.fail(f"submit of a {why} lease: {late.status_code} {late.text[:200]}")
    if annotation_count(database, assignment_id=lease) != 0:
        tally.fail(f"submit of a {why} lease {lease} stored an annotation")
    tally.add(why)


def crowd_run(database: Database, project_id: int, clients: list[tuple[httpx.Client, httpx.Client]]) -> Tally:
    tally = Tally()
    run_threads([
        (lambda c=c, o=o, n=n: annotator_loop(database, project_id, c, o, tally, n, misbehave=True))
        for n, (c, o) in enumerate(clients)
    ])
    # Honest rounds pick up slots freed after other annotators had already stopped.
    for round_ in range(1, 6):
        before = tally.counts["submitted"]
        run_threads([
            (lambda c=c, o=o, n=n, r=round_: annotator_loop(database, project_id, c, o, tally, 1000 * r + n,
                                                            misbehave=False))
            for n, (c, o) in enumerate(clients)
        ])
        if tally.counts["submitted"] == before:
            break
    return tally


def assert_sound(database: Database, project_id: int, tally: Tally, n_tasks: int) -> None:
    assert tally.errors == []
    assert not [k for k in tally.counts if k.startswith("HTTP 5")]
    assert check(database, project_id) == []
    assert status_counts(database, project_id) == {"completed": n_tasks}
    for path in ("submitted", "double", "raced", "retaken", "skipped", "expired"):
        assert tally.counts[path] > 0, (path, tally.counts)


@pytest.fixture
def crowd(server: LiveServer, database: Database) -> Iterator[Tenant]:
    with make_tenant(database, server.url, "crowd", n_annotators=24) as found:
        yield found


def test_a_crowd_over_http_keeps_every_invariant(crowd: Tenant, database: Database) -> None:
    project = crowd.project(redundancy={"min": 3, "max": 3})
    crowd.add_tasks(project["id"], [{"data": {"text": f"item {n}"}} for n in range(40)])
    with ExitStack() as stack:
        clients = [(c, stack.enter_context(twin(c))) for c in crowd.annotators]
        tally = crowd_run(database, project["id"], clients)
    assert_sound(database, project["id"], tally, 40)


# --- several server processes on one database ---------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_processes(db_url: str, home: Path, count: int, *options: str) -> Iterator[list[str]]:
    """``qistas serve`` processes on free ports, all on the same database (``options`` added)."""
    env = {**os.environ, "QISTAS_DATABASE_URL": db_url, "QISTAS_HOME": str(home), "QISTAS_SECRET_KEY": SECRET}
    urls: list[str] = []
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for n in range(count):
            port = free_port()
            with open(home / f"server-{n}.log", "wb") as log:
                procs.append(subprocess.Popen(
                    [sys.executable, "-c", "from qistas.cli import main; main()", "serve", "--port", str(port),
                     *options],
                    env=env, stdout=log, stderr=subprocess.STDOUT,
                ))
            urls.append(f"http://127.0.0.1:{port}")
        for n, (url, proc) in enumerate(zip(urls, procs, strict=True)):
            wait_until_up(url, proc, home / f"server-{n}.log")
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    # A server starts in a few seconds; on a machine busy with other work, importing it and
    # migrating has taken over half a minute.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@pytest.mark.slow
def test_several_server_processes_share_one_database(database: Database, db_url: str, tmp_path: Path) -> None:
    """The scale-out deployment: three stateless servers; annotators spread across them,
    and each one's second connection goes to another server."""
    with serve_processes(db_url, tmp_path, 3) as urls, \
            make_tenant(database, urls[0], "crowd", n_annotators=24) as crowd:
        project = crowd.project(redundancy={"min": 3, "max": 3})
        crowd.add_tasks(project["id"], [{"data": {"text": f"item {n}"}} for n in range(40)])
        with ExitStack() as stack:
            clients = [
                (stack.enter_context(twin(c, urls[n % 3] + "/api/v1")),
                 stack.enter_context(twin(c, urls[(n + 1) % 3] + "/api/v1")))
                for n, c in enumerate(crowd.annotators)
            ]
            tally = crowd_run(database, project["id"], clients)
            assert_sound(database, project["id"], tally, 40)
            # One annotator in a tab on every server at once: distinct tasks, never a 5xx.
            second = crowd.project(redundancy={"min": 1, "max": 1})
            crowd.add_tasks(second["id"], [{"data": {"text": f"item {n}"}} for n in range(30)])
            tabs = [stack.enter_context(twin(crowd.annotators[0], urls[n % 3] + "/api/v1")) for n in range(9)]
            tally = Tally()
            run_threads([(lambda t=t: tab_loop(second["id"], t, tally)) for t in tabs])
    assert tally.errors == []
    assert not [k for k in tally.counts if k.startswith("HTTP 5")], tally.counts
    assert check(database, second["id"]) == []
    assert status_counts(database, second["id"]) == {"completed": 30}


def tab_loop(project_id: int, tab: httpx.Client, tally: Tally) -> None:
    while True:
        taken = request(tally, tab, f"/projects/{project_id}/assignments")
        if taken.status_code != 201:
            expect(tally, taken, 204, "take")
            return
        done = request(tally, tab, f"/assignments/{taken.json()['id']}/submit", json={"answer": {"label": "mixed"}})
        # 200: another tab was handed the same lease back and submitted it first
        if done.status_code not in (200, 201):
            tally.fail(f"submit: {done.status_code} {done.text[:200]}")


def test_loop_routes_refuse_missing_and_bad_tokens(crowd: Tenant, server: LiveServer) -> None:
    """take/submit/skip/renew look the token up inside their own transaction: still 401."""
    project = crowd.project()
    crowd.add_tasks(project["id"], [{"data": {"text": "x"}}])
    paths = [f"/projects/{project['id']}/assignments", "/assignments/1/submit", "/assignments/1/skip",
             "/assignments/1/renew"]
    with httpx.Client(base_url=server.url + "/api/v1") as anonymous, \
            httpx.Client(base_url=server.url + "/api/v1", headers={"Authorization": "Bearer qst_nope"}) as forged:
        for client in (anonymous, forged):
            for path in paths:
                response = client.post(path, json={"answer": {"label": "mixed"}})
                assert response.status_code == 401, (path, response.text)
                assert response.json()["error"]["code"] == "unauthorized"
        assert anonymous.post(paths[1], json={"wrong": 1}).status_code == 401  # before any body check
    assert crowd.annotators[0].post(paths[0]).status_code == 201
