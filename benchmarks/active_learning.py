"""Active learning on labeled text sets: accuracy against the number of human labels.

    python benchmarks/active_learning.py [--data-dir DIR] [--sets astd,sst2] [--seeds 0,1,2]
        [--max-labels 2000] [--batch 50] [--seed-size 100] [--random-share 0.1]
        [--uncertainty margin] [--features char+word] [--balanced]
    python benchmarks/active_learning.py --grid --sets astd     # the settings compared

The built-in model (``qistas.quality.active.TextClassifier``: Arabic normalisation, TF-IDF on
character 2-5-grams within words, optionally plus word 1-2-grams, logistic regression C=10)
learns from simulated human labels (the gold labels of the training split, which is the pool
of tasks); accuracy and macro-F1 are measured on the official test split. The vocabulary is
learned once from the pool's texts (the server sees every task's text too); no label of the
pool is used for it.

For each seed ``s``, ``order = numpy.random.default_rng(s).permutation(pool)`` is the import
order (the README's "random" baseline: the same permutations, so its curves can be checked
against the README's), and two serving orders are compared on the same model:

- ``import``: the first n tasks of ``order``;
- ``active``: the first ``--seed-size`` tasks of ``order`` (a random seed set), then every
  ``--batch`` labels the model is refitted and the next batch is the first of
  :func:`~qistas.quality.active.serving_order` over the unlabeled pool: most uncertain first,
  a share ``--random-share`` of positions drawn at random.

The aim: the number of active labels after which the score reaches what import order has at
``--max-labels`` (scored every 100 labels), as a share of ``--max-labels``: on the mean curves
over the seeds, and per seed (each seed's active curve against its own import score), given as
mean and range.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
try:
    from qistas.quality.active import TextClassifier, serving_order, uncertainty
except ImportError:  # running from a checkout without installing the package
    sys.path.insert(0, str(ROOT / "src"))
    from qistas.quality.active import TextClassifier, serving_order, uncertainty

SETS = ("arsarcasm-v2-dialect", "astd", "sst2", "trec6")
SIZES = (100, 200, 500, 1000, 2000)
STEP = 100  # labels between two scores of a curve


@dataclass(frozen=True)
class Config:
    uncertainty: str = "margin"
    seed_size: int = 200
    batch: int = 50
    random_share: float = 0.1
    features: str = "char+word"
    balanced: bool = False

    def label(self) -> str:
        return (f"{self.uncertainty} seed {self.seed_size} batch {self.batch} random {self.random_share:g} "
                f"{self.features}{' balanced' if self.balanced else ''}")


def grid() -> list[Config]:
    """One change at a time from the first-version settings, then the combination."""
    base = Config(seed_size=50, features="char")
    return [base, replace(base, uncertainty="entropy"), replace(base, seed_size=200),
            replace(base, features="char+word"), replace(base, balanced=True), replace(base, batch=25),
            Config(), replace(Config(), balanced=True), replace(Config(), uncertainty="entropy")]


def find_data_dir(given: str | None) -> Path:
    candidates = [given, os.environ.get("QISTAS_TEXT_DATA")]
    candidates += [str(p / "shared" / "datasets" / "text") for p in ROOT.parents[:2]]
    for c in candidates:
        if c and (Path(c) / "sst2" / "train.csv").exists():
            return Path(c)
    raise SystemExit("text datasets not found: pass --data-dir or set QISTAS_TEXT_DATA")


def load(path: Path) -> tuple[list[str], np.ndarray]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], np.array([r["label"] for r in rows], dtype=object)


def reference_curves(readme: Path) -> dict[tuple[str, str, str], list[float]]:
    """The README's mean curves: (metric, set, strategy) -> values at SIZES."""
    out: dict[tuple[str, str, str], list[float]] = {}
    if not readme.exists():
        return out
    metric = None
    for line in readme.read_text(encoding="utf-8").splitlines():
        if line in ("Accuracy:", "Macro-F1:"):
            metric = line[:-1].lower()
        cells = [c.strip() for c in line.strip("|").split("|")]
        if metric and len(cells) == 2 + len(SIZES) and cells[0] in SETS:
            out[(metric, cells[0], cells[1])] = [float(re.split(r"\s", c)[0]) for c in cells[2:]]
    return out


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    """sklearn's average='macro' over the classes of y and pred together."""
    f1 = []
    for c in np.unique(np.concatenate([y, pred])):
        tp = np.sum((pred == c) & (y == c))
        denom = np.sum(pred == c) + np.sum(y == c)
        f1.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(f1))


def scores(model: TextClassifier, X: Any, y: np.ndarray) -> tuple[float, float]:
    pred = model.classes_[np.argmax(model.predict_proba_features(X), axis=1)]
    return float(np.mean(pred == y)), macro_f1(y, pred)


Curve = dict[int, tuple[float, float]]


@dataclass
class Data:
    y: np.ndarray
    y_test: np.ndarray
    features: dict[str, tuple[Any, Any]]  # "char" / "char+word" -> (X pool, X test)


def load_set(data_dir: Path, name: str, configs: list[Config]) -> Data:
    texts, y = load(data_dir / name / "train.csv")
    test_texts, y_test = load(data_dir / name / "test.csv")
    features = {}
    for kind in sorted({c.features for c in configs}):
        model = TextClassifier(word_ngram_range=(1, 2) if kind == "char+word" else None).fit_vocabulary(texts)
        features[kind] = (model.transform(texts), model.transform(test_texts))
    return Data(y, y_test, features)


def model_for(config: Config) -> TextClassifier:
    return TextClassifier(word_ngram_range=(1, 2) if config.features == "char+word" else None,
                          class_weight="balanced" if config.balanced else None)


def import_curve(data: Data, config: Config, seed: int, last: int) -> Curve:
    X, X_test = data.features[config.features]
    order = np.random.default_rng(seed).permutation(len(data.y))
    model = model_for(config)
    return {n: scores(model.fit_features(X[order[:n]], data.y[order[:n]]), X_test, data.y_test)
            for n in range(STEP, last + 1, STEP)}


def active_curve(data: Data, config: Config, seed: int, last: int) -> Curve:
    X, X_test = data.features[config.features]
    order = np.random.default_rng(seed).permutation(len(data.y))
    labeled = order[:config.seed_size].tolist()
    unlabeled = np.sort(order[config.seed_size:])
    rng = np.random.default_rng([seed, 1])
    model = model_for(config)
    curve: Curve = {}
    while True:
        model.fit_features(X[labeled], data.y[labeled])
        if len(labeled) % STEP == 0:
            curve[len(labeled)] = scores(model, X_test, data.y_test)
        if len(labeled) >= last:
            return curve
        u = uncertainty(model.predict_proba_features(X[unlabeled]), config.uncertainty)
        served = serving_order(u, random_share=config.random_share, random_state=rng)
        # the batch ends on a multiple of STEP so that every curve is scored at the same sizes
        take = served[:min(config.batch, last - len(labeled), STEP - len(labeled) % STEP)]
        labeled += unlabeled[take].tolist()
        unlabeled = np.delete(unlabeled, take)


def labels_to_reach(curve: Curve, target: float, metric: int) -> int | None:
    for n in sorted(curve):
        if curve[n][metric] >= target - 1e-12:
            return n
    return None


def mean_curve(curves: list[Curve]) -> dict[int, np.ndarray]:
    return {n: np.mean([c[n] for c in curves], axis=0) for n in curves[0]}


def sd_curve(curves: list[Curve]) -> dict[int, np.ndarray]:
    return {n: np.std([c[n] for c in curves], axis=0) for n in curves[0]}


@dataclass
class Result:
    name: str
    config: Config
    last: int
    imports: list[Curve]
    actives: list[Curve]

    def reach(self, metric: int) -> tuple[int | None, list[int | None]]:
        """Labels for the mean active curve to reach the mean import score at ``last``, and
        per seed against that seed's own import score."""
        target = mean_curve(self.imports)[self.last][metric]
        on_mean = labels_to_reach({n: tuple(v) for n, v in mean_curve(self.actives).items()}, target, metric)
        per_seed = [labels_to_reach(a, i[self.last][metric], metric)
                    for i, a in zip(self.imports, self.actives, strict=True)]
        return on_mean, per_seed


def share(n: int | None, last: int) -> str:
    return f"{n / last:.0%}" if n else f">{last}"


def seeds_cell(per_seed: list[int | None], last: int) -> str:
    reached = [n for n in per_seed if n]
    if len(reached) < len(per_seed):
        return f"{len(per_seed) - len(reached)} of {len(per_seed)} not reached; " + \
            ", ".join(share(n, last) for n in per_seed)
    return f"{np.mean(reached) / last:.0%} ({min(reached) / last:.0%}-{max(reached) / last:.0%})"


def run(data: Data, name: str, config: Config, seeds: list[int], last: int,
        imports: dict[tuple[str, bool], list[Curve]]) -> Result:
    key = (config.features, config.balanced)  # the import curve depends on the model only
    if key not in imports:
        imports[key] = [import_curve(data, config, s, last) for s in seeds]
    return Result(name, config, last, imports[key], [active_curve(data, config, s, last) for s in seeds])


def print_curves(result: Result, refs: dict[tuple[str, str, str], list[float]]) -> None:
    print(f"  {'order':<26}" + "".join(f"{n:>20}" for n in SIZES))
    for k, curves in (("import (mean ± sd)", result.imports), ("active (mean ± sd)", result.actives)):
        m, s = mean_curve(curves), sd_curve(curves)
        print(f"  {k:<26}" + "".join(f"{m[n][0]:>7.3f}±{s[n][0]:.3f}/{m[n][1]:.3f}±{s[n][1]:.3f}"
                                     if n in m else f"{'':>20}" for n in SIZES))
    for strat in ("random", "least confidence"):
        acc, f1 = refs.get(("accuracy", result.name, strat)), refs.get(("macro-f1", result.name, strat))
        if acc and f1:
            print(f"  {'README ' + strat:<26}" + "".join(f"{a:>13.3f}/{f:.3f}" for a, f in zip(acc, f1, strict=True)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir")
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--max-labels", type=int, default=2000)
    ap.add_argument("--grid", action="store_true", help="compare the settings of grid() instead of one")
    defaults = Config()
    ap.add_argument("--batch", type=int, default=defaults.batch)
    ap.add_argument("--seed-size", type=int, default=defaults.seed_size)
    ap.add_argument("--random-share", type=float, default=defaults.random_share)
    ap.add_argument("--uncertainty", default=defaults.uncertainty)
    ap.add_argument("--features", default=defaults.features, choices=("char", "char+word"))
    ap.add_argument("--balanced", action="store_true")
    args = ap.parse_args()
    data_dir = find_data_dir(args.data_dir)
    refs = reference_curves(data_dir / "README.md")
    seeds = [int(s) for s in args.seeds.split(",")]
    configs = grid() if args.grid else [Config(args.uncertainty, args.seed_size, args.batch, args.random_share,
                                               args.features, args.balanced)]
    print(f"active learning: seeds {seeds}, up to {args.max_labels} labels; import order = seeded permutation")
    results = []
    for name in args.sets.split(","):
        data = load_set(data_dir, name, configs)
        last = min(args.max_labels, len(data.y)) // STEP * STEP
        imports: dict[tuple[str, bool], list[Curve]] = {}
        for config in configs:
            t0 = time.perf_counter()
            results.append(run(data, name, config, seeds, last, imports))
            print(f"\n{name}: {config.label()} ({time.perf_counter() - t0:.0f} s)", flush=True)
            print_curves(results[-1], refs)
    print(f"\nLabels for active order to reach import order's score at {args.max_labels} labels, as a share of "
          f"them: on the mean curves over seeds {seeds}; per seed, mean (range)\n")
    print("| set | settings | import acc / F1 | active acc / F1 | to import's accuracy: mean curve | per seed "
          "| to its macro-F1: mean curve | per seed |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        imp, act = mean_curve(r.imports)[r.last], mean_curve(r.actives)[r.last]
        cells = []
        for metric in (0, 1):
            on_mean, per_seed = r.reach(metric)
            cells += [share(on_mean, r.last), seeds_cell(per_seed, r.last)]
        print(f"| {r.name} | {r.config.label()} | {imp[0]:.3f} / {imp[1]:.3f} | {act[0]:.3f} / {act[1]:.3f} | "
              + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
