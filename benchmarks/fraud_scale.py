"""The fraud detector on a large workforce: time and peak memory of ``FraudDetector.fit``.

A synthetic project: W annotators with A answers each, K labels, a tenth of the answers on
gold tasks (as the engine serves gold, any number of annotators each), answers 70% right; 1%
of the annotators work in rings of five that share one answer key (half of it wrong), so the
copying test has pairs to find. Each workforce is fitted in a fresh process; its peak memory is
that process's maximum RSS (the arrays, numpy and scipy included).

    python benchmarks/fraud_scale.py [--workforces W:A:K ...] [--seed N]

Defaults: 2,000 annotators with 400 answers each (many gold answers per annotator: the copying
test's pairs) and 50,000 and 100,000 annotators with 8 and 4 (many annotators: the per-worker
tables), at 10 and 50 labels.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

DEFAULT = ["2000:400:10", "50000:8:50", "100000:4:50"]
GOLD_TASKS = 100


def answers(n_workers: int, per_worker: int, n_labels: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    n = n_workers * per_worker
    n_tasks = max(n // 4, 1)
    w = np.repeat(np.arange(n_workers), per_worker)
    on_gold = rng.random(n) < 0.1
    t = np.where(on_gold, rng.integers(0, GOLD_TASKS, n), GOLD_TASKS + rng.integers(0, n_tasks, n))
    truth = rng.integers(0, n_labels, GOLD_TASKS + n_tasks)
    a = np.where(rng.random(n) < 0.7, truth[t], rng.integers(0, n_labels, n))
    ring_of = np.where(rng.random(n_workers) < 0.01, rng.integers(0, max(n_workers // 500, 1), n_workers), -1)
    keys = np.where(rng.random((max(n_workers // 500, 1), GOLD_TASKS + n_tasks)) < 0.5, truth,
                    rng.integers(0, n_labels, (max(n_workers // 500, 1), GOLD_TASKS + n_tasks)))
    in_ring = ring_of[w] >= 0
    a[in_ring] = keys[ring_of[w][in_ring], t[in_ring]]
    seconds = rng.lognormal(2.3, 0.5, n)
    submitted = np.cumsum(seconds + rng.uniform(0.0, 2.0, n))  # each annotator's answers one after another
    return w, t, a, seconds, submitted, np.where(on_gold, truth[t], -1)


def fit_one(spec: str, seed: int) -> None:
    """In a child process: fit one workforce, print its figures as JSON."""
    from qistas.quality.fraud import FraudDetector

    n_workers, per_worker, n_labels = (int(part) for part in spec.split(":"))
    w, t, a, seconds, submitted, gold = answers(n_workers, per_worker, n_labels, seed)
    began = time.perf_counter()
    detector = FraudDetector().fit(w, t, a, seconds, submitted, gold=gold, n_workers=n_workers,
                                   n_categories=n_labels)
    took = time.perf_counter() - began
    flagged = sum(bool(flags) for flags in detector.flags_)
    print(json.dumps({"seconds": took, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "answers": int(w.size), "flagged": flagged, "pairs": len(detector.pairs_)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workforces", nargs="+", default=DEFAULT,
                        help="annotators:answers each:labels, one fit each (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fit-one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fit_one:
        fit_one(args.fit_one, args.seed)
        return
    print("| annotators | answers each | labels | answers | fit (s) | peak RSS (MB) | flagged | copying pairs |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for spec in args.workforces:
        out = subprocess.run([sys.executable, __file__, "--fit-one", spec, "--seed", str(args.seed)],
                             capture_output=True, text=True, check=True).stdout
        found = json.loads(out.strip().splitlines()[-1])
        n_workers, per_worker, n_labels = spec.split(":")
        print(f"| {int(n_workers):,} | {int(per_worker):,} | {n_labels} | {found['answers']:,} "
              f"| {found['seconds']:.2f} | {found['peak_mb']:,.0f} | {found['flagged']:,} | {found['pairs']:,} |",
              flush=True)


if __name__ == "__main__":
    main()
