"""What the request middleware adds to one request: its id, its metrics and (optionally) its log line.

A minimal ASGI app that answers 200 is called N times directly, then N times through
``api.requests.RequestContext`` with the server's ``Metrics``; printed: CPU microseconds per
request of each, and the difference. ``--multiprocess`` keeps the metrics in files as
``qistas serve`` does (prometheus-client's multiprocess mode); ``--log`` writes the request
line (JSON) to /dev/null, as ``--log-level info`` does.

``--loop`` measures the whole annotation loop instead: the real app on a fresh SQLite
database, 4 annotators taking and answering 500 tasks each in turn (in-process, over
httpx's ASGI transport), once with the app's middleware and once without ``RequestContext``,
alternately four times; printed: CPU milliseconds per take + submit (client included).

    python benchmarks/request_overhead.py
    python benchmarks/request_overhead.py --multiprocess --log
    python benchmarks/request_overhead.py --multiprocess --loop
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
import time
from typing import Any


async def answer(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})


async def run(app: Any, n: int) -> float:
    scope = {"type": "http", "method": "POST", "path": "/api/v1/projects/7/assignments", "headers": [
        (b"host", b"127.0.0.1"), (b"authorization", b"Bearer qst_x"), (b"content-length", b"0")]}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_message: Any) -> None:
        return None

    start = time.process_time()
    for _ in range(n):
        await app(dict(scope), receive, send)
    return (time.process_time() - start) / n * 1e6


def loop_app(home: str, *, bare: bool) -> tuple[Any, str, list[str]]:
    """The app on a fresh database with an owner and 4 annotators; ``bare``: without RequestContext."""
    from fastapi import FastAPI

    from qistas.api.app import create_app
    from qistas.config import Settings
    from qistas.db.engine import Database
    from qistas.db.migrate import upgrade
    from qistas.domain import users

    url = f"sqlite:///{home}/qistas.db"
    upgrade(url)
    db = Database.from_url(url)
    with db.writer.begin() as session:
        org = users.create_org(session, name="Acme", slug="acme")
        owner = users.create_token(session, user=users.create_user(session, email="o@acme.test", role="owner",
                                                                   org_id=org.id))
        workers = [users.create_token(session, user=users.create_user(session, email=f"w{n}@crowd.test",
                                                                      role="annotator")) for n in range(4)]
    app = create_app(Settings(home=home, database_url=url, secret_key="s" * 40, background_workers=False), db)
    if bare:
        app.build_middleware_stack = lambda: FastAPI.build_middleware_stack(app)  # type: ignore[method-assign]
    return app, owner, workers


async def loop_cycles(app: Any, owner: str, workers: list[str], tasks: int) -> float:
    import httpx

    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://qistas/api/v1") as client:
        auth = {"Authorization": f"Bearer {owner}"}
        project = (await client.post("/projects", headers=auth, json={
            "name": "p", "task": {"type": "classification", "labels": ["a", "b"]},
            "redundancy": {"min": len(workers), "max": len(workers)}})).json()
        created = await client.post(f"/projects/{project['id']}/tasks", headers=auth,
                                    json=[{"data": {"text": str(n)}} for n in range(tasks)])
        assert created.status_code == 201, created.text
        start, done = time.process_time(), 0
        for token in workers:
            auth = {"Authorization": f"Bearer {token}"}
            take = f"/projects/{project['id']}/assignments"
            while (taken := await client.post(take, headers=auth)).status_code == 201:
                submitted = await client.post(f"/assignments/{taken.json()['id']}/submit", headers=auth,
                                              json={"answer": {"label": "a"}})
                assert submitted.status_code == 201, submitted.text
                done += 1
        return (time.process_time() - start) / done * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--multiprocess", action="store_true", help="metrics in files, as qistas serve keeps them")
    parser.add_argument("--log", action="store_true", help="write each request line (JSON) to /dev/null")
    parser.add_argument("--loop", action="store_true", help="the annotation loop through the real app, with and "
                        "without RequestContext")
    args = parser.parse_args()
    folder = tempfile.TemporaryDirectory(prefix="qistas-metrics-")
    if args.multiprocess:  # before prometheus-client is imported
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder.name
    from qistas.api.metrics import Metrics
    from qistas.api.requests import RequestContext
    from qistas.logs import JsonFormatter

    if args.log:
        handler = logging.FileHandler(os.devnull)
        handler.setFormatter(JsonFormatter())
        logging.getLogger("qistas").addHandler(handler)
        logging.getLogger("qistas").setLevel(logging.INFO)
    if args.loop:
        times: dict[bool, list[float]] = {True: [], False: []}
        for round_ in range(4):  # each first in turn, so neither gains from going second
            for bare in ((True, False) if round_ % 2 == 0 else (False, True)):
                with tempfile.TemporaryDirectory(prefix="qistas-bench-") as home:
                    times[bare].append(asyncio.run(loop_cycles(*loop_app(home, bare=bare), tasks=500)))
        for bare, label in ((True, "without RequestContext"), (False, "with RequestContext")):
            print(f"take + submit {label}: " + " / ".join(f"{t:.2f}" for t in times[bare])
                  + f" ms CPU (best {min(times[bare]):.2f})")
        folder.cleanup()
        return
    wrapped = RequestContext(answer, metrics=Metrics(), routes=[])
    bare_us, wrapped_us = [], []
    for _ in range(3):  # alternately, best of three each
        bare_us.append(asyncio.run(run(answer, args.requests)))
        wrapped_us.append(asyncio.run(run(wrapped, args.requests)))
    bare, through = min(bare_us), min(wrapped_us)
    mode = ("multiprocess" if args.multiprocess else "in-memory") + (" + request log" if args.log else "")
    print(f"{args.requests} requests, metrics {mode}: bare app {bare:.1f} us, through RequestContext "
          f"{through:.1f} us CPU per request: +{through - bare:.1f} us")
    folder.cleanup()


if __name__ == "__main__":
    main()
