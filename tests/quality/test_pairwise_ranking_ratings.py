import numpy as np
import pytest
from scipy.stats import spearmanr

from qistas.quality import (
    Borda,
    BradleyTerry,
    CrowdBradleyTerry,
    RatingAggregator,
    borda_scores,
    simulate_pairwise,
    simulate_ratings,
)


def test_bradley_terry_two_items_by_hand():
    # a beats b 3 times of 4; with prior=1 (half a win each against a strength-1 item)
    # the MLE ratio p_a / p_b is close to 3; without the prior it would be exactly 3
    bt = BradleyTerry(prior=1e-9).fit([0, 0, 0, 0], [1, 1, 1, 1], [1, 1, 1, 0])
    assert np.exp(bt.scores_[0] - bt.scores_[1]) == pytest.approx(3.0, rel=1e-4)
    assert bt.ranking_.tolist() == [0, 1]
    assert bt.predict_proba([0], [1])[0] == pytest.approx(0.75, rel=1e-4)


def test_bradley_terry_ties_and_undefeated_item_stay_finite():
    bt = BradleyTerry().fit([0, 0, 1], [1, 2, 2], [1, 1, 0.5])
    assert np.all(np.isfinite(bt.scores_))
    assert bt.ranking_[0] == 0
    assert bt.scores_[1] == pytest.approx(bt.scores_[2], abs=0.3)


def test_bradley_terry_recovers_simulated_scores():
    a, b, y, _, true, _ = simulate_pairwise(15, 5, 3000, random_state=0)
    bt = BradleyTerry().fit(a, b, y)
    assert bt.converged_
    assert spearmanr(bt.scores_, true).statistic > 0.95


def test_bradley_terry_input_checks():
    with pytest.raises(ValueError, match="empty"):
        BradleyTerry().fit([], [], [])
    with pytest.raises(ValueError, match="itself"):
        BradleyTerry().fit([0], [0], [1])
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        BradleyTerry().fit([0], [1], [2])


def test_crowd_bradley_terry_finds_reversed_annotators():
    a, b, y, w, true, rev = simulate_pairwise(15, 12, 4000, reversed_share=0.3, random_state=1)
    assert rev.any()
    plain = BradleyTerry().fit(a, b, y)
    crowd = CrowdBradleyTerry().fit(a, b, y, w)
    assert np.all(crowd.reliabilities_[rev] < 0.5) and np.all(crowd.reliabilities_[~rev] > 0.5)
    rho_crowd = spearmanr(crowd.scores_, true).statistic
    rho_plain = spearmanr(plain.scores_, true).statistic
    assert rho_crowd > 0.95 and rho_crowd > rho_plain


def test_borda_by_hand():
    # 3 items; orders best first. Points (m-1-r)/(m-1): first 1, second 0.5, third 0
    s = borda_scores([[0, 1, 2], [1, 0, 2], [0, 2, 1]])
    np.testing.assert_allclose(s, [(1 + 0.5 + 1) / 3, (0.5 + 1 + 0) / 3, (0 + 0 + 0.5) / 3])
    # a partial order: unranked items share the remaining points (0.5 and 0 -> 0.25)
    np.testing.assert_allclose(borda_scores([[2]], n_items=3), [0.25, 0.25, 1.0])
    with pytest.raises(ValueError, match="twice"):
        borda_scores([[0, 0]])


def test_borda_estimator_per_task():
    est = Borda().fit([0, 0, 1, 1, 1], [[0, 1], [0, 1], [2, 0, 1], [2, 1, 0], [0, 2, 1]])
    assert est.orders_[0].tolist() == [0, 1]
    assert est.orders_[1].tolist() == [2, 0, 1]


def test_rating_aggregator_recovers_bias_and_beats_the_mean():
    t, w, r, true, bias, scale = simulate_ratings(400, 15, 5, random_state=0)
    est = RatingAggregator().fit(t, w, r)
    assert est.converged_
    mean = np.bincount(t, r) / np.bincount(t)
    err_est = np.sqrt(np.mean((est.scores_ - true) ** 2))
    err_mean = np.sqrt(np.mean((mean - true) ** 2))
    assert err_est < 0.6 * err_mean
    assert np.corrcoef(est.biases_, bias)[0, 1] > 0.9
    assert np.corrcoef(est.scales_, scale)[0, 1] > 0.8


def test_rating_aggregator_by_hand_and_edges():
    # one annotator rates everything one point higher than the other: scores sit between
    t = [0, 0, 1, 1, 2, 2]
    w = [0, 1, 0, 1, 0, 1]
    r = [3, 4, 1, 2, 5, 6]
    est = RatingAggregator(shrinkage=0.0).fit(t, w, r, n_tasks=4)
    np.testing.assert_allclose(est.biases_, [-0.5, 0.5], atol=1e-3)
    np.testing.assert_allclose(est.scores_[:3], [3.5, 1.5, 5.5], atol=1e-3)
    assert np.isnan(est.scores_[3])
    clipped = RatingAggregator(clip=(1, 5)).fit(t, w, r)
    assert clipped.scores_.max() <= 5
    with pytest.raises(ValueError, match="no ratings"):
        RatingAggregator().fit([], [], [])
