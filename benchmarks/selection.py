"""Model selection (AutoClassifier, the default) against each of its candidates.

    python benchmarks/selection.py

Accuracy of every candidate fitted alone and of the selection (with the candidate it
chose) on the seven public sets, on the same sets cut to 3 answers per item (the first
3 of each item in a seeded random order), on seeded binary simulations of ~8,000 items
x 3 answers, and per-label accuracy of MultiLabelAggregator against per-label majority
vote on a seeded multi-label simulation. No gold is given to any method.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import DATASETS, find_data_dir, load, q  # noqa: E402

NAMES = ["MajorityVote", "OneCoinDawidSkene", "MACE", "DawidSkene"]
SIMS = {  # name: simulate_classification arguments (mix: good, mediocre, spammer, adversarial, biased)
    "sim mixed": dict(n_tasks=8000, n_workers=100, n_labels=2, answers_per_task=3,
                      mix=(0.4, 0.3, 0.1, 0.0, 0.2)),
    "sim biased": dict(n_tasks=8000, n_workers=60, n_labels=2, answers_per_task=3,
                       mix=(0.3, 0.2, 0.0, 0.0, 0.5), class_priors=np.array([0.7, 0.3])),
    "sim spammers": dict(n_tasks=8000, n_workers=100, n_labels=2, answers_per_task=3,
                         mix=(0.4, 0.3, 0.3, 0.0, 0.0)),
    "sim noisy": dict(n_tasks=8000, n_workers=200, n_labels=2, answers_per_task=3,
                      mix=(0.2, 0.8, 0.0, 0.0, 0.0)),
}


def three_per_item(d: dict, seed: int = 0) -> dict:
    """The first 3 answers of every item in a seeded random order of all answers."""
    order = np.random.default_rng(seed).permutation(d["tasks"].size)
    t = d["tasks"][order]
    idx = np.argsort(t, kind="stable")
    ts = t[idx]
    start = np.r_[0, np.flatnonzero(ts[1:] != ts[:-1]) + 1]
    rank = np.arange(ts.size) - np.repeat(start, np.diff(np.r_[start, ts.size]))
    keep = np.sort(order[idx[rank < 3]])
    return {**d, "tasks": d["tasks"][keep], "workers": d["workers"][keep],
            "labels": d["labels"][keep]}


def row(name: str, tasks, workers, labels, k: int, truth: np.ndarray) -> None:
    known = truth >= 0
    accs = {}
    for c in NAMES:
        est = q.selection._FACTORIES[c]().fit(tasks, workers, labels, n_labels=k, n_tasks=truth.size)
        accs[c] = float(np.mean(est.labels_[known] == truth[known]))
    start = time.perf_counter()
    auto = q.AutoClassifier().fit(tasks, workers, labels, n_labels=k, n_tasks=truth.size)
    sec = time.perf_counter() - start
    acc = float(np.mean(auto.labels_[known] == truth[known]))
    best = max(accs.values())
    cells = " | ".join(f"{accs[c]:.3f}" for c in NAMES)
    print(f"| {name} | {len(tasks):,} | {cells} | **{acc:.3f}** {auto.chosen_} | "
          f"{100 * (acc - best):+.1f} | {100 * (acc - accs['MajorityVote']):+.1f} | {sec:.2f} |")


def multilabel() -> None:
    labels = [f"l{j}" for j in range(6)]
    print("\n| multi-label simulation (seed) | per-label majority | MultiLabelAggregator |"
          "\n|---|---:|---:|")
    for seed in (1, 2, 3):
        sim = q.simulate_multilabel(4000, 40, 6, 3, random_state=seed)
        items: list[list] = [[] for _ in range(4000)]
        for t, w, r in zip(sim.tasks, sim.workers, sim.chosen, strict=True):
            items[t].append((int(w), {"labels": [labels[j] for j in np.flatnonzero(r)]}))
        agg = q.MultiLabelAggregator(labels).fit(items, n_workers=40)
        pred = np.array([[n in r.response["labels"] for n in labels] for r in agg.results_])
        votes = np.zeros(sim.truth.shape)
        np.add.at(votes, sim.tasks, sim.chosen)
        mv = votes >= 2
        print(f"| 4,000 items x 3 answers, 6 labels, 40 workers ({seed}) | "
              f"{np.mean(mv == sim.truth):.3f} | **{np.mean(pred == sim.truth):.3f}** |")


def main() -> None:
    warnings.simplefilter("ignore", q.ConvergenceWarning)
    data_dir = find_data_dir(None)
    print("| set | answers | " + " | ".join(NAMES) + " | selection (chosen) | vs best, pt |"
          " vs MV, pt | fit s |\n|---|---:|" + "---:|" * (len(NAMES) + 4))
    for name in DATASETS:
        d = load(data_dir, name)
        row(name, d["tasks"], d["workers"], d["labels"], d["n_labels"], d["gold"])
        s = three_per_item(d)
        row(name + " (3/item)", s["tasks"], s["workers"], s["labels"], d["n_labels"], d["gold"])
    for name, kw in SIMS.items():
        for seed in (1, 2):
            sim = q.simulate_classification(**kw, random_state=seed)  # type: ignore[arg-type]
            row(f"{name} ({seed})", sim.tasks, sim.workers, sim.labels, sim.n_labels, sim.truth)
    multilabel()


if __name__ == "__main__":
    main()
