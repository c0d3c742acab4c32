"""Export benchmark: 1M annotations (250k tasks x 4) in jsonl, csv and parquet.

Builds a throw-away SQLite database (or uses --database-url, e.g. PostgreSQL), inserts the
data with Core bulk inserts, then runs each export in a fresh process and reports its wall
time and peak memory (maximum RSS of that process). ``--quick`` uses 25k tasks.

    python benchmarks/export.py [--quick] [--tasks N] [--formats jsonl,csv,parquet] [--repeat N] [--write-docs]
    python benchmarks/export.py --database-url URL --project ID --formats jsonl [--unfrozen]
    python benchmarks/export.py --database-url URL --project ID --explain [--repeat N]

``--database-url URL --project ID`` exports an existing project instead of building one.
Each export's process sets what it loaded aside from the garbage collector (``gc.freeze``), as
the worker process that runs export jobs does; ``--unfrozen`` leaves it to the collector's passes.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs" / "benchmarks.md"
LABELS = ["positive", "negative", "mixed"]
CHUNK = 20_000


def classification_rows(rng: random.Random, task_id: int, per_task: int) -> tuple[dict[str, Any], list[Any], Any]:
    """One task's data, its ``per_task`` answers and its stored result (a majority vote)."""
    votes = [rng.choice(LABELS) for _ in range(per_task)]
    winner = max(LABELS, key=votes.count)
    return ({"text": f"review number {task_id}: the product was fine, delivery slow"},
            [{"label": vote} for vote in votes], {"label": winner})


def build(url: str, n_tasks: int, per_task: int, *, spec: dict[str, Any] | None = None,
          rows: Callable[[random.Random, int, int], tuple[dict[str, Any], list[Any], Any]] = classification_rows,
          annotators: int | None = None, org: str = "bench") -> int:
    """A project of ``n_tasks`` completed tasks with ``per_task`` answers each, inserted in bulk:
    single-label classification unless ``spec`` and ``rows`` (data, answers, result) say otherwise.
    ``annotators``: a workforce of that many, each task answered by ``per_task`` of them drawn at
    random (default: the same ``per_task`` annotators answer every task). ``org``: the slug of the
    organization made for it, whose owner is ``owner@<org>.test`` and annotators ``w<n>@<org>.test``."""
    from sqlalchemy import func, insert, select, text

    from qistas.db.engine import Database
    from qistas.db.migrate import upgrade
    from qistas.db.models import Annotation, Assignment, Task, User, WorkerStats
    from qistas.domain import projects, users

    upgrade(url)
    db = Database.from_url(url)
    rng = random.Random(7)
    with db.writer.begin() as session:
        made = users.create_org(session, name=org.title(), slug=org)
        owner = users.create_user(session, email=f"owner@{org}.test", role="owner", org_id=made.id)
        workers = [users.create_user(session, email=f"w{i}@{org}.test", role="annotator").id for i in range(per_task)]
        if annotators is not None and annotators > per_task:
            session.execute(insert(User), [{"email": f"w{i}@{org}.test", "role": "annotator"}
                                           for i in range(per_task, annotators)])
            workers = list(session.scalars(select(User.id).where(User.role == "annotator").order_by(User.id)))
        project = projects.create_project(
            session, org_id=made.id, actor=owner, name="bench", redundancy={"min": per_task, "max": per_task},
            task=spec or {"type": "classification", "labels": LABELS, "text_field": "text"})
        project_id = project.id
    start = datetime(2026, 1, 1, tzinfo=UTC)
    # Ids after those already there (a server's database, as benchmarks/fairness.py fills one).
    with db.engine.connect() as conn:
        task_base = conn.execute(select(func.coalesce(func.max(Task.id), 0))).scalar_one()
        next_annotation = 1 + max(conn.execute(select(func.coalesce(func.max(Assignment.id), 0))).scalar_one(),
                                  conn.execute(select(func.coalesce(func.max(Annotation.id), 0))).scalar_one())
    counts: Counter[int] = Counter()
    for first in range(1, n_tasks + 1, CHUNK):
        ids = range(first, min(first + CHUNK, n_tasks + 1))
        tasks, leases, answers = [], [], []
        for number in ids:
            task_id = task_base + number
            at = start + timedelta(seconds=number)
            data, votes, winner = rows(rng, number, per_task)
            tasks.append({
                "id": task_id, "project_id": project_id, "unique_id": f"row-{number}",
                "data": data, "metadata": {"source": "bench"}, "is_gold": False, "status": "completed",
                "required": per_task, "n_claimed": per_task, "n_annotations": per_task, "response": winner,
                "confidence": votes.count(winner) / per_task, "method": "majority_vote", "below_target": False,
                "created_at": at, "completed_at": at,
            })
            answering = workers if len(workers) == per_task else rng.sample(workers, per_task)
            counts.update(answering)
            for worker, vote in zip(answering, votes, strict=True):
                leases.append({"id": next_annotation, "task_id": task_id, "project_id": project_id,
                               "annotator_id": worker, "status": "submitted", "created_at": at,
                               "expires_at": at + timedelta(minutes=10), "ended_at": at})
                answers.append({"id": next_annotation, "assignment_id": next_annotation, "task_id": task_id,
                                "project_id": project_id, "annotator_id": worker, "answer": vote,
                                "seconds": 4.5, "created_at": at})
                next_annotation += 1
        with db.engine.begin() as conn:
            conn.execute(insert(Task.__table__), tasks)
            conn.execute(insert(Assignment.__table__), leases)
            conn.execute(insert(Annotation.__table__), answers)
    with db.engine.begin() as conn:  # each annotator's counts, as the submits keep them
        conn.execute(insert(WorkerStats.__table__), [
            {"project_id": project_id, "annotator_id": worker, "n_annotations": n, "seconds_total": 4.5 * n,
             "n_gold": 0, "n_gold_correct": 0, "blocked": False} for worker, n in counts.items()])
    if db.engine.dialect.name == "postgresql":
        # The statistics autovacuum's ANALYZE would have a minute after such a load: without
        # them the planner guesses a few rows per project and sorts the whole export on disk.
        # The ids were given here: each sequence moved past them, for the rows made after.
        with db.engine.connect() as conn:
            for table in ("tasks", "assignments", "annotations"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"(SELECT max(id) FROM {table}))"))
            conn.execute(text("ANALYZE tasks, assignments, annotations"))
            conn.commit()
    db.dispose()
    return project_id


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM; unlike ru_maxrss it does not carry over an exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def busy_cpu_seconds() -> float:
    """The whole machine's busy CPU time so far (/proc/stat): the exporter and the database
    together, when both run here."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def explain(url: str, project_id: int, repeat: int) -> None:
    """PostgreSQL: the export's statements for the whole project (jsonl's lines, and the flat
    table of csv, parquet and hf), one backend, run under ``EXPLAIN (ANALYZE, TIMING OFF)`` (its
    rows built, none sent): the database's own time, apart from the exporter and the readers' split."""
    from qistas.db.engine import Database
    from qistas.db.models import Project
    from qistas.domain import exportsql, results

    db = Database.from_url(url)
    with db.reader() as session:
        project = session.get(Project, project_id)
        assert project is not None
        selection = results.select_export(session, project=project, options=results.ExportOptions(),
                                          settled_before=datetime.now(UTC))
        heads = exportsql._Heads(lambda user_id: f"a{user_id}", {})
        annotators = list(session.scalars(exportsql._ANSWERED, {"project_id": project_id}))
        parts = exportsql._Parts(selection, heads.of(annotators), [])
        session.execute(exportsql._SETTINGS)
        connection = session.connection()
        for name, statement in (("lines'", parts.lines()), ("flat table's", parts.columns())):
            sql, params = exportsql._driver_statement(connection, statement)
            for _ in range(repeat):
                plan = [line for (line,) in connection.exec_driver_sql("EXPLAIN (ANALYZE, TIMING OFF) " + sql,
                                                                       params)]
                print(f"the {name} statement, {selection.total:,} tasks: {plan[-1].strip()}", flush=True)
    db.dispose()


def run_one(url: str, project_id: int, fmt: str, out: str, readers: int = 1, records_only: bool = False,
            frozen: bool = True) -> None:
    """In a child process: export to ``out``; print time, size and peak RSS as JSON."""
    from qistas.db.engine import Database
    from qistas.db.models import Project
    from qistas.domain import exportformats, exportsql, results
    from qistas.domain.tasktypes import parse_spec

    # Arrow is imported before the clock, as in a server that has written a parquet or hf export
    # before (0.13-0.17 s once per process on the 2-core machine): the figure is the export's.
    imported = time.perf_counter()
    if fmt in ("parquet", "hf"):
        import pyarrow.compute
        import pyarrow.csv
        import pyarrow.parquet  # noqa: F401
    imported = time.perf_counter() - imported
    baseline = peak_rss_mb()
    db = Database.from_url(url)
    # As the worker process that runs export jobs does once started (qistas.cli.worker): what is
    # loaded lives as long as the process, set aside from the collector's full passes.
    if frozen:
        gc.collect()
        gc.freeze()
    began, cpu, machine = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF), busy_cpu_seconds()
    rows = 0
    with db.reader() as session, open(out, "wb") as handle:
        project = session.get(Project, project_id)
        assert project is not None
        spec = parse_spec(project.task_spec)
        selection = results.select_export(session, project=project, options=results.ExportOptions(),
                                          settled_before=datetime.now(UTC))

        def records():  # type: ignore[no-untyped-def]
            nonlocal rows
            for record in results.iter_export_records(session, selection=selection, pseudonym=lambda u: f"a{u}"):
                rows += 1
                yield record

        def progress(done: int) -> None:
            nonlocal rows
            rows = done

        # Built by the database where it builds them (PostgreSQL), as the server does, unless
        # --records asks for the records path (what every export was before).
        prebuilt = None if records_only else exportsql.prebuilt(
            session, selection=selection, pseudonym=lambda u: f"a{u}", progress=progress,
            readers=exportsql.Readers(count=readers, spool_dir=Path(out).parent))
        for chunk in exportformats.render(fmt, records, spec=spec, workdir=Path(out).parent, name="bench",
                                          prebuilt=prebuilt):
            handle.write(chunk)
    seconds = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_seconds = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
    print(json.dumps({"format": fmt, "seconds": seconds, "cpu_seconds": cpu_seconds, "import_seconds": imported,
                      "machine_cpu_seconds": busy_cpu_seconds() - machine, "rows": rows,
                      "bytes": os.path.getsize(out),
                      "peak_rss_mb": peak_rss_mb(), "baseline_rss_mb": baseline}))


def table(found: list[dict[str, float]], n_tasks: int, per_task: int, backend: str, readers: int = 1) -> str:
    lines = [
        "## Exports",
        "",
        f"`python benchmarks/export.py` ({'`--quick`, ' if n_tasks < 250_000 else ''}{n_tasks:,} tasks x {per_task} "
        f"annotations = {n_tasks * per_task:,} annotations, {backend}, each export in a fresh process"
        f"{f' with {readers} readers' if readers > 1 else ''}; "
        "peak memory is that process's maximum RSS, VmHWM).",
        "",
        "| format | time (s) | tasks/s | annotations/s | file (MB) | peak RSS (MB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in found:
        lines.append(f"| {r['format']} | {r['seconds']:.1f} | {r['rows'] / r['seconds']:,.0f} | "
                     f"{r['rows'] * per_task / r['seconds']:,.0f} | {r['bytes'] / 1e6:.0f} | {r['peak_rss_mb']:.0f} |")
    lines += ["", f"Measured {datetime.now(UTC):%Y-%m-%d} on {os.cpu_count()} CPUs, Python "
                  f"{sys.version.split()[0]}. Memory does not grow with the export's size (compare a run with "
                  "`--quick`): exports read the tasks in chunks of 500 and parquet writes one row group "
                  "per chunk; most of parquet's peak is pyarrow's own memory pool.", ""]
    return "\n".join(lines)


def write_docs(section: str) -> None:
    """Replace (or add) the self-contained "## Exports" section of docs/benchmarks.md."""
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n\n`make bench` runs every script in `benchmarks/`.\n"
    start = text.find("## Exports")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1:] if end != -1 else "")
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="25k tasks instead of 250k")
    parser.add_argument("--tasks", type=int, help="number of tasks")
    parser.add_argument("--per-task", type=int, default=4, help="annotations per task")
    parser.add_argument("--annotators", type=int,
                        help="a workforce of this many, per-task of them drawn for each task (default: per-task)")
    parser.add_argument("--formats", default="jsonl,csv,parquet")
    parser.add_argument("--database-url", help="an empty database to fill (default: a temporary SQLite file)")
    parser.add_argument("--project", type=int, help="export this project of --database-url; build nothing")
    parser.add_argument("--repeat", type=int, default=1, help="exports per format, each in a fresh process")
    parser.add_argument("--write-docs", action="store_true", help="update the Exports section of docs/benchmarks.md")
    parser.add_argument("--readers", type=int, default=1,
                        help="PostgreSQL: connections reading one export at once (QISTAS_EXPORT_READERS)")
    parser.add_argument("--records", action="store_true",
                        help="PostgreSQL: encode the records in Python instead of the lines the database builds")
    parser.add_argument("--explain", action="store_true",
                        help="PostgreSQL, with --project: the lines' statement under EXPLAIN ANALYZE, --repeat times")
    parser.add_argument("--unfrozen", action="store_true",
                        help="no gc.freeze in the child process (the worker process before it froze)")
    parser.add_argument("--run-one", nargs=4, metavar=("URL", "PROJECT", "FORMAT", "OUT"), help=argparse.SUPPRESS)
    args, _unknown = parser.parse_known_args()  # make bench passes its own arguments to every script
    if args.run_one:
        url, project, fmt, out = args.run_one
        run_one(url, int(project), fmt, out, args.readers, args.records, frozen=not args.unfrozen)
        return
    if args.explain:
        assert args.database_url and args.project is not None, "--explain reads an existing project"
        explain(args.database_url, args.project, args.repeat)
        return
    n_tasks = args.tasks or (25_000 if args.quick else 250_000)
    with tempfile.TemporaryDirectory(prefix="qistas-bench-") as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        began = time.perf_counter()
        if args.project is not None:
            project_id = args.project
        else:
            project_id = build(url, n_tasks, args.per_task, annotators=args.annotators)
            print(f"inserted {n_tasks:,} tasks and {n_tasks * args.per_task:,} annotations "
                  f"in {time.perf_counter() - began:.1f}s", flush=True)
        found = []
        for fmt in [f for f in args.formats.split(",") for _ in range(args.repeat)]:
            out = f"{tmp}/export.{fmt}"
            child = subprocess.run([sys.executable, __file__, "--run-one", url, str(project_id), fmt, out,
                                    "--readers", str(args.readers), *(["--records"] if args.records else []),
                                    *(["--unfrozen"] if args.unfrozen else [])],
                                   check=True, capture_output=True, text=True)
            result = json.loads(child.stdout.strip().splitlines()[-1])
            found.append(result)
            print(f"{fmt:8} {result['seconds']:7.2f}s  cpu {result['cpu_seconds']:6.2f}s  "
                  f"machine cpu {result['machine_cpu_seconds']:6.2f}s  {result['rows']:,} tasks  "
                  f"{result['bytes'] / 1e6:7.1f} MB  "
                  f"peak RSS {result['peak_rss_mb']:.0f} MB (baseline {result['baseline_rss_mb']:.0f} MB)"
                  + (f"  (Arrow imported first: {result['import_seconds']:.2f}s)"
                     if result["import_seconds"] > 0.01 else ""), flush=True)
            os.unlink(out)
    backend = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    if args.project is not None and found:  # an existing project: the size is what was exported
        n_tasks = int(found[0]["rows"])
    section = table(found, n_tasks, args.per_task, backend, args.readers)
    print()
    print(section)
    if args.write_docs:
        write_docs(section)


if __name__ == "__main__":
    main()
