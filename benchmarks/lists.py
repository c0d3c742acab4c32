"""The long lists of a large workforce and a long-running project, read through the API.

Inserts, in bulk, ``--users`` annotators (a tenth of them in one organization) and a project
of ``--batches`` batches of ``--batch-tasks`` tasks each; starts one ``qistas serve`` process
on SQLite, and times, as an admin, ``GET /users`` and, as the project's owner,
``GET /projects/{id}/batches``: the first answer with no parameters (and its size), then every
row, following ``next`` a page of ``--page-size`` at a time (a server that answers a plain list
gives everything in its first answer). The median of ``--repeat`` reads.

    python benchmarks/lists.py --users 100000 --batches 5000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import httpx
from annotate_loop import Server, api, check, serve


def fill(url: str, n_users: int, n_batches: int, batch_tasks: int) -> tuple[int, int]:
    """The annotators, and the project's batches and tasks; (project id, its owner's id)."""
    from sqlalchemy import insert

    from qistas.db.engine import Database
    from qistas.db.migrate import upgrade
    from qistas.db.models import Batch, Task, User
    from qistas.domain import projects, users

    upgrade(url)
    db = Database.from_url(url)
    with db.writer.begin() as session:
        org_id = users.create_org(session, name="Workforce", slug="workforce").id
        owner = users.create_user(session, email="owner@lists.test", role="owner", org_id=org_id)
        project_id = projects.create_project(session, org_id=org_id, actor=owner, name="lists",
                                             task={"type": "classification", "labels": ["a", "b"],
                                                   "text_field": "text"}).id
        owner_id = owner.id
    with db.engine.begin() as conn:
        for first in range(0, n_users, 10_000):
            conn.execute(insert(User), [
                {"email": f"person-{n}@crowd.test", "role": "annotator", "org_id": org_id if n % 10 == 0 else None}
                for n in range(first, min(first + 10_000, n_users))])
        batch_ids = [conn.execute(insert(Batch).values(project_id=project_id, name=f"day {n}", status="completed")
                                  .returning(Batch.id)).scalar_one() for n in range(n_batches)]
        tasks = [{"project_id": project_id, "batch_id": batch_id, "data": {"text": "x"}, "status": "completed",
                  "required": 1, "n_claimed": 1, "n_annotations": 1}
                 for batch_id in batch_ids for _ in range(batch_tasks)]
        for first in range(0, len(tasks), 10_000):
            conn.execute(insert(Task.__table__), tasks[first:first + 10_000])
    db.dispose()
    return project_id, owner_id


def read_all(client: httpx.Client, path: str, page_size: int) -> tuple[float, int, float, int, int]:
    """(seconds to the first answer, its bytes, seconds to read every row, rows read, requests)."""
    started = time.perf_counter()
    first = client.get(path)  # as a client that names no page size
    first.raise_for_status()
    first_seconds, first_bytes = time.perf_counter() - started, len(first.content)
    body, found, requests = first.json(), 0, 1
    while True:
        if isinstance(body, list):  # a server that lists everything at once
            found += len(body)
            break
        found += len(body["items"])
        if body["next"] is None:
            break
        body = client.get(path, params={"limit": page_size, "after": body["next"]}).json()
        requests += 1
    return first_seconds, first_bytes, time.perf_counter() - started, found, requests


def _row(what: str, runs: list[tuple[float, int, float, int, int]]) -> str:
    return (f"| {what} | {statistics.median(r[0] for r in runs):.3f} | {runs[0][1]:,} | "
            f"{statistics.median(r[2] for r in runs):.2f} | {runs[0][3]:,} | {runs[0][4]} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--batches", type=int, default=5_000)
    parser.add_argument("--batch-tasks", type=int, default=20)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    server: Server
    with serve(None, 1) as server:
        project_id, owner_id = fill(f"sqlite:///{server.home}/qistas.db", args.users, args.batches, args.batch_tasks)
        with api(server) as admin:
            token = check(admin.post(f"/users/{owner_id}/tokens"))["token"]
            users = [read_all(admin, "/users", args.page_size) for _ in range(args.repeat)]
        with api(server, token) as owner:
            batches = [read_all(owner, f"/projects/{project_id}/batches", args.page_size)
                       for _ in range(args.repeat)]
    print("| list | first answer s | first answer bytes | every row s | rows read | requests |")
    print("|---|---:|---:|---:|---:|---:|")
    print(_row(f"users ({args.users:,})", users))
    print(_row(f"batches ({args.batches:,} of {args.batch_tasks} tasks)", batches))
    return 0


if __name__ == "__main__":
    sys.exit(main())
