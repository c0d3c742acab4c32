"""The assignment engine without HTTP: CPU of one take + submit, and the claim in two hard cases.

1. ``cycle``: one process loops take -> submit through the domain functions, each in its own
   write transaction with its token lookup, as the routes do (3 annotators, redundancy 3).
   Printed: CPU milliseconds per annotation (``time.process_time``), the part of the server's
   CPU that is the database work.
2. ``claim far along``: a project of 100,000 tasks with 60,000 completed and 20 in flight;
   printed: the time of the started-first claim query (SQLite: the median of 200 runs;
   PostgreSQL, after ANALYZE: the server's own execution time of the plan for these values).
3. ``lone annotator``: the same claim for an annotator who answered 600 tasks of a project
   nobody else works on, on statistics from before their first answer (as after an import).

    python benchmarks/engine_cycle.py
    python benchmarks/engine_cycle.py --postgres postgresql://user:pw@host:5432/postgres
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from annotate_loop import DEFAULT_POSTGRES, fresh_database, postgres_reachable
from sqlalchemy import text

from qistas.db.engine import Database
from qistas.db.migrate import upgrade
from qistas.db.models import Project
from qistas.db.queries import assignments as claim_queries
from qistas.db.types import utcnow
from qistas.domain import annotations, assignments, imports, projects, users

SPEC = {"type": "classification", "labels": ["positive", "negative", "mixed"], "text_field": "text"}


def setup(db: Database, n_tasks: int, n_annotators: int,
          review: dict[str, Any] | None = None) -> tuple[int, list[str]]:
    with db.writer.begin() as session:
        org = users.create_org(session, name="Bench", slug="bench")
        owner = users.create_user(session, email="owner@bench.test", role="owner", org_id=org.id)
        project = projects.create_project(session, org_id=org.id, actor=owner, name="bench", task=SPEC,
                                          redundancy={"min": 3, "max": 3}, review=review)
        rows = ({"data": {"text": f"item {n}"}} for n in range(n_tasks))
        imports.import_tasks(session, project=project, rows=enumerate(rows, 1))
        tokens = [users.create_token(session, user=users.create_user(
            session, email=f"w{n}@bench.test", role="annotator")) for n in range(n_annotators)]
        return project.id, tokens


def one_annotation(db: Database, project_id: int, token: str, label: str) -> bool:
    with db.writer.begin() as session:
        actor = users.user_for_token(session, token)
        assert actor is not None
        claimed = assignments.claim(session, project=session.get_one(Project, project_id), annotator=actor,
                                    now=utcnow(), lease_seconds=600)
        if claimed is None:
            return False
        lease_id = claimed[0].id
    with db.writer.begin() as session:
        actor = users.user_for_token(session, token)
        assert actor is not None
        annotations.submit(session, assignment_id=lease_id, annotator=actor, answer={"label": label},
                           seconds=1.0, now=utcnow())
    return True


def cycle(url: str, rounds: int, review: dict[str, Any] | None = None) -> float:
    upgrade(url)
    db = Database.from_url(url)
    try:
        project_id, tokens = setup(db, n_tasks=rounds + 100, n_annotators=3, review=review)
        for token in tokens:  # warm up: statement caches, the first fit-less posterior
            one_annotation(db, project_id, token, "positive")
        done, start = 0, time.process_time()
        for n in range(rounds):
            done += one_annotation(db, project_id, tokens[n % 3], ("positive", "negative")[n % 2])
        return 1000 * (time.process_time() - start) / max(done, 1)
    finally:
        db.dispose()


def claim_far_along(url: str, repeats: int = 200, *, in_flight_index: bool = True) -> float:
    upgrade(url)
    db = Database.from_url(url)
    try:
        project_id, tokens = setup(db, n_tasks=100_000, n_annotators=1)
        with db.engine.begin() as connection:
            first = connection.execute(text("SELECT min(id) FROM tasks WHERE project_id = :p"),
                                       {"p": project_id}).scalar_one()
            connection.execute(text("UPDATE tasks SET status = 'completed', n_claimed = 3, n_annotations = 3 "
                                    "WHERE project_id = :p AND id < :cut"), {"p": project_id, "cut": first + 60_000})
            connection.execute(text("UPDATE tasks SET n_claimed = 1 WHERE project_id = :p AND id >= :cut "
                                    "AND id < :end"), {"p": project_id, "cut": first + 60_000, "end": first + 60_020})
        if not in_flight_index:  # as before migration 0003, to compare
            with db.engine.begin() as connection:
                connection.execute(text("DROP INDEX ix_tasks_in_flight"))
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect() as connection:
                connection.execute(text("ANALYZE tasks"))
                connection.commit()
        return started_first_claim_ms(db, project_id, tokens[0], repeats)
    finally:
        db.dispose()


def lone_annotator_claim(url: str, answers: int = 600, repeats: int = 200) -> float:
    """The started-first claim of an annotator who answered ``answers`` tasks of a project
    nobody else works on (each still in flight, 1 of 3 answers), planned on statistics from
    before their first answer, as after an import."""
    upgrade(url)
    db = Database.from_url(url)
    try:
        project_id, tokens = setup(db, n_tasks=answers + 400, n_annotators=1)
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect() as connection:
                connection.execute(text("ANALYZE tasks"))
                connection.execute(text("ANALYZE assignments"))
                connection.commit()
        for _ in range(answers):
            one_annotation(db, project_id, tokens[0], "positive")
        return started_first_claim_ms(db, project_id, tokens[0], repeats)
    finally:
        db.dispose()


def started_first_claim_ms(db: Database, project_id: int, token: str, repeats: int) -> float:
    """On SQLite the median time of the query; on PostgreSQL the server's own execution time
    of the plan it makes for these values (as for a statement's first runs)."""
    with db.reader() as session:
        annotator = users.user_for_token(session, token)
        assert annotator is not None
        params = {"project_id": project_id, "annotator_id": annotator.id}
        if db.engine.dialect.name == "postgresql":
            query = claim_queries.NEXT[0][True].statement
            compiled = query.compile(dialect=db.engine.dialect)
            explained = session.connection().exec_driver_sql(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + str(compiled),
                {**compiled.params, **params}).scalar_one()
            session.rollback()
            return float(explained[0]["Execution Time"])
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            claim_queries.NEXT[0][False].first(session, **params)
            times.append(time.perf_counter() - start)
        return 1000 * statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3000, help="annotations in the cycle measurement")
    parser.add_argument("--postgres", default=os.environ.get("QISTAS_BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
                        help="PostgreSQL server URL (a fresh database is made on it); 'none' to skip")
    parser.add_argument("--without-in-flight-index", action="store_true",
                        help="time the claim without the partial index of tasks in flight (as before it existed)")
    parser.add_argument("--review", type=json.loads, metavar="JSON",
                        help='the project\'s review policy in the cycle, e.g. \'{"share": 0.1, "probation": 20}\'')
    parser.add_argument("--cycle-only", action="store_true", help="measure the cycle only, not the claim cases")
    args = parser.parse_args()
    backends = ["sqlite"]
    if args.postgres != "none" and postgres_reachable(args.postgres):
        backends.append("postgresql")
    print("| database | CPU ms per take + submit | started-first claim at 60k of 100k done, ms "
          "| a lone annotator's claim at 600 answers, ms |")
    print("|---|---:|---:|---:|")
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix="qistas-engine-") as home, \
                fresh_database(backend, args.postgres) as pg_url:
            cpu = cycle(pg_url or f"sqlite:///{Path(home) / 'cycle.db'}", args.rounds, args.review)
        if args.cycle_only:
            print(f"| {backend} | {cpu:.2f} | | |", flush=True)
            continue
        with tempfile.TemporaryDirectory(prefix="qistas-engine-") as home, \
                fresh_database(backend, args.postgres) as pg_url:
            claim = claim_far_along(pg_url or f"sqlite:///{Path(home) / 'claim.db'}",
                                    in_flight_index=not args.without_in_flight_index)
        with tempfile.TemporaryDirectory(prefix="qistas-engine-") as home, \
                fresh_database(backend, args.postgres) as pg_url:
            lone = lone_annotator_claim(pg_url or f"sqlite:///{Path(home) / 'lone.db'}")
        print(f"| {backend} | {cpu:.2f} | {claim:.2f} | {lone:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
