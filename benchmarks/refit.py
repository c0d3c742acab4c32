"""Refit benchmark: the quality refit of one single-label project of N answers.

Builds a throw-away SQLite database (or fills --database-url, e.g. PostgreSQL) with N
answers (N/4 completed tasks x 4 annotators, Core bulk inserts as in benchmarks/export.py),
then runs ``quality.refit`` in a fresh process ``--repeat`` times and reports each run's wall
and CPU time and peak memory (that process's maximum RSS, VmHWM, above its RSS at start).

    python benchmarks/refit.py [--answers 100000,1000000] [--repeat 2] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from export import build, peak_rss_mb  # noqa: E402

PER_TASK = 4


def run_one(url: str, project_id: int) -> None:
    """In a child process: refit once; print time, CPU time and peak RSS as JSON."""
    from qistas.db.engine import Database
    from qistas.domain import quality

    baseline = peak_rss_mb()
    db = Database.from_url(url)
    began, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    found = quality.refit(db, project_id=project_id)
    after = resource.getrusage(resource.RUSAGE_SELF)
    assert found is not None
    print(json.dumps({"seconds": time.perf_counter() - began,
                      "cpu_seconds": after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime,
                      "answers": found.n_answers, "changed": len(found.changed), "method": found.method,
                      "peak_rss_mb": peak_rss_mb(), "baseline_rss_mb": baseline}))
    db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answers", default="100000", help="comma-separated numbers of answers")
    parser.add_argument("--repeat", type=int, default=2, help="refits per size, each in a fresh process")
    parser.add_argument("--database-url", help="an empty database to fill (default: a temporary SQLite file)")
    parser.add_argument("--run-one", nargs=2, metavar=("URL", "PROJECT"), help=argparse.SUPPRESS)
    args, _unknown = parser.parse_known_args()  # make bench passes its own arguments to every script
    if args.run_one:
        run_one(args.run_one[0], int(args.run_one[1]))
        return
    sizes = [int(n) for n in args.answers.split(",")]
    if args.database_url and len(sizes) > 1:
        parser.error("--database-url takes one size")
    for n_answers in sizes:
        with tempfile.TemporaryDirectory(prefix="qistas-bench-") as tmp:
            url = args.database_url or f"sqlite:///{tmp}/bench.db"
            began = time.perf_counter()
            project_id = build(url, n_answers // PER_TASK, PER_TASK)
            print(f"inserted {n_answers // PER_TASK:,} tasks and {n_answers:,} answers "
                  f"in {time.perf_counter() - began:.1f}s", flush=True)
            for _ in range(args.repeat):
                child = subprocess.run([sys.executable, __file__, "--run-one", url, str(project_id)],
                                       check=True, capture_output=True, text=True)
                r = json.loads(child.stdout.strip().splitlines()[-1])
                print(f"refit {r['answers']:>10,} answers  {r['seconds']:7.1f}s  cpu {r['cpu_seconds']:7.1f}s  "
                      f"peak RSS {r['peak_rss_mb']:.0f} MB (start {r['baseline_rss_mb']:.0f} MB)  "
                      f"{r['changed']:,} changed  {r['method']}", flush=True)


if __name__ == "__main__":
    main()
