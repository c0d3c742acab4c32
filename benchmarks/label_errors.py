"""Label-error detection on real crowd answers: which delivered labels are wrong?

    python benchmarks/label_errors.py [--data-dir DIR] [--redundancy 3] [--seed 0] [--no-cleanlab]

Every item of a dataset is a task of a project with fixed redundancy ``--redundancy``: it
collects the first n recorded answers of the item (in the order of the source file; an item
with fewer answers uses all it has). The delivered label is what the server's refit delivers:
the single-label classification aggregator (``SingleLabelAggregator``: the default
classifier, chosen per project, fitted on every task's answers) -- the model the project then
stores. A delivered label is an error when it differs from gold; only gold items are ranked
and counted.

Rankings, most likely wrong first (ties in a seeded random order, the same for every method):

- ``disagreement``: the share of the task's answers that differ from the delivered label (the
  majority-vote baseline);
- ``posterior``: ``LabelErrorScorer`` with the project's stored worker model, in-sample:
  1 - the posterior of the delivered label (what the server's API ranks by);
- ``cross-fitted``: ``LabelErrorScorer(n_folds=2)``: each half of the tasks scored by a
  default classifier fitted on the other half's answers;
- ``cleanlab``: ``cleanlab.multiannotator.get_label_quality_multiannotator`` (CROWDLAB) with
  the cross-fitted posteriors as its model's ``pred_probs`` (these crowd sets have no features
  to train a classifier on); a task's score is 1 - the quality of its consensus label when that
  label is the delivered one, else that quality (cleanlab is then confident in another label).
  Run only when cleanlab is installed (``pip install cleanlab``; not a dependency of Qistas).

Figures: the share of errors among the top k tasks for k = 1%, 5% and 10% of the gold tasks
(precision at k), and average precision over the whole ranking.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from redundancy import recorded_orders  # noqa: E402

from quality import DATASETS, find_data_dir, load  # noqa: E402

# isort: split
# after quality, which puts src/ on the path when the package is not installed
from qistas.quality import LabelErrorScorer, WorkerModel, default_classifier, disagreement_scores  # noqa: E402
from qistas.quality.label_errors import rank  # noqa: E402
from qistas.quality.single_label import SingleLabelAggregator  # noqa: E402

HAVE_CLEANLAB = importlib.util.find_spec("cleanlab") is not None
SHARES = (0.01, 0.05, 0.10)


def server_labels(t: np.ndarray, w: np.ndarray, lab: np.ndarray, n_labels: int,
                  n_tasks: int) -> tuple[np.ndarray, WorkerModel, str]:
    """The delivered label of every task and the worker model a refit stores."""
    names = [str(i) for i in range(n_labels)]
    order = np.argsort(t, kind="stable")
    bounds = np.searchsorted(t[order], np.arange(n_tasks + 1))
    items = [[(int(w[j]), {"label": names[lab[j]]}) for j in order[bounds[i]:bounds[i + 1]]] for i in range(n_tasks)]
    agg = SingleLabelAggregator(names).fit(items, n_workers=int(w.max()) + 1)
    delivered = np.array([names.index(r.response["label"]) for r in agg.results_])
    model = WorkerModel(np.asarray(agg.params_["confusions"]), np.asarray(agg.params_["priors"]))
    return delivered, model, agg.method_


def cleanlab_scores(t: np.ndarray, w: np.ndarray, lab: np.ndarray, n_tasks: int, delivered: np.ndarray,
                    pred_probs: np.ndarray) -> np.ndarray:
    import pandas as pd
    from cleanlab.multiannotator import get_label_quality_multiannotator

    table = np.full((n_tasks, int(w.max()) + 1), np.nan)
    table[t, w] = lab  # a repeated (worker, item) pair keeps its last answer: cleanlab takes one per cell
    frame = pd.DataFrame(table).dropna(axis=1, how="all")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = get_label_quality_multiannotator(frame, pred_probs, verbose=False)["label_quality"]
    consensus = found["consensus_label"].to_numpy()
    quality = found["consensus_quality_score"].to_numpy()
    return np.where(consensus == delivered, 1.0 - quality, quality)


def precision_at(ranked_errors: np.ndarray, share: float) -> float:
    k = max(1, round(share * ranked_errors.size))
    return float(ranked_errors[:k].mean())


def average_precision(ranked_errors: np.ndarray) -> float:
    hits = np.cumsum(ranked_errors)
    if hits[-1] == 0:
        return float("nan")
    return float((hits / np.arange(1, ranked_errors.size + 1))[ranked_errors].mean())


def run(d: dict, *, redundancy: int, seed: int, use_cleanlab: bool) -> tuple[dict[str, list[float]], dict]:
    rows = [r[:redundancy] for r in recorded_orders(d["tasks"])]
    keep = np.concatenate(rows)
    t, w, lab = d["tasks"][keep], d["workers"][keep], d["labels"][keep]
    n_tasks, k = len(rows), d["n_labels"]
    delivered, model, method = server_labels(t, w, lab, k, n_tasks)
    gold_items = np.flatnonzero(d["gold"] >= 0)
    errors = delivered[gold_items] != d["gold"][gold_items]
    cross = LabelErrorScorer(estimator=default_classifier, n_folds=2, random_state=seed).fit(
        t, w, lab, delivered, n_tasks=n_tasks, n_labels=k)
    scores = {
        "disagreement": disagreement_scores(t, w, lab, delivered, n_tasks=n_tasks, n_labels=k),
        "posterior": LabelErrorScorer().fit(t, w, lab, delivered, model=model, n_tasks=n_tasks,
                                            n_labels=k).scores_,
        "cross-fitted": cross.scores_,
    }
    if use_cleanlab:
        scores["cleanlab"] = cleanlab_scores(t, w, lab, n_tasks, delivered, cross.posteriors_)
    found = {}
    for name, s in scores.items():
        ranked = errors[rank(s[gold_items], random_state=seed)]
        found[name] = [precision_at(ranked, share) for share in SHARES] + [average_precision(ranked)]
    info = {"gold": gold_items.size, "errors": int(errors.sum()), "method": method}
    return found, info


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir")
    p.add_argument("--datasets", nargs="*", default=DATASETS)
    p.add_argument("--redundancy", type=int, default=3, help="answers per task (the first n recorded)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-cleanlab", action="store_true", help="skip cleanlab even when it is installed")
    args = p.parse_args()
    data_dir = find_data_dir(args.data_dir)
    use_cleanlab = HAVE_CLEANLAB and not args.no_cleanlab
    print(f"# label-error detection: redundancy {args.redundancy}, seed {args.seed}; "
          f"cleanlab {'included' if use_cleanlab else 'not installed or skipped'}\n")
    cols = [f"P@{share:.0%}" for share in SHARES] + ["AP"]
    print("| dataset | gold tasks | wrong delivered | model | ranking | " + " | ".join(cols) + " |")
    print("|---|---:|---:|---|---|" + "---:|" * len(cols))
    every: dict[str, list[list[float]]] = {}
    for name in args.datasets:
        start = time.perf_counter()
        found, info = run(load(data_dir, name), redundancy=args.redundancy, seed=args.seed,
                          use_cleanlab=use_cleanlab)
        for i, (method, figures) in enumerate(found.items()):
            head = (f"{name} | {info['gold']} | {info['errors']} ({info['errors'] / info['gold']:.1%}) "
                    f"| {info['method']}") if i == 0 else " | | |"
            print(f"| {head} | {method} | " + " | ".join(f"{x:.3f}" for x in figures) + " |")
            every.setdefault(method, []).append(figures)
        print(f"<!-- {name}: {time.perf_counter() - start:.1f} s -->", file=sys.stderr)
    print(f"\n## Mean over the {len(args.datasets)} datasets\n")
    print("| ranking | " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for method, rows in every.items():
        print(f"| {method} | " + " | ".join(f"{x:.3f}" for x in np.nanmean(rows, axis=0)) + " |")


if __name__ == "__main__":
    main()
