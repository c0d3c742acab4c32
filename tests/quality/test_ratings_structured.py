"""RatingConsensus: the structured rating contract, noise weights, bias shrinkage, real data."""

import json
import timeit
from pathlib import Path

import numpy as np
import pytest

from qistas.quality import RatingConsensus
from qistas.quality.ratings import answer_score

DATA = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "crowd-types"
SCALE = {"min": 1, "max": 5}


def task(*pairs):
    return [(w, {"rating": r}) for w, r in pairs]


def test_agreement_gives_the_rating_and_high_confidence():
    res = RatingConsensus().aggregate(task((0, 4), (1, 4), (2, 4)), SCALE)
    assert res.response == {"rating": 4}
    assert res.extra["estimate"] == pytest.approx(4.0)
    lo, hi = res.extra["interval"]
    assert lo < 4 < hi
    assert res.confidence == pytest.approx(1 - (hi - lo) / 4)
    assert res.confidence > 0.6 and not res.needs_review


def test_disagreement_widens_the_interval_and_asks_for_review():
    agree = RatingConsensus().aggregate(task((0, 3), (1, 3), (2, 3)), SCALE)
    split = RatingConsensus().aggregate(task((0, 1), (1, 5), (2, 1), (3, 5)), SCALE)
    assert split.confidence < agree.confidence
    assert split.needs_review
    assert split.response == {"rating": 3}  # estimate exactly 3


def test_ties_round_half_up_whatever_the_float_error():
    res = RatingConsensus().aggregate(task((0, 2), (1, 3)), SCALE)
    assert res.extra["estimate"] == pytest.approx(2.5)
    assert res.response == {"rating": 3}
    from qistas.quality.ratings import _round_half_up

    assert _round_half_up(2.4999999999, 1, 5) == 3
    assert _round_half_up(2.49, 1, 5) == 2
    assert _round_half_up(-0.5, -100, 100) == 0


def test_default_scale_and_out_of_scale():
    assert RatingConsensus().aggregate(task((0, 5))).response == {"rating": 5}
    with pytest.raises(ValueError, match="outside the scale"):
        RatingConsensus().aggregate(task((0, 7)), SCALE)
    assert RatingConsensus().aggregate([], SCALE).needs_review


def _noisy_project(seed=0):
    rng = np.random.default_rng(seed)
    true = rng.uniform(0, 100, 200)
    items = []
    for s in true:
        answers = [(w, {"rating": int(np.clip(round(s + rng.normal(0, 5)), 0, 100))})
                   for w in range(4)]
        answers.append((4, {"rating": int(rng.integers(0, 101))}))  # spammer
        items.append(answers)
    return items, true


def test_fit_down_weights_a_spammer_and_beats_the_mean():
    items, true = _noisy_project()
    ctx = [{"min": 0, "max": 100}] * len(items)
    est = RatingConsensus().fit(items, n_workers=5, contexts=ctx)
    assert est.converged_
    assert est.sigmas_[4] > 3 * est.sigmas_[:4].max()
    e = np.array([r.extra["estimate"] for r in est.results_])
    mean = np.array([np.mean([a["rating"] for _, a in t]) for t in items])
    assert np.abs(e - true).mean() < 0.5 * np.abs(mean - true).mean()
    json.dumps(est.params_)
    again = RatingConsensus().load_params(est.params_)
    assert again.aggregate(items[0], ctx[0]) == est.results_[0]
    # an unknown worker gets the prior noise and no bias
    assert again._worker(-1) == (est.prior_sigma_, 0.0)


def test_bias_correction_recovers_offsets_and_is_shrunk_for_few_answers():
    # offsets only (no scale differences): each worker shifts every rating the same way
    rng = np.random.default_rng(1)
    lo, hi = -10.0, 20.0
    true, bias = rng.normal(5, 2, 300), rng.normal(0, 1.0, 12)
    items = []
    for s in true:
        ws = rng.choice(12, 5, replace=False)
        items.append([(int(w), {"rating": float(s + bias[w] + rng.normal(0, 0.4))}) for w in ws])
    ctx = [{"min": lo, "max": hi}] * len(items)
    est = RatingConsensus(correct_bias=True).fit(items, n_workers=12, contexts=ctx)
    assert est.tau_ > 0
    assert np.corrcoef(est.biases_, bias)[0, 1] > 0.95
    e = np.array([r.extra["estimate"] for r in est.results_])
    off = RatingConsensus().fit(items, n_workers=12, contexts=ctx)
    e_off = np.array([r.extra["estimate"] for r in off.results_])

    def err(x):  # offsets are identified up to a common shift: compare centred errors
        d = x - true
        return np.abs(d - d.mean()).mean()

    # noise alone leaves 0.4 / sqrt(5) * sqrt(2 / pi) = 0.14 of mean absolute error
    assert err(e) < 0.17 < err(e_off)
    # a worker seen twice is barely corrected: offset well under a frequent worker's
    few = [list(a) for a in items]
    few[0].append((12, {"rating": hi}))
    few[1].append((12, {"rating": hi}))
    est2 = RatingConsensus(correct_bias=True).fit(few, n_workers=13, contexts=ctx)
    raw = np.mean([hi - est2.results_[i].extra["estimate"] for i in (0, 1)]) / (hi - lo)
    assert abs(est2.biases_[12]) < 0.5 * raw


def test_answer_score():
    res = {"rating": 3, "estimate": 3.0}
    assert answer_score({"rating": 3}, res, SCALE) == 1.0
    assert answer_score({"rating": 5}, res, SCALE) == 0.5
    assert answer_score({"rating": 1}, {"rating": 5}, SCALE) == 0.0


def test_fit_validates():
    with pytest.raises(ValueError):
        RatingConsensus().fit([task((5, 3))], n_workers=2)
    with pytest.raises(ValueError, match="level"):
        RatingConsensus(level=1.0).fit([task((0, 3))], n_workers=1)


def test_aggregate_is_fast():
    items, _ = _noisy_project()
    est = RatingConsensus().fit(items, n_workers=5, contexts=[{"min": 0, "max": 100}] * 200)
    n = 500
    assert timeit.timeit(lambda: est.aggregate(items[0], {"min": 0, "max": 100}),
                         number=n) / n < 1e-3


@pytest.mark.skipif(not (DATA / "snow-affect").exists(), reason="dataset not available")
def test_snow_affect_mae_beats_the_plain_mean():
    folder = DATA / "snow-affect"
    answers = [json.loads(x) for x in (folder / "answers.jsonl").read_text().splitlines()]
    truth = {j["item"]: j["answer"]["rating"]
             for j in map(json.loads, (folder / "truth.jsonl").read_text().splitlines())}
    data = {j["item"]: j["data"]
            for j in map(json.loads, (folder / "items.jsonl").read_text().splitlines())}
    items = sorted({a["item"] for a in answers})
    iid = {k: i for i, k in enumerate(items)}
    workers: dict[str, int] = {}
    tasks = [[] for _ in items]
    for a in answers:
        tasks[iid[a["item"]]].append((workers.setdefault(a["worker"], len(workers)), a["answer"]))
    ctx = [{"min": data[k]["scale"][0], "max": data[k]["scale"][1]} for k in items]
    est = RatingConsensus().fit(tasks, n_workers=len(workers), contexts=ctx)
    y = np.array([truth[k] for k in items], dtype=float)
    e = np.array([r.extra["estimate"] for r in est.results_])
    # measured 11.90 (plain mean 12.02, worker-offset mean 12.87)
    assert np.abs(e - y).mean() < 12.0
