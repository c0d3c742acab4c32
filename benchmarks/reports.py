"""Reports on a large project: how long each takes, and how long a writer waits meanwhile.

Builds a project with ``export.build`` (N tasks x 4 answers, answered by ``--annotators``
people drawn at random; or reads ``--database-url URL --project ID``), then times each report
the API serves as its route reads it (a read transaction): a project's quality, its fraud
signals, its statistics, the payouts. With ``--writer`` a thread meanwhile writes a small
transaction (an audit event) every 10 ms, and the longest it waited is printed for the report
read as the routes now read it, and read inside a write transaction as they did before (on
SQLite that transaction holds the write lock, and every other writer waits for it).

    python benchmarks/reports.py [--tasks N] [--annotators N] [--database-url URL --project ID] [--writer]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from export import build  # noqa: E402


def reports(project_id: int) -> dict[str, Callable[[Any], Any]]:
    from qistas.db.models import Project
    from qistas.domain import fraud, pay, quality_report, results

    def project(session: Any) -> Project:
        found = session.get(Project, project_id)
        assert found is not None
        return found

    return {
        "quality": lambda s: quality_report.project_quality(s, project=project(s), pseudonym=lambda u: f"a{u}"),
        "fraud": lambda s: fraud.detect(s, projects=[project(s)]),
        "stats": lambda s: results.project_stats(s, project_id=project_id, now=datetime.now(UTC)),
        "payouts": lambda s: pay.payouts(s, org_id=None, since=None, until=None),
    }


def waits_while(db: Any, run: Callable[[], Any]) -> tuple[float, float]:
    """``run``'s seconds, and the longest a writer every 10 ms waited meanwhile (seconds)."""
    from qistas.db.unit_of_work import write
    from qistas.domain import audit

    done = threading.Event()
    longest = [0.0]

    def writer() -> None:
        while not done.is_set():
            began = time.perf_counter()
            write(db, lambda s: audit.record(s, actor=None, action="bench.write", object_type="bench",
                                             object_id=None, org_id=None))
            longest[0] = max(longest[0], time.perf_counter() - began)
            time.sleep(0.01)

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.1)
    began = time.perf_counter()
    try:
        run()
    finally:
        seconds = time.perf_counter() - began
        done.set()
        thread.join()
    return seconds, longest[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--annotators", type=int, help="a workforce of this many (default: 4)")
    parser.add_argument("--database-url", help="an empty database to fill (default: a temporary SQLite file)")
    parser.add_argument("--project", type=int, help="report on this project of --database-url; build nothing")
    parser.add_argument("--only", help="comma-separated reports (quality,fraud,stats,payouts)")
    parser.add_argument("--writer", action="store_true",
                        help="a writer every 10 ms meanwhile: its longest wait, reports read as now and as before")
    args, _unknown = parser.parse_known_args()  # make bench passes its own arguments to every script
    from qistas.db.engine import Database
    from qistas.db.unit_of_work import read, write

    with tempfile.TemporaryDirectory(prefix="qistas-bench-") as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        project_id = args.project
        if project_id is None:
            began = time.perf_counter()
            project_id = build(url, args.tasks, 4, annotators=args.annotators)
            print(f"built {args.tasks:,} tasks x 4 answers by {args.annotators or 4:,} annotators "
                  f"in {time.perf_counter() - began:.1f}s", flush=True)
        db = Database.from_url(url)
        found = reports(project_id)
        for name in (args.only.split(",") if args.only else found):
            work = found[name]
            if not args.writer:
                began, cpu = time.perf_counter(), time.process_time()
                read(db, work)
                seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
                print(f"{name:8} {seconds:7.2f}s  cpu {cpu:6.2f}s", flush=True)
                continue
            seconds, waited = waits_while(db, lambda work=work: read(db, work))
            _, before = waits_while(db, lambda work=work: write(db, work))
            print(f"{name:8} {seconds:7.2f}s  a writer waited at most {waited * 1000:,.0f} ms "
                  f"(read in a write transaction: {before * 1000:,.0f} ms)", flush=True)
        db.dispose()
    print(f"{db.engine.dialect.name}, {os.cpu_count()} CPUs, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    main()
