"""One tenant's annotation loop while another tenant pushes: is A slowed by B?

Tenant A runs the annotation loop (K annotators, take -> submit, as in annotate_loop.py)
against a real ``qistas serve``, first alone, then while tenant B, on the same server:

  import    imports large JSONL files, one after another, for the whole run
  bigimport uploads one JSONL file of --big-import-mb (1 GB by default) as A starts
  exports   starts 10 export jobs of a 100,000-task project
  clients   sends 16 clients at full speed (reads of its own tasks, and imports of 100 rows)
  logins    has 8 anonymous clients post wrong passwords to the sign-in page
  reports   has 2 clients read the quality report and the fraud signals of a project of
            --report-tasks completed tasks (4 answers each), one after another
  refits    has 1 client ask for refits of such a project's worker model, one after another
            (the first one, which re-scores every task, before A starts)
  rescores  the same, the first refit asked for as A starts: its writes of every task's new
            result (confidences and answers) while A annotates

Printed for each: A's annotations per second and its share of A alone, A's cycle
p50/p95/p99, A's errors, and what B got done. The aim (docs/benchmarks.md): A keeps at least
80% of its throughput and a p99 under 200 ms in every case, with no error.

    python benchmarks/fairness.py                  # SQLite and, when reachable, PostgreSQL
    python benchmarks/fairness.py --quick
    python benchmarks/fairness.py --only sqlite --scenarios alone,import
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field

import httpx
from annotate_loop import (
    DEFAULT_POSTGRES,
    DEFAULT_WORKERS,
    Server,
    api,
    check,
    databases,
    fresh_database,
    jsonl,
    ms,
    new_project,
    run_clients,
    serve,
    triple,
)

SCENARIOS = ("alone", "import", "bigimport", "exports", "clients", "logins", "reports", "refits", "rescores")


@dataclass
class Pressure:
    """Tenant B's side: work done and refused while A ran."""

    done: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: int | str, ok: bool) -> None:
        with self.lock:
            if ok:
                self.done += 1
            else:
                self.errors[str(status)] = self.errors.get(str(status), 0) + 1


def _repeat(stop: threading.Event, n_threads: int, step: Callable[[int], None]) -> list[threading.Thread]:
    def run(n: int) -> None:
        while not stop.is_set():
            step(n)

    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(n_threads)]
    for thread in threads:
        thread.start()
    return threads


def big_jsonl(megabytes: int) -> str:
    """A JSONL file of about ``megabytes`` MB of tasks, written once per process (its path)."""
    path = os.path.join(tempfile.gettempdir(), f"qistas-fairness-{megabytes}mb.jsonl")
    if os.path.exists(path) and os.path.getsize(path) >= megabytes * 1_000_000:
        return path
    chunk = 100_000
    with open(path + ".part", "wb") as out:
        start = 0
        while out.tell() < megabytes * 1_000_000:
            out.write(jsonl(chunk).replace(b'"unique_id": "u', f'"unique_id": "{start}-'.encode()))
            start += chunk
    os.replace(path + ".part", path)
    return path


def start_pressure(kind: str, server: Server, stop: threading.Event, pressure: Pressure,
                   import_rows: int, big_import_mb: int, db_url: str, report_tasks: int) -> list[threading.Thread]:
    if kind == "alone":
        return []
    if kind in ("reports", "refits", "rescores"):
        return _reports(server, db_url, report_tasks, stop, pressure, refits=kind != "reports",
                        first_before=kind == "refits")
    owner, project_id, _ = new_project(server, 0)
    if kind == "bigimport":
        path = big_jsonl(big_import_mb)

        def one_big_import() -> None:
            with open(path, "rb") as body, httpx.Client(base_url=owner.base_url, timeout=3600,
                                                        headers=owner.headers) as uploader:
                try:
                    response = uploader.post(f"/projects/{project_id}/tasks", content=body,
                                             headers={"Content-Type": "application/x-ndjson"})
                except httpx.TransportError:
                    return  # the run ended and its server stopped while the import went on
            pressure.add(response.status_code, response.status_code == 201)

        thread = threading.Thread(target=one_big_import, daemon=True)
        thread.start()
        return [thread]
    if kind == "import":
        def one_import(_n: int) -> None:
            body = jsonl(import_rows).replace(b'"unique_id": "u', f'"unique_id": "{uuid.uuid4().hex[:8]}-'.encode())
            response = owner.post(f"/projects/{project_id}/tasks", content=body,
                                  headers={"Content-Type": "application/x-ndjson"})
            pressure.add(response.status_code, response.status_code == 201)

        return _repeat(stop, 1, one_import)
    if kind == "exports":
        check(owner.post(f"/projects/{project_id}/tasks", content=jsonl(100_000),
                         headers={"Content-Type": "application/x-ndjson"}))
        for _ in range(10):
            check(owner.post(f"/projects/{project_id}/exports", json={"format": "jsonl"}), 202)
        pressure.done = 10
        return []
    if kind == "clients":
        check(owner.post(f"/projects/{project_id}/tasks", content=jsonl(1000),
                         headers={"Content-Type": "application/x-ndjson"}))
        clients = [api(server, owner.headers["Authorization"].split()[1]) for _ in range(16)]

        def hammer(n: int) -> None:
            client = clients[n]
            if n % 4 == 0:
                body = jsonl(100).replace(b'"unique_id": "u', f'"unique_id": "{uuid.uuid4().hex[:8]}-'.encode())
                response = client.post(f"/projects/{project_id}/tasks", content=body,
                                       headers={"Content-Type": "application/x-ndjson"})
            else:
                response = client.get(f"/projects/{project_id}/tasks", params={"limit": 100})
            pressure.add(response.status_code, response.status_code < 300)

        return _repeat(stop, 16, hammer)
    if kind == "logins":
        def guess(_n: int) -> None:
            with httpx.Client(base_url=server.url, timeout=60) as anonymous:
                page = anonymous.get("/login")
                token = re.search(r'name="csrf" value="([^"]+)"', page.text)
                response = anonymous.post("/login", data={"csrf": token.group(1) if token else "",
                                                          "email": "owner@nowhere.test", "password": "wrong"})
                pressure.add(response.status_code, response.status_code in (401, 429))

        return _repeat(stop, 8, guess)
    raise ValueError(kind)


def _reports(server: Server, db_url: str, n_tasks: int, stop: threading.Event, pressure: Pressure, *,
             refits: bool, first_before: bool) -> list[threading.Thread]:
    """B's project of ``n_tasks`` completed tasks inserted in bulk (as ``export.py`` builds
    one), then 2 clients reading its quality report and fraud signals in turn, or (``refits``)
    one client asking for refits (the first, which re-scores every task, done before A starts
    when ``first_before``)."""
    from export import build
    from sqlalchemy import create_engine, text

    project_id = build(db_url, n_tasks, 4)
    engine = create_engine(db_url)
    with engine.connect() as conn:
        owner_id = conn.execute(text("SELECT id FROM users WHERE email = 'owner@bench.test'")).scalar_one()
    engine.dispose()
    with api(server) as admin:
        token = check(admin.post(f"/users/{owner_id}/tokens"))["token"]
    clients = [api(server, token) for _ in range(2)]
    if refits and first_before:
        check(clients[0].post(f"/projects/{project_id}/quality/refit"), 200)

    def report(n: int) -> None:
        if refits:
            response = clients[n].post(f"/projects/{project_id}/quality/refit")
        else:
            response = clients[n].get(f"/projects/{project_id}/{('quality', 'fraud')[pressure.done % 2]}")
        pressure.add(response.status_code, response.status_code == 200)

    return _repeat(stop, 1 if refits else 2, report)


@dataclass
class Row:
    backend: str
    scenario: str
    rate: float
    cycle: tuple[float, float, float]
    errors: dict[str, int]
    b_done: int
    b_errors: dict[str, int]


def measure(backend: str, admin_url: str | None, scenario: str, k: int, n_tasks: int, seconds: float,
            workers: int, import_rows: int, big_import_mb: int, report_tasks: int) -> Row:
    with fresh_database(backend, admin_url) as db_url, serve(db_url, workers) as server:
        owner, project_id, tokens = new_project(server, k)
        with closing(owner):
            check(owner.post(f"/projects/{project_id}/tasks", content=jsonl(n_tasks),
                             headers={"Content-Type": "application/x-ndjson"}))
        stop, pressure = threading.Event(), Pressure()
        threads = start_pressure(scenario, server, stop, pressure, import_rows, big_import_mb,
                                 db_url or f"sqlite:///{server.home}/qistas.db", report_tasks)
        time.sleep(0.5 if threads or scenario == "exports" else 0)  # B is under way when A starts
        out = run_clients(server.url, project_id, tokens, seconds, "classification")
        stop.set()
        for thread in threads:
            thread.join(timeout=0 if scenario == "bigimport" else 300)  # B's big import may go on
    return Row(backend, scenario, out["annotations"] / out["elapsed"], triple(out["cycle"]), out["errors"],
               pressure.done, pressure.errors)


def print_table(rows: list[Row], k: int, seconds: float) -> None:
    print(f"\nTenant A: {k} annotators for {seconds:.0f} s; tenant B as the scenario says")
    print("| database | B does | A ann/s | A vs alone | A cycle p50/p95/p99 ms | A errors | B done | B refused |")
    print("|---|---|---:|---:|---|---:|---:|---|")
    alone = {r.backend: r.rate for r in rows if r.scenario == "alone"}
    for r in rows:
        share = f"{100 * r.rate / alone[r.backend]:.0f}%" if alone.get(r.backend) else "–"
        errors = sum(r.errors.values())
        print(f"| {r.backend} | {r.scenario} | {r.rate:.0f} | {share} | {ms(r.cycle)} | "
              f"{errors}{' ' + json.dumps(r.errors) if errors else ''} | {r.b_done} | "
              f"{json.dumps(r.b_errors) if r.b_errors else '–'} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--clients", type=int, default=32, help="tenant A's annotators")
    parser.add_argument("--tasks", type=int, default=10_000, help="tenant A's tasks")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each run")
    parser.add_argument("--import-rows", type=int, default=150_000, help="rows of each of B's imports")
    parser.add_argument("--big-import-mb", type=int, default=1024, help="size of B's one big import (MB)")
    parser.add_argument("--report-tasks", type=int, default=50_000,
                        help="completed tasks of the project whose reports B reads")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated: " + ", ".join(SCENARIOS))
    parser.add_argument("--postgres", default=os.environ.get("QISTAS_BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
                        help="PostgreSQL server URL (a fresh database is made on it); 'none' to skip")
    parser.add_argument("--only", choices=["sqlite", "postgresql"], help="run one database only")
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.seconds, args.import_rows, args.big_import_mb = 2000, 6.0, 30_000, 100
        args.report_tasks = 10_000
    # the server takes B's big import (the default limit is 512 MB)
    os.environ.setdefault("QISTAS_MAX_UPLOAD_BYTES", str(max(512, 2 * args.big_import_mb) * 1024 * 1024))
    scenarios = [s for s in args.scenarios.split(",") if s]
    if "alone" not in scenarios:
        scenarios.insert(0, "alone")
    backends = databases(args.postgres, args.only)
    rows: list[Row] = []
    for backend in backends:
        for scenario in scenarios:
            rows.append(measure(backend, args.postgres, scenario, args.clients, args.tasks, args.seconds,
                                DEFAULT_WORKERS[backend], args.import_rows, args.big_import_mb, args.report_tasks))
            print_table(rows[-1:], args.clients, args.seconds)
    print_table(rows, args.clients, args.seconds)
    return 1 if any(sum(r.errors.values()) for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
