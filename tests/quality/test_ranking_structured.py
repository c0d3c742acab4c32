import json
import timeit
from itertools import permutations

import numpy as np
import pytest

from qistas.quality import RankingAggregator, kendall_tau, simulate_rankings
from qistas.quality.ranking import answer_score, mallows_expected_distance


def o(*order):
    return {"order": list(order)}


def test_kendall_tau_and_answer_score():
    assert kendall_tau([0, 1, 2], [0, 1, 2]) == 1.0
    assert kendall_tau([0, 1, 2], [2, 1, 0]) == -1.0
    assert kendall_tau([0, 1, 2], [1, 0, 2]) == pytest.approx(1 / 3)
    assert answer_score(o(2, 1, 0), o(0, 1, 2)) == 0.0
    assert answer_score(o(1, 0, 2), o(0, 1, 2)) == pytest.approx(2 / 3)


def test_mallows_expected_distance_by_enumeration():
    k, theta = 4, 0.7
    dist = np.array([(1 - kendall_tau(p, range(k))) * k * (k - 1) / 4
                     for p in permutations(range(k))])
    w = np.exp(-theta * dist)
    exact = float(np.dot(w, dist) / w.sum())
    got = mallows_expected_distance(np.array([theta]), np.array([k]))[0]
    assert got == pytest.approx(exact, rel=1e-9)
    assert mallows_expected_distance(np.array([0.0]), np.array([k]))[0] == pytest.approx(3.0, 1e-4)


def test_agreement_gives_the_order_and_high_confidence():
    res = RankingAggregator().aggregate([(0, o(2, 0, 1)), (1, o(2, 0, 1)), (2, o(2, 0, 1))],
                                        {"k": 3})
    assert res.response == {"order": [2, 0, 1]}
    assert res.extra["agreement"] == 1.0 and not res.needs_review
    assert res.confidence > 0.9


def test_disagreement_is_flagged():
    res = RankingAggregator().aggregate([(0, o(0, 1, 2)), (1, o(2, 1, 0))], {"k": 3})
    assert res.needs_review and res.extra["agreement"] == pytest.approx(0.5)
    # all scores equal: the lower response index first
    assert res.response == {"order": [0, 1, 2]}
    assert res.confidence == pytest.approx(0.5)


def test_kemeny_fixes_a_borda_order():
    # Borda ties 0 and 1 (index order); the pairwise majority puts 1 above 0
    answers = [(0, o(1, 0, 2, 3)), (1, o(1, 0, 2, 3)), (2, o(0, 2, 3, 1))]
    assert RankingAggregator(method="borda").aggregate(answers).response["order"][:2] == [0, 1]
    assert RankingAggregator().aggregate(answers).response["order"][:2] == [1, 0]


def test_invalid_orders_raise():
    with pytest.raises(ValueError, match="permutation"):
        RankingAggregator().aggregate([(0, o(0, 0, 1))], {"k": 3})
    with pytest.raises(ValueError, match="permutation"):
        RankingAggregator().aggregate([(0, o(0, 1))], {"k": 3})
    with pytest.raises(ValueError, match="method"):
        RankingAggregator(method="x").fit([], n_workers=0)


def _tau(est, sim):
    return np.mean([kendall_tau(r.response["order"], t)
                    for r, t in zip(est.results_, sim.truth, strict=True)])


@pytest.mark.parametrize("answers, floor", [(3, 0.72), (5, 0.82)])
def test_simulation_weighted_kemeny_beats_borda(answers, floor):
    sim = simulate_rankings(200, 30, 5, answers, random_state=answers)
    kemeny = RankingAggregator().fit(sim.items, n_workers=30, contexts=sim.contexts)
    borda = RankingAggregator(method="borda", n_iter=1, prior_answers=1e9).fit(
        sim.items, n_workers=30, contexts=sim.contexts)  # every annotator weighs the same
    assert _tau(kemeny, sim) > _tau(borda, sim) + 0.03
    assert _tau(kemeny, sim) > floor
    # spammers get far less weight than good annotators
    th = kemeny.thetas_
    assert th[sim.kinds == 2].max() < th[sim.kinds == 0].min()


def test_unknown_worker_and_params_round_trip():
    sim = simulate_rankings(100, 10, 4, 3, random_state=2)
    est = RankingAggregator().fit(sim.items, n_workers=10, contexts=sim.contexts)
    assert est.default_theta_ == pytest.approx(
        np.average(est.thetas_, weights=np.bincount([w for it in sim.items for w, _ in it],
                                                    minlength=10)))
    loaded = RankingAggregator().load_params(json.loads(json.dumps(est.params_)))
    for i in range(5):
        assert loaded.aggregate(sim.items[i], sim.contexts[i]) == est.results_[i]
    # a spammer's answer alone against a good annotator's: the good one wins
    good, spam = int(np.argmax(est.thetas_)), int(np.argmin(est.thetas_))
    res = est.aggregate([(spam, o(3, 2, 1, 0)), (good, o(0, 1, 2, 3)), (-1, o(0, 1, 3, 2))])
    assert res.response["order"][:2] == [0, 1]


def test_confidence_grows_with_agreeing_answers():
    est = RankingAggregator()
    one = est.aggregate([(0, o(0, 1, 2))])
    three = est.aggregate([(w, o(0, 1, 2)) for w in range(3)])
    assert 0.5 < one.confidence < three.confidence < 1.0


def test_aggregate_is_fast():
    sim = simulate_rankings(50, 10, 10, 5, random_state=0)
    est = RankingAggregator().fit(sim.items, n_workers=10, contexts=sim.contexts)
    best = min(timeit.repeat(lambda: est.aggregate(sim.items[0], sim.contexts[0]),
                             number=200, repeat=3))
    assert best / 200 < 3e-3  # 0.35 ms measured for k = 10; slack for busy machines
