"""Replay real crowd answers through the adaptive-redundancy policy.

    python benchmarks/redundancy.py [--data-dir DIR] [--model MACE|DawidSkene]

For every gold item the recorded answers are drawn one at a time, in the order of the
source file, until the policy (:func:`qistas.quality.decide`) says the task is done:
at least ``min`` answers and posterior confidence >= ``target``, else one more, up to
``max``. Baselines: majority vote over the first 3 and the first 5 answers. Items with
fewer answers than asked use all they have, for every policy alike.

Worker models (confusion matrices and class priors) are fitted by two-fold
cross-fitting: items are split in two halves at random; models fitted on the answers of
one half score the replay of the other, so no replayed answer was seen by the model
that judges it. ``--in-sample`` fits on all answers instead (optimistic).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from quality import DATASETS, find_data_dir, load, q  # noqa: E402

MODELS = {"MACE": lambda: q.MACE(), "DawidSkene": lambda: q.DawidSkene()}


def recorded_orders(tasks: np.ndarray) -> list[np.ndarray]:
    """Row indices of each task's answers in file order."""
    order = np.argsort(tasks, kind="stable")
    bounds = np.searchsorted(tasks[order], np.arange(tasks.max() + 2))
    return [order[bounds[t] : bounds[t + 1]] for t in range(tasks.max() + 1)]


def fit_models(d: dict, folds: np.ndarray, model: str, in_sample: bool) -> list[q.WorkerModel]:
    """Worker model used to replay the items of each fold."""
    n_workers = int(d["workers"].max()) + 1
    out = []
    for f in (0, 1):
        keep = np.ones_like(d["tasks"], bool) if in_sample else folds[d["tasks"]] != f
        est = MODELS[model]().fit(
            d["tasks"][keep], d["workers"][keep], d["labels"][keep],
            n_labels=d["n_labels"], n_workers=n_workers,
        )
        out.append(q.WorkerModel.from_estimator(est))
    return out


def replay(d: dict, models: list, folds: np.ndarray, items: np.ndarray,
           rows: list[np.ndarray], *, lo: int, hi: int, target: float) -> tuple[float, int]:
    correct, used = 0, 0
    for t in items:
        r = rows[t]
        model = models[folds[t]]
        dec = None
        for n in range(1, min(hi, r.size) + 1):
            dec = q.decide(d["workers"][r[:n]], d["labels"][r[:n]], model,
                           min_answers=min(lo, r.size), max_answers=min(hi, r.size),
                           target=target)
            if dec.done:
                break
        assert dec is not None
        used += n
        correct += int(dec.label == d["gold"][t])
    return correct / items.size, used


def fixed_mv(d: dict, items: np.ndarray, rows: list[np.ndarray], k: int) -> tuple[float, int]:
    correct, used = 0, 0
    for t in items:
        r = rows[t][:k]
        votes = np.bincount(d["labels"][r], minlength=d["n_labels"])
        correct += int(np.argmax(votes) == d["gold"][t])  # ties: lowest label index
        used += r.size
    return correct / items.size, used


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir")
    p.add_argument("--datasets", nargs="*", default=DATASETS)
    p.add_argument("--model", choices=sorted(MODELS), default=q.DEFAULT_CLASSIFIER)
    p.add_argument("--in-sample", action="store_true", help="fit worker models on all answers")
    p.add_argument("--min", type=int, default=1)
    p.add_argument("--max", type=int, default=5)
    p.add_argument("--targets", type=float, nargs="*", default=[0.8, 0.9, 0.95, 0.99])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    data_dir = find_data_dir(args.data_dir)
    fitting = "in-sample (all answers)" if args.in_sample else "2-fold cross-fitted"
    print(f"# adaptive redundancy replay: worker models {args.model}, {fitting}; "
          f"adaptive min={args.min} max={args.max}; gold items only")
    summary = []
    for name in args.datasets:
        d = load(data_dir, name)
        rows = recorded_orders(d["tasks"])
        items = np.flatnonzero(d["gold"] >= 0)
        folds = np.random.default_rng(args.seed).integers(0, 2, d["tasks"].max() + 1)
        models = fit_models(d, folds, args.model, args.in_sample)
        print(f"\n## {name} ({items.size} gold items)")
        print(f"{'policy':24s} {'accuracy':>8s} {'labels':>8s} {'vs fixed-5':>10s}")
        acc3, n3 = fixed_mv(d, items, rows, 3)
        acc5, n5 = fixed_mv(d, items, rows, 5)
        print(f"{'fixed 3, majority vote':24s} {acc3:8.3f} {n3:8d} {n3 / n5:10.0%}")
        print(f"{'fixed 5, majority vote':24s} {acc5:8.3f} {n5:8d} {1:10.0%}")
        best = None
        for target in args.targets:
            acc, n = replay(d, models, folds, items, rows, lo=args.min, hi=args.max,
                            target=target)
            print(f"{f'adaptive target {target:g}':24s} {acc:8.3f} {n:8d} {n / n5:10.0%}")
            if acc >= acc5 and (best is None or n < best[1]):
                best = (target, n)
        summary.append((name, acc5, best, n5))
    print("\n## Cheapest adaptive target matching fixed-5 majority-vote accuracy")
    for name, acc5, best, n5 in summary:
        if best is None:
            print(f"{name:10s} none of the targets reached {acc5:.3f}")
        else:
            print(f"{name:10s} target {best[0]:g}: {best[1] / n5:.0%} of the fixed-5 labels")


if __name__ == "__main__":
    main()
