"""Refit benchmark: the quality refit of one project of N answers.

Builds a throw-away SQLite database (or fills --database-url, e.g. PostgreSQL) with N
answers (N/4 completed tasks x 4 annotators, Core bulk inserts as in benchmarks/export.py),
then runs ``quality.refit`` in a fresh process ``--repeat`` times and reports each run's wall
and CPU time, peak memory (that process's maximum RSS, VmHWM, above its RSS at start) and its
write transactions (how many, their time together, the median and the longest: on SQLite every
other writer waits while one is open);
first, the time of the background loop's look for the projects due for a refit.
``--task-type``: single-label classification (the default, fitted on integer arrays), or
``boxes`` / ``rating``, whose aggregators take structured answers.

    python benchmarks/refit.py [--answers 100000,1000000] [--repeat 2] [--database-url URL]
    python benchmarks/refit.py --task-type boxes --answers 1000000
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from export import build, classification_rows, peak_rss_mb  # noqa: E402

PER_TASK = 4
BOX_LABELS = ["car", "person"]


def boxes_rows(rng: random.Random, task_id: int, per_task: int) -> tuple[dict[str, Any], list[Any], Any]:
    """An image of 1-3 objects; annotator i draws them with i * 3 px of noise and misses one
    in ten (the last annotator one in four)."""
    truth = [{"x": rng.uniform(0, 500), "y": rng.uniform(0, 350), "w": rng.uniform(20, 120),
              "h": rng.uniform(20, 120), "label": rng.choice(BOX_LABELS)} for _ in range(rng.randint(1, 3))]
    answers = []
    for worker in range(per_task):
        noise, miss = 1 + 3 * worker, 0.25 if worker == per_task - 1 else 0.1
        drawn = [{"x": round(min(max(b["x"] + rng.gauss(0, noise), 0), 600), 1),
                  "y": round(min(max(b["y"] + rng.gauss(0, noise), 0), 400), 1),
                  "w": round(max(b["w"] + rng.gauss(0, noise), 2), 1),
                  "h": round(max(b["h"] + rng.gauss(0, noise), 2), 1), "label": b["label"]}
                 for b in truth if rng.random() >= miss]
        answers.append({"boxes": drawn})
    return {"image": f"https://images.example/{task_id}.jpg", "width": 640, "height": 480}, answers, answers[0]


def rating_rows(rng: random.Random, task_id: int, per_task: int) -> tuple[dict[str, Any], list[Any], Any]:
    """A 1-5 rating; annotator i is off by a normal error of sd 0.3 + 0.4 i."""
    truth = rng.randint(1, 5)
    answers = [{"rating": min(max(round(truth + rng.gauss(0, 0.3 + 0.4 * worker)), 1), 5)}
               for worker in range(per_task)]
    return {"prompt": f"answer {task_id}"}, answers, answers[0]


KINDS: dict[str, tuple[dict[str, Any] | None, Any]] = {
    "classification": (None, classification_rows),
    "boxes": ({"type": "boxes", "labels": BOX_LABELS, "image_field": "image"}, boxes_rows),
    "rating": ({"type": "rating", "min": 1, "max": 5, "prompt_field": "prompt"}, rating_rows),
}


def run_one(url: str, project_id: int) -> None:
    """In a child process: refit once; print time, CPU time and peak RSS as JSON."""
    from qistas.db.engine import Database
    from qistas.domain import quality

    baseline = peak_rss_mb()
    db = Database.from_url(url)
    writes = _timed_writes(db)
    began, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    found = quality.refit(db, project_id=project_id)
    after = resource.getrusage(resource.RUSAGE_SELF)
    assert found is not None
    print(json.dumps({"seconds": time.perf_counter() - began,
                      "cpu_seconds": after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime,
                      "answers": found.n_answers, "changed": len(found.changed), "method": found.method,
                      "peak_rss_mb": peak_rss_mb(), "baseline_rss_mb": baseline,
                      "writes": len(writes), "write_seconds": sum(writes),
                      "longest_write_ms": 1000 * max(writes, default=0.0),
                      "median_write_ms": 1000 * sorted(writes)[len(writes) // 2] if writes else 0.0}))
    db.dispose()


def _timed_writes(db: Any) -> list[float]:
    """The seconds of each write transaction of ``db`` from now on, begin to commit: on SQLite
    what every other writer of the database (the annotation loop) may wait for."""
    begin, spans = db.writer.begin, []

    @contextmanager
    def timed() -> Iterator[Any]:
        began = time.perf_counter()
        with begin() as session:
            yield session
        spans.append(time.perf_counter() - began)

    db.writer.begin = timed
    return spans


def due_check_ms(url: str) -> float:
    """The background refit loop's look for projects due, the best of three runs."""
    from qistas.db.engine import Database
    from qistas.domain import quality

    db = Database.from_url(url)
    times = []
    for _ in range(3):
        began = time.perf_counter()
        quality.projects_due_for_refit(db)
        times.append(1000 * (time.perf_counter() - began))
    db.dispose()
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answers", default="100000", help="comma-separated numbers of answers")
    parser.add_argument("--task-type", choices=sorted(KINDS), default="classification")
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
            spec, rows = KINDS[args.task_type]
            project_id = build(url, n_answers // PER_TASK, PER_TASK, spec=spec, rows=rows)
            print(f"inserted {n_answers // PER_TASK:,} tasks and {n_answers:,} answers "
                  f"in {time.perf_counter() - began:.1f}s", flush=True)
            print(f"finding the projects due for a refit (the background loop's pass): "
                  f"{due_check_ms(url):.2f} ms, best of 3", flush=True)
            for _ in range(args.repeat):
                child = subprocess.run([sys.executable, __file__, "--run-one", url, str(project_id)],
                                       check=True, capture_output=True, text=True)
                r = json.loads(child.stdout.strip().splitlines()[-1])
                print(f"refit {r['answers']:>10,} answers  {r['seconds']:7.1f}s  cpu {r['cpu_seconds']:7.1f}s  "
                      f"peak RSS {r['peak_rss_mb']:.0f} MB (start {r['baseline_rss_mb']:.0f} MB)  "
                      f"{r['changed']:,} changed  {r['method']}  write transactions: {r['writes']:,}, "
                      f"{r['write_seconds']:.2f}s, median {r['median_write_ms']:.0f} ms, "
                      f"longest {r['longest_write_ms']:.0f} ms", flush=True)


if __name__ == "__main__":
    main()
