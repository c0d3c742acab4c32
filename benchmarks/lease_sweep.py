"""The first takes after an outage: what a take costs when many leases have run out at once
(or, with ``--live``, while they are all still held: every started task full).

A project of N tasks, each leased to one of N annotators (redundancy 1, every slot taken), and
then the server is gone for longer than the lease time: every lease has expired when the next
take comes. Times that take, then the next ones (each by an annotator of their own), through
``domain.assignments.claim`` as the API's take runs it (PostgreSQL: ``qistas_take``), each in a
transaction of its own, and counts the expired leases left unswept after each. Each of
``--repeat`` runs builds a project of its own (on PostgreSQL vacuumed and analyzed after the
build, as autovacuum would have done to tables written this much).

    python benchmarks/lease_sweep.py [--database-url URL] [--leases N] [--takes K] [--repeat R] [--live]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

LEASE = 600


def build(url: str, n: int, takes: int, run: int, live: bool) -> tuple[int, list[int]]:
    """The project, its N leases (expired unless ``live``), and the annotators who take next."""
    from sqlalchemy import insert, select, text, update

    from qistas.db.engine import Database
    from qistas.db.migrate import upgrade
    from qistas.db.models import Assignment, Task, User
    from qistas.domain import imports, projects, users

    upgrade(url)
    db = Database.from_url(url)
    leased = datetime.now(UTC) - timedelta(seconds=10 if live else 2 * LEASE)
    with db.writer.begin() as session:
        org = users.create_org(session, name=f"Sweep {run}", slug=f"sweep-{run}")
        owner = users.create_user(session, email=f"owner@sweep-{run}.test", role="owner", org_id=org.id)
        project = projects.create_project(session, org_id=org.id, actor=owner, name="sweep",
                                          redundancy={"min": 1, "max": 1},
                                          task={"type": "classification", "labels": ["a", "b"], "text_field": "text"})
        imports.import_tasks(session, project=project,
                             rows=[(i, {"data": {"text": f"t{i}"}}) for i in range(n + takes)])
        session.execute(insert(User), [{"email": f"w{i}@sweep-{run}.test", "role": "annotator"}
                                       for i in range(n + takes)])
        people = list(session.scalars(select(User.id).where(User.email.like(f"w%@sweep-{run}.test"))
                                      .order_by(User.id)))
        tasks = list(session.scalars(select(Task.id).where(Task.project_id == project.id).order_by(Task.id)))
        session.execute(insert(Assignment), [
            {"task_id": task, "project_id": project.id, "annotator_id": person, "status": "active",
             "created_at": leased + timedelta(microseconds=i),
             "expires_at": leased + timedelta(seconds=LEASE, microseconds=i)}
            for i, (task, person) in enumerate(zip(tasks[:n], people[:n], strict=True))])
        for low in range(0, n, 10_000):
            session.execute(update(Task).where(Task.id.in_(tasks[low:low + 10_000])).values(n_claimed=1))
        project_id = project.id
    if db.engine.dialect.name == "postgresql":  # what autovacuum does to a table written this much
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE tasks, assignments"))
    db.dispose()
    return project_id, people[n:]


def takes_after_outage(url: str, project_id: int, takers: list[int]) -> list[tuple[float, int]]:
    """Each take's milliseconds and the expired leases left after it."""
    from sqlalchemy import func, select

    from qistas.db.engine import Database
    from qistas.db.models import Assignment, Project, User
    from qistas.domain import assignments

    db = Database.from_url(url)
    found: list[tuple[float, int]] = []
    now = datetime.now(UTC)
    for person in takers:
        began = time.perf_counter()
        with db.writer.begin() as session:
            claimed = assignments.claim(session, project=session.get_one(Project, project_id),
                                        annotator=session.get_one(User, person), now=now, lease_seconds=LEASE)
            assert claimed is not None
        took = (time.perf_counter() - began) * 1000
        with db.reader() as session:
            left = session.scalar(select(func.count()).select_from(Assignment).where(
                Assignment.project_id == project_id, Assignment.status == "active", Assignment.expires_at <= now))
        found.append((took, int(left or 0)))
    db.dispose()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="an empty database to fill (default: a temporary SQLite file)")
    parser.add_argument("--leases", type=int, default=20_000, help="leases expired when the takes come")
    parser.add_argument("--takes", type=int, default=20, help="takes timed one after another")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--live", action="store_true", help="the leases still held when the takes come")
    args = parser.parse_args()
    folder = tempfile.TemporaryDirectory()
    url = args.database_url or f"sqlite:///{Path(folder.name) / 'sweep.db'}"
    for run in range(args.repeat):
        began = time.perf_counter()
        project_id, takers = build(url, args.leases, args.takes, run, args.live)
        kind = "live" if args.live else "expired"
        print(f"built {args.leases:,} {kind} leases in {time.perf_counter() - began:.1f}s", flush=True)
        found = takes_after_outage(url, project_id, takers)
        rest = [ms for ms, _ in found[1:]]
        print(f"{url.split(':')[0]:<10} first take {found[0][0]:8.1f} ms ({found[0][1]:,} expired left)  "
              f"next {len(rest)}: median {statistics.median(rest):.1f} ms, max {max(rest):.1f} ms "
              f"({found[-1][1]:,} left after the last)", flush=True)


if __name__ == "__main__":
    main()
