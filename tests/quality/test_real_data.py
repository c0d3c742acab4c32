"""Regression guard on public crowd datasets, when they are present beside the checkout."""

import csv
from pathlib import Path

import numpy as np
import pytest

from qistas.quality import DawidSkene, MajorityVote, default_classifier

DATA = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "crowd"


def load(name):
    with open(DATA / name / "labels.csv", newline="") as f:
        rows = list(csv.reader(f))[1:]
    with open(DATA / name / "gold.csv", newline="") as f:
        gold_rows = list(csv.reader(f))[1:]
    items, workers = {}, {}
    values = sorted({r[2] for r in rows}, key=lambda v: (len(v), v))
    vmap = {v: i for i, v in enumerate(values)}
    t = np.array([items.setdefault(r[0], len(items)) for r in rows])
    w = np.array([workers.setdefault(r[1], len(workers)) for r in rows])
    lab = np.array([vmap[r[2]] for r in rows])
    gold = np.full(len(items), -1)
    for item, value in gold_rows:
        gold[items[item]] = vmap[value]
    return t, w, lab, len(values), gold


@pytest.mark.skipif(not DATA.exists(), reason="crowd datasets not available")
@pytest.mark.parametrize(
    "name, default_min, ds_min",
    [
        # default (AutoClassifier) measured: rte .929, temp .942, sentiment .960, web .813,
        # music .796, adult .766, relevance .613 (docs/benchmarks-quality.md)
        ("rte", 0.925, 0.92),
        ("temp", 0.94, 0.94),
        ("sentiment", 0.955, 0.955),
        ("web", 0.80, 0.80),
        ("music", 0.785, 0.77),
        ("adult", 0.755, 0.75),
        ("relevance", 0.60, 0.60),
    ],
)
def test_accuracy_on_gold(name, default_min, ds_min):
    t, w, lab, k, gold = load(name)
    known = gold >= 0

    def acc(est):
        return np.mean(est.fit(t, w, lab, n_labels=k).labels_[known] == gold[known])

    mv = acc(MajorityVote())
    assert acc(default_classifier()) >= max(default_min, mv)
    assert acc(DawidSkene()) >= ds_min
