import json

import numpy as np
import pytest

from qistas.quality import MultiLabelAggregator, simulate_multilabel
from qistas.quality.multilabel import answer_score

LABELS = ["cat", "dog", "bird"]


def items_from(sim, labels):
    items = [[] for _ in range(sim.truth.shape[0])]
    for t, w, row in zip(sim.tasks, sim.workers, sim.chosen, strict=True):
        items[t].append((int(w), {"labels": [labels[j] for j in np.flatnonzero(row)]}))
    return items


def test_agreement_disagreement_and_order():
    agg = MultiLabelAggregator(LABELS)
    r = agg.aggregate([(0, {"labels": ["dog", "cat"]}), (1, {"labels": ["cat", "dog"]})])
    assert r.response == {"labels": ["cat", "dog"]}  # the spec's order
    assert set(r.extra["label_confidence"]) == set(LABELS)
    assert r.confidence == min(r.extra["label_confidence"].values())
    r = agg.aggregate([(0, {"labels": ["cat"]}), (1, {"labels": ["bird"]}), (2, {"labels": ["cat"]})])
    assert r.response == {"labels": ["cat"]}
    assert r.extra["label_confidence"]["bird"] < r.extra["label_confidence"]["dog"]


def test_ties_leave_the_label_out_and_empty_answers():
    agg = MultiLabelAggregator(LABELS)
    r = agg.aggregate([(0, {"labels": ["cat"]}), (1, {"labels": []})])
    assert r.response == {"labels": []}  # 1 vs 1: a tie is "absent"
    assert r.extra["label_confidence"]["cat"] == pytest.approx(0.5)
    assert r.needs_review
    r = agg.aggregate([(0, {"labels": []}), (1, {"labels": []})])
    assert r.response == {"labels": []} and not r.needs_review
    assert agg.aggregate([]).response == {"labels": []}
    with pytest.raises(ValueError):
        agg.aggregate([(0, {"labels": ["fish"]})])


def test_answer_score_is_jaccard():
    assert answer_score({"labels": []}, {"labels": []}) == 1.0
    assert answer_score({"labels": ["cat"]}, {"labels": []}) == 0.0
    assert answer_score({"labels": ["cat", "dog"]}, {"labels": ["dog", "bird"]}) == pytest.approx(1 / 3)
    assert answer_score({"labels": ["dog", "cat"]}, {"labels": ["cat", "dog"]}) == 1.0


def test_fit_beats_per_label_majority_and_spammer_down_weighted():
    sim = simulate_multilabel(1500, 30, 3, 3, random_state=0)
    items = items_from(sim, LABELS)
    agg = MultiLabelAggregator(LABELS).fit(items, n_workers=30)
    assert len(agg.results_) == 1500
    pred = np.array([[n in r.response["labels"] for n in LABELS] for r in agg.results_])
    votes = np.zeros((1500, 3))
    np.add.at(votes, sim.tasks, sim.chosen)
    mv = votes >= 2
    assert np.mean(pred == sim.truth) > np.mean(mv == sim.truth) + 0.01
    conf = np.asarray(agg.params_["confusions"])  # (L, W, 2, 2)
    spam, good = sim.kinds == 3, sim.kinds == 0
    # a spammer's answers barely depend on the truth: P(1|1) - P(1|0) near 0
    gap = conf[:, :, 1, 1] - conf[:, :, 0, 1]
    assert gap[:, spam].mean() < gap[:, good].mean() - 0.3


def test_params_json_round_trip_and_unknown_worker():
    sim = simulate_multilabel(300, 10, 3, 3, random_state=1)
    items = items_from(sim, LABELS)
    fitted = MultiLabelAggregator(LABELS).fit(items, n_workers=10)
    loaded = MultiLabelAggregator(LABELS).load_params(json.loads(json.dumps(fitted.params_)))
    answers = items[0] + [(-1, {"labels": ["bird"]}), (99, {"labels": []})]
    assert fitted.aggregate(answers) == loaded.aggregate(answers)
    # the batch result and the one-task posterior agree on the decision
    assert fitted.aggregate(items[0]).response == fitted.results_[0].response
    with pytest.raises(ValueError):
        MultiLabelAggregator(["a", "b"]).load_params(fitted.params_)
    with pytest.raises(ValueError):
        MultiLabelAggregator(LABELS).fit([[(10, {"labels": []})]], n_workers=10)
