"""How long each transaction of an import holds SQLite's write lock: its chunks staged, then moved.

A server makes the project (``annotate_loop.serve``); this process then checks N rows and writes
them the way ``staged_imports.write_checked`` does, one transaction per chunk, timing each
(``BEGIN IMMEDIATE`` to commit: the time another writer of the database waits at most). Staging
runs twice on the same rows: with the rows encoded before the transaction opens
(``staged_rows``, what imports do) and with SQLAlchemy encoding them inside it (a Core insert of
the same values, what they did before).

    python benchmarks/import_chunks.py                 # 150,000 rows
    python benchmarks/import_chunks.py --rows 20000
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from functools import partial
from typing import Any

from annotate_loop import fresh_database, jsonl, new_project, serve

from qistas.db.engine import Database
from qistas.db.models import Project, StagedTask, table
from qistas.db.types import utcnow
from qistas.db.unit_of_work import read, write
from qistas.domain import imports, staged_imports


def timed(db: Database, work: Any) -> float:
    start = time.perf_counter()
    write(db, work, bulk=True)
    return 1000 * (time.perf_counter() - start)


def encoded_inside(session: Any, *, import_id: int, first_seq: int, rows: list[dict[str, Any]]) -> None:
    """The chunk as staged before: SQLAlchemy encodes the values inside the transaction."""
    values = [{"import_id": import_id, "seq": first_seq + n, **{c: row[c] for c in staged_imports.STAGED_COLUMNS}}
              for n, row in enumerate(rows)]
    session.execute(table(StagedTask).insert(), values)


def line(name: str, ms: list[float], rows: int) -> str:
    ms = sorted(ms)
    return (f"| {name} | {len(ms)} | {rows} | {statistics.median(ms):.1f} | {ms[int(0.9 * len(ms))]:.1f} | "
            f"{ms[-1]:.1f} | {sum(ms) / 1000:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=150_000)
    args = parser.parse_args()
    with fresh_database("sqlite", None) as _, serve(None, 1) as server:
        _owner, project_id, _ = new_project(server, 0)
        db = Database.from_url(f"sqlite:///{server.home}/qistas.db")
        plan = read(db, lambda s: imports.plan_import(s, project=s.get(Project, project_id)))
        checked = imports.check_rows(plan, imports.iter_rows(io.BytesIO(jsonl(args.rows)), "jsonl"))
        dialect = db.engine.dialect
        with checked:
            # before: encoded in the transaction (written, then abandoned)
            before: list[float] = []
            import_id = write(db, partial(staged_imports.begin, project_id=project_id, actor_id=None, now=utcnow()))
            seq = 0
            for chunk in checked.chunks():
                before.append(timed(db, partial(encoded_inside, import_id=import_id, first_seq=seq, rows=chunk)))
                seq += len(chunk)
            staged_imports.abandon_all(db, import_id=import_id)
            # now: encoded first, then staged, committed and moved
            staged: list[float] = []
            import_id = write(db, partial(staged_imports.begin, project_id=project_id, actor_id=None, now=utcnow()))
            seq = 0
            for chunk in checked.chunks():
                rows = staged_imports.staged_rows(dialect, import_id=import_id, first_seq=seq, rows=chunk)
                staged.append(timed(db, partial(staged_imports.stage, import_id=import_id, rows=rows, now=utcnow())))
                seq += rows.count
            write(db, partial(staged_imports.commit, import_id=import_id, batch_ids=checked.batch_ids, now=utcnow()))
            moves: list[float] = []
            while True:
                start = time.perf_counter()
                moved = write(db, partial(staged_imports.move, import_id=import_id, now=utcnow()), bulk=True)
                moves.append(1000 * (time.perf_counter() - start))
                if moved.done:
                    break
        db.dispose()
    print(f"\nImport of {args.rows:,} rows on SQLite: each transaction, BEGIN IMMEDIATE to commit")
    print("| step | transactions | rows each | median ms | p90 ms | max ms | total s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(line("stage, encoded inside the transaction (before)", before, imports.CHUNK))
    print(line("stage, encoded first (staged_rows)", staged, imports.CHUNK))
    print(line("move into tasks", moves, staged_imports.MOVE_CHUNK))
    print(f"created {moved.result.created:,}, duplicates {moved.result.duplicates:,}")


if __name__ == "__main__":
    main()
