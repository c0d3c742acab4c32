"""Two tenants' reports through one server's report process: does one wait behind the other's?

A large project's quality report is read by a report process of the server
(``QISTAS_REPORT_PROCESSES``, one by default). Tenant B reads the quality report of its project
one after another, first alone, then while tenant A's clients (``--a-clients``) read the report
of A's larger project back to back, keeping that many of its own queued for the process. Printed
for each: B's report time (median and longest, seconds), the reports each tenant read, and
errors. Both projects are built in bulk (``export.build``), 4 answers a task, each of at least
``QISTAS_REPORT_PROCESS_MIN_ANSWERS`` (20,000) answers, so both go to the report process.

    python benchmarks/report_queue.py --only sqlite
    python benchmarks/report_queue.py --only postgresql --postgres URL
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass

from annotate_loop import DEFAULT_POSTGRES, Server, api, check, databases, fresh_database, serve
from export import build


@dataclass
class Reading:
    """B's reports (seconds each), and how many reports A read meanwhile."""

    b_seconds: list[float]
    a_done: int
    errors: int


def _token(server: Server, email: str) -> str:
    with api(server) as admin:
        page = check(admin.get("/users", params={"email": email}), 200)
        found = next(u for u in page["items"] if u["email"] == email)
        return str(check(admin.post(f"/users/{found['id']}/tokens"))["token"])


def measure(server: Server, a: tuple[int, str], b: tuple[int, str], a_clients: int, b_reports: int) -> Reading:
    """B reads ``b_reports`` reports in turn while ``a_clients`` of A's read theirs (0: alone)."""
    stop = threading.Event()
    a_done, errors = [0], [0]

    def a_reads() -> None:
        with api(server, a[1]) as client:
            while not stop.is_set():
                response = client.get(f"/projects/{a[0]}/quality")
                if response.status_code == 200:
                    a_done[0] += 1
                else:
                    errors[0] += 1

    threads = [threading.Thread(target=a_reads) for _ in range(a_clients)]
    for thread in threads:
        thread.start()
    if threads:
        time.sleep(1.0)  # A's reports queued for the process before B asks
    seconds = []
    with api(server, b[1]) as client:
        for _ in range(b_reports):
            started = time.perf_counter()
            response = client.get(f"/projects/{b[0]}/quality")
            seconds.append(time.perf_counter() - started)
            if response.status_code != 200:
                errors[0] += 1
    stop.set()
    for thread in threads:
        thread.join()
    return Reading(seconds, a_done[0], errors[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a-tasks", type=int, default=20_000, help="completed tasks of A's project")
    parser.add_argument("--b-tasks", type=int, default=5_000, help="completed tasks of B's project")
    parser.add_argument("--a-clients", type=int, default=4, help="A's clients reading reports at once")
    parser.add_argument("--b-reports", type=int, default=10, help="B's reports, one after another, per run")
    parser.add_argument("--postgres", default=os.environ.get("QISTAS_BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
                        help="PostgreSQL server URL (a fresh database is made on it); 'none' to skip")
    parser.add_argument("--only", choices=["sqlite", "postgresql"], help="run one database only")
    args = parser.parse_args()
    backends = databases(args.postgres, args.only)
    print("| database | A's clients | B's report s, median / longest | B's reports | A's reports | errors |")
    print("|---|---:|---|---:|---:|---:|")
    failed = False
    for backend in backends:
        with ExitStack() as stack:
            db_url = stack.enter_context(fresh_database(backend, args.postgres))
            server = stack.enter_context(serve(db_url, 1))
            url = db_url or f"sqlite:///{server.home}/qistas.db"
            a_project = build(url, args.a_tasks, 4, org="a")
            b_project = build(url, args.b_tasks, 4, org="b")
            a = (a_project, _token(server, "owner@a.test"))
            b = (b_project, _token(server, "owner@b.test"))
            with api(server, b[1]) as client:
                check(client.get(f"/projects/{b[0]}/quality"), 200)  # the report process started
            for a_clients in (0, args.a_clients):
                found = measure(server, a, b, a_clients, args.b_reports)
                failed = failed or found.errors > 0
                print(f"| {backend} | {a_clients} | {statistics.median(found.b_seconds):.2f} / "
                      f"{max(found.b_seconds):.2f} | {len(found.b_seconds)} | {found.a_done} | {found.errors} |",
                      flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
