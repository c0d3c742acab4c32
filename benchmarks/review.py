"""Replay real crowd answers through a review stage: what does a reviewer buy, and at what cost?

    python benchmarks/review.py [--data-dir DIR] [--redundancy 3] [--reviewer-accuracy 0.95]
                                [--thresholds 0.9 0.99] [--seed 0] [--quick]

Each gold item of a dataset is a task of a project with fixed redundancy ``--redundancy``:
it collects the first n recorded answers of the item (in the order of the source file; an
item with fewer answers uses all it has). Its answer and confidence are what the server
computes when the last answer comes in: the single-label classification aggregator
(``qistas.quality.single_label.SingleLabelAggregator``: the default classifier, chosen per
project, fitted on the project's answers; then the task's posterior under that worker
model, an annotator unknown to the fit getting the average confusion). The project has no
gold tasks, so nothing is clamped.

Worker models are two-fold cross-fitted, as in ``redundancy.py``: the items are split in
two random halves; each half is scored with a model fitted on the first n answers of every
item of the other half (non-gold items included: the project's other tasks), so no
replayed answer was seen by the model that judges it.

The review policy decides which tasks wait for a reviewer, by the server's own rule
(``qistas.domain.review_policy.holds``). The task id is the item's order of first
appearance in the file (1, 2, ...), so the sampled share is the server's hash draw of consecutive ids. Policies:
no review; a 10% sample (``share=0.1``); every task below each confidence threshold
(``below_confidence``, the same thresholds for every dataset: no tuning to a set);
disagreement (``disagreement=true``): as the server reads it, the aggregator's
``needs_review`` or any answer that differs from the result (for single-label
classification: the answers are not unanimous); every task (``share=1``). Probation
is not simulated (``on_probation`` is false throughout). One more row spends the money the
other way: no reviewer, two more annotations per task (redundancy n + 2, scored the same
way).

The reviewer model: shown a task, the reviewer's own judgment is the gold label with
probability p (``--reviewer-accuracy``), otherwise a label drawn uniformly from the other
labels, independently of the task and of the crowd's answers. A judgment equal to the
aggregated answer accepts it; any other corrects it, and the judgment is final. (The
third action of the review stage, rejecting an annotation for one more, is not
simulated.) So a reviewed task is right with probability p whatever the crowd said, and
reviewing everything is worth p in expectation. Judgments are drawn ``--draws`` times
(each draw one judgment per task, shared by every policy, so policies differ only in which
tasks they review) and the figures averaged.

Figures per dataset and policy, over gold items: the share of tasks reviewed and
corrected, final accuracy, its gap to reviewing everything in points, the crowd's
accuracy and mean confidence on the tasks left unreviewed, and the cost per task in annotation units:
annotations + reviews, a review counted as one annotation and as two. The aim tested:
"reviewing low-confidence tasks reaches the accuracy of reviewing everything with at most
25% of the reviews" -- met for a threshold when it reviews at most 25% of the tasks and its
accuracy is not below review-all's (to a tenth of a point).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from redundancy import recorded_orders  # noqa: E402

from quality import DATASETS, find_data_dir, load  # noqa: E402

# isort: split
# after quality, which puts src/ on the path when the package is not installed
from qistas.domain.review_policy import NO_REVIEW, ReviewPolicy, holds  # noqa: E402
from qistas.quality.single_label import SingleLabelAggregator  # noqa: E402

QUICK = ["temp", "music"]
AIM_SHARE = 0.25


@dataclass(frozen=True)
class Scored:
    """The server's decision of each gold item at redundancy n."""

    items: np.ndarray  # item indices (gold items only)
    gold: np.ndarray
    answer: np.ndarray  # aggregated label
    confidence: np.ndarray
    needs_review: np.ndarray  # the aggregator's flag
    unanimous: np.ndarray
    annotations: int  # answers collected for these tasks
    n_labels: int
    methods: tuple[str, ...]  # the model the default classifier chose, per fold


def first_answers(rows: list[np.ndarray], n: int) -> list[np.ndarray]:
    return [r[:n] for r in rows]


def score(d: dict, rows: list[np.ndarray], folds: np.ndarray) -> Scored:
    """Aggregate each gold item with a worker model fitted on the other fold's items."""
    k = d["n_labels"]
    names = [str(i) for i in range(k)]
    items = np.flatnonzero(d["gold"] >= 0)
    answer = np.empty(items.size, np.int64)
    confidence = np.empty(items.size)
    needs_review = np.zeros(items.size, bool)
    methods = []
    for f in (0, 1):
        train = [t for t in range(len(rows)) if folds[t] != f and rows[t].size]
        # the model's workers: the annotators with answers in the fit, as the server stores them
        seen = np.unique(np.concatenate([d["workers"][rows[t]] for t in train]))
        position = {int(w): i for i, w in enumerate(seen)}
        fitted = SingleLabelAggregator(names).fit(
            [[(position[int(d["workers"][r])], {"label": names[d["labels"][r]]}) for r in rows[t]] for t in train],
            n_workers=len(seen),
        )
        methods.append(fitted.method_)
        for i in np.flatnonzero(folds[items] == f):
            r = rows[items[i]]
            result = fitted.aggregate([(position.get(int(d["workers"][j]), -1), {"label": names[d["labels"][j]]})
                                       for j in r])
            answer[i] = names.index(result.response["label"])
            confidence[i] = result.confidence
            needs_review[i] = result.needs_review
    unanimous = np.array([np.unique(d["labels"][rows[t]]).size == 1 for t in items])
    return Scored(items, d["gold"][items], answer, confidence, needs_review, unanimous,
                  int(sum(rows[t].size for t in items)), k, tuple(methods))


def policies(thresholds: list[float]) -> list[tuple[str, ReviewPolicy]]:
    rows = [("no review", NO_REVIEW), ("sample 10%", ReviewPolicy(share=0.1))]
    rows += [(f"confidence < {t:g}", ReviewPolicy(below_confidence=t)) for t in thresholds]
    rows += [("disagreement", ReviewPolicy(disagreement=True)), ("review all", ReviewPolicy(share=1.0))]
    return rows


def judgments(s: Scored, accuracy: float, draws: int, rng: np.random.Generator) -> np.ndarray:
    """(draws, tasks): the gold label with probability ``accuracy``, else another label at random."""
    right = rng.random((draws, s.gold.size)) < accuracy
    if s.n_labels == 1:
        return np.broadcast_to(s.gold, right.shape).copy()
    other = (s.gold + 1 + rng.integers(0, s.n_labels - 1, right.shape)) % s.n_labels
    return np.where(right, s.gold, other)


def simulate(s: Scored, judged: np.ndarray, policy: ReviewPolicy) -> dict[str, float]:
    held = np.array([
        holds(policy, task_id=int(t) + 1, confidence=float(c), needs_review=bool(nr or not u), on_probation=False)
        for t, c, nr, u in zip(s.items, s.confidence, s.needs_review, s.unanimous, strict=True)
    ])
    final = np.where(held, judged, s.answer)
    crowd_right = s.answer == s.gold
    n = s.gold.size
    return {
        "reviewed": float(held.mean()),
        "corrected": float((held & (judged != s.answer)).sum(axis=1).mean() / n),
        "accuracy": float((final == s.gold).mean()),
        "unreviewed_acc": float(crowd_right[~held].mean()) if (~held).any() else float("nan"),
        "unreviewed_conf": float(s.confidence[~held].mean()) if (~held).any() else float("nan"),
        "annotations": s.annotations / n,
    }


def run(d: dict, *, redundancy: int, accuracy: float, thresholds: list[float], seed: int,
        draws: int) -> tuple[Scored, list[tuple[str, dict[str, float]]]]:
    orders = recorded_orders(d["tasks"])
    folds = np.random.default_rng(seed).integers(0, 2, len(orders))
    s = score(d, first_answers(orders, redundancy), folds)
    judged = judgments(s, accuracy, draws, np.random.default_rng([seed, 1]))
    results = [(name, simulate(s, judged, p)) for name, p in policies(thresholds)]
    # the other way to spend the money: two more annotations per task, no reviewer
    more = score(d, first_answers(orders, redundancy + 2), folds)
    results.insert(1, (f"no review, redundancy {redundancy + 2}", simulate(more, judged, NO_REVIEW)))
    return s, results


def fmt(x: float, spec: str) -> str:
    return "-" if x != x else format(x, spec)


def points(x: float) -> str:
    """A difference of accuracies in points, one decimal, never "-0.0"."""
    return f"{100 * x + 0.0:+.1f}".replace("-0.0", "+0.0")


def table(results: list[tuple[str, dict[str, float]]]) -> list[str]:
    everything = dict(results)["review all"]["accuracy"]
    out = ["| policy | reviewed | corrected | accuracy | gap to review-all, pt | unreviewed: crowd acc. "
           "| unreviewed: mean confidence | cost/task, review = 1 | cost/task, review = 2 |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in results:
        out.append(
            f"| {name} | {r['reviewed']:.1%} | {r['corrected']:.1%} | {r['accuracy']:.3f} "
            f"| {points(r['accuracy'] - everything)} | {fmt(r['unreviewed_acc'], '.3f')} "
            f"| {fmt(r['unreviewed_conf'], '.3f')} "
            f"| {r['annotations'] + r['reviewed']:.2f} | {r['annotations'] + 2 * r['reviewed']:.2f} |"
        )
    return out


def overview(found: dict[str, list[tuple[str, dict[str, float]]]]) -> list[str]:
    """Policies by datasets: accuracy (share reviewed, cost per task with a review as one annotation)."""
    names = list(found)
    out = ["| policy | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for i, (policy, _) in enumerate(next(iter(found.values()))):
        cells = [found[n][i][1] for n in names]
        out.append(f"| {policy} | " + " | ".join(
            f"{r['accuracy']:.3f} ({r['reviewed']:.0%}, {r['annotations'] + r['reviewed']:.2f})" for r in cells) + " |")
    return out


def calibration(found: dict[str, list[tuple[str, dict[str, float]]]], thresholds: list[float]) -> list[str]:
    """The tasks each threshold leaves alone: their share, mean confidence and accuracy."""
    head = "| dataset |" + "".join(f" >= {t:g}: tasks | >= {t:g}: mean confidence | >= {t:g}: accuracy |"
                                   for t in thresholds)
    out = [head, "|---|" + "---:|---:|---:|" * len(thresholds)]
    for name, results in found.items():
        r = dict(results)
        cells = f"| {name} |"
        for t in thresholds:
            row = r[f"confidence < {t:g}"]
            cells += (f" {1 - row['reviewed']:.0%} | {fmt(row['unreviewed_conf'], '.3f')} "
                      f"| {fmt(row['unreviewed_acc'], '.3f')} |")
        out.append(cells)
    return out


def summary(found: dict[str, list[tuple[str, dict[str, float]]]], thresholds: list[float]) -> list[str]:
    head = "| dataset | no review | review all |" + "".join(
        f" < {t:g}: reviews | < {t:g}: gap, pt | < {t:g}: aim |" for t in thresholds)
    out = [head, "|---|---:|---:|" + "---:|---:|:-:|" * len(thresholds)]
    for name, results in found.items():
        r = dict(results)
        everything = r["review all"]["accuracy"]
        cells = f"| {name} | {r['no review']['accuracy']:.3f} | {everything:.3f} |"
        for t in thresholds:
            row = r[f"confidence < {t:g}"]
            gap = points(row["accuracy"] - everything)
            met = row["reviewed"] <= AIM_SHARE and not gap.startswith("-")
            cells += f" {row['reviewed']:.0%} | {gap} | {'yes' if met else 'no'} |"
        out.append(cells)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir")
    p.add_argument("--datasets", nargs="*", default=DATASETS)
    p.add_argument("--quick", action="store_true", help=f"only {' and '.join(QUICK)}")
    p.add_argument("--redundancy", type=int, default=3, help="answers per task (the first n recorded)")
    p.add_argument("--reviewer-accuracy", type=float, default=0.95)
    p.add_argument("--thresholds", type=float, nargs="*", default=[0.9, 0.99])
    p.add_argument("--draws", type=int, default=200, help="reviewer judgment draws averaged")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if not 0 <= args.reviewer_accuracy <= 1 or args.redundancy < 1 or args.draws < 1:
        p.error("--reviewer-accuracy must be in [0, 1], --redundancy and --draws at least 1")
    data_dir = find_data_dir(args.data_dir)
    names = QUICK if args.quick else args.datasets
    print(f"# review replay: redundancy {args.redundancy}, reviewer accuracy {args.reviewer_accuracy:g}, "
          f"{args.draws} reviewer draws, seed {args.seed}; worker models 2-fold cross-fitted; gold items only")
    found = {}
    for name in names:
        start = time.perf_counter()
        d = load(data_dir, name)
        s, results = run(d, redundancy=args.redundancy, accuracy=args.reviewer_accuracy,
                         thresholds=args.thresholds, seed=args.seed, draws=args.draws)
        found[name] = results
        print(f"\n## {name}: {s.gold.size} gold tasks, {s.n_labels} labels, "
              f"{s.annotations / s.gold.size:.2f} annotations per task, model {'/'.join(s.methods)} "
              f"({time.perf_counter() - start:.1f} s)\n")
        print("\n".join(table(results)))
    print("\n## All datasets: accuracy (share of tasks reviewed, cost per task with a review as one annotation)\n")
    print("\n".join(overview(found)))
    print("\n## The server's confidence: the tasks each threshold leaves unreviewed\n")
    print("\n".join(calibration(found, args.thresholds)))
    print(f"\n## Aim: confidence review reaches review-all accuracy with at most {AIM_SHARE:.0%} of its reviews\n")
    print("\n".join(summary(found, args.thresholds)))


if __name__ == "__main__":
    main()
