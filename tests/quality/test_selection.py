import numpy as np
import pytest

from qistas.quality import (
    MACE,
    AutoClassifier,
    MajorityVote,
    WorkerModel,
    best_label,
    default_classifier,
    posterior_for_task,
    simulate_classification,
)
from qistas.quality._base import best_labels, labels_from_probas
from qistas.quality.selection import CANDIDATES


def test_three_way_tie_goes_to_the_first_label_not_to_rounding():
    # the sums of the same three log terms in another order differ in the last bits
    p = np.array([0.33333333333333326, 0.3333333333333332, 0.33333333333333354])
    assert int(np.argmax(p)) == 2
    assert best_label(p) == 0
    assert labels_from_probas(p[:, None], np.array([True]))[0] == 0
    assert best_label(np.array([0.2, 0.4, 0.4 * (1 + 1e-12)])) == 1
    assert best_label(np.array([0.2, 0.4, 0.4 * (1 + 1e-6)])) == 2  # a real difference


def test_three_way_tie_in_fitted_models_and_online_posterior():
    # task 0: x/y/z one vote each from three equally reliable workers
    # (a symmetric project: every class equally often, every worker right throughout)
    truth = np.tile([0, 1, 2], 60)
    tasks = np.r_[np.repeat(np.arange(1, 181), 3), [0, 0, 0]]
    workers = np.r_[np.tile([0, 1, 2], 180), [0, 1, 2]]
    labels = np.r_[np.repeat(truth, 3), [0, 1, 2]]
    for est in (MACE(), AutoClassifier(), MajorityVote()):
        est.fit(tasks, workers, labels, n_labels=3)
        assert est.labels_[0] == 0
    conf = np.tile(np.eye(3) * 0.7 + 0.1, (3, 1, 1))
    post = posterior_for_task([2, 1, 0], [2, 1, 0], conf, np.ones(3) / 3)
    assert best_label(post) == 0


def test_best_labels_columns():
    p = np.array([[0.5, 0.1, 0.2], [0.5, 0.9, 0.2], [0.0, 0.0, 0.6]])
    assert best_labels(p).tolist() == [0, 1, 2]


def _fit(est, sim):
    return est.fit(sim.tasks, sim.workers, sim.labels, n_labels=sim.n_labels)


def test_drop_in_attributes_and_online_posterior_match():
    sim = simulate_classification(600, 20, 3, 3, random_state=3)
    auto = _fit(AutoClassifier(), sim)
    assert auto.chosen_ in CANDIDATES
    assert auto.confusions_.shape == (20, 3, 3) and auto.priors_.shape == (3,)
    assert auto.probas_.shape == (600, 3) and auto.labels_.shape == (600,)
    np.testing.assert_allclose(auto.confusions_.sum(axis=2), 1.0)
    model = WorkerModel.from_estimator(auto)
    for t in range(5):  # to 5e-3: the last E-step precedes the last M-step
        rows = sim.tasks == t
        np.testing.assert_allclose(
            model.posterior(sim.workers[rows], sim.labels[rows]), auto.probas_[t], atol=5e-3
        )
    assert set(auto.scores_) == {"MajorityVote", "OneCoinDawidSkene", "MACE", "DawidSkene"}
    assert isinstance(default_classifier(), AutoClassifier)


def test_majority_vote_candidate_is_majority_vote_with_one_coin_confusions():
    sim = simulate_classification(400, 15, 4, 3, random_state=1)
    auto = _fit(AutoClassifier(candidates=["MajorityVote"]), sim)
    assert auto.chosen_ == "MajorityVote"
    mv = _fit(MajorityVote(), sim)
    np.testing.assert_array_equal(auto.labels_, mv.labels_)
    c = auto.confusions_
    assert np.allclose(c, c[0]) and np.allclose(auto.priors_, 0.25)
    off = c[0][~np.eye(4, dtype=bool)]
    assert np.allclose(off, off[0]) and c[0, 0, 0] > 0.25


def test_biased_workers_choose_dawid_skene_over_majority_vote():
    # class-dependent errors on a binary set with 3 answers per item
    sim = simulate_classification(
        3000, 40, 2, 3, mix=(0.3, 0.2, 0.0, 0.0, 0.5), class_priors=np.array([0.7, 0.3]),
        random_state=1,
    )
    auto = _fit(AutoClassifier(), sim)
    mv = np.mean(_fit(MajorityVote(), sim).labels_ == sim.truth)
    assert auto.chosen_ == "DawidSkene"
    assert np.mean(auto.labels_ == sim.truth) > mv + 0.03


def test_spammers_are_down_weighted():
    sim = simulate_classification(2000, 30, 2, 3, mix=(0.4, 0.2, 0.4, 0.0), random_state=2)
    auto = _fit(AutoClassifier(), sim)
    mv = np.mean(_fit(MajorityVote(), sim).labels_ == sim.truth)
    assert auto.chosen_ != "MajorityVote"
    assert np.mean(auto.labels_ == sim.truth) > mv
    spam = sim.kinds == 2
    diag = np.diagonal(auto.confusions_, axis1=1, axis2=2).mean(axis=1)
    assert diag[spam].mean() < diag[sim.kinds == 0].mean()


def test_gold_veto_and_gold_clamping():
    sim = simulate_classification(1500, 30, 2, 3, mix=(0.3, 0.2, 0.0, 0.0, 0.5),
                                  class_priors=np.array([0.7, 0.3]), random_state=4)
    gold = np.full(sim.n_tasks, -1)
    gold[:200] = sim.truth[:200]
    auto = AutoClassifier().fit(sim.tasks, sim.workers, sim.labels, n_labels=2, gold=gold)
    assert auto.gold_accuracy_ is not None and set(auto.gold_accuracy_) == set(auto.scores_)
    assert auto.chosen_ not in auto.dropped_
    assert auto.gold_accuracy_[auto.chosen_] >= max(auto.gold_accuracy_.values()) - 0.05
    np.testing.assert_array_equal(auto.labels_[:200], sim.truth[:200])
    few = np.full(sim.n_tasks, -1)
    few[:4] = sim.truth[:4]
    small = AutoClassifier().fit(sim.tasks, sim.workers, sim.labels, n_labels=2, gold=few)
    assert small.gold_accuracy_ is None  # under min_gold: answers alone decide


def test_unknown_worker_and_unanswered_task():
    tasks, workers, labels = [0, 0, 1, 1, 2], [0, 1, 0, 1, 2], [1, 1, 0, 0, 1]
    auto = AutoClassifier(n_folds=2).fit(tasks, workers, labels, n_labels=2, n_tasks=4)
    assert auto.labels_.tolist()[:3] == [1, 0, 1] and auto.labels_[3] == -1
    p = WorkerModel.from_estimator(auto).posterior([-1], [1])
    assert p[1] > 0.5


def test_deterministic_and_validates():
    sim = simulate_classification(300, 10, 3, 3, random_state=5)
    a, b = _fit(AutoClassifier(), sim), _fit(AutoClassifier(), sim)
    assert a.chosen_ == b.chosen_ and np.array_equal(a.probas_, b.probas_)
    for bad in ({"candidates": ["GLAD"]}, {"candidates": []}, {"n_folds": 1},
                {"se_rule": -1.0}, {"candidates": ["MACE", "MACE"]}):
        with pytest.raises(ValueError):
            _fit(AutoClassifier(**bad), sim)


def test_the_selection_sets_no_warnings_filter(monkeypatch):
    # Refits run in threads of a server; warnings.catch_warnings swaps the filters of the
    # whole process and is not thread-safe, so the candidates are fitted quiet instead.
    def refused(*_args, **_kwargs):
        raise AssertionError("warnings.catch_warnings used")

    sim = simulate_classification(400, 15, 3, 3, random_state=2)
    monkeypatch.setattr("warnings.catch_warnings", refused)
    auto = _fit(AutoClassifier(), sim)
    assert auto.chosen_ in CANDIDATES
