import warnings

import numpy as np
import pytest

from qistas.quality import (
    GLAD,
    MACE,
    ConvergenceWarning,
    DawidSkene,
    MajorityVote,
    OneCoinDawidSkene,
    WeightedMajorityVote,
    clone,
    default_classifier,
    majority_vote,
    simulate_classification,
)

EM = [DawidSkene, OneCoinDawidSkene, MACE, GLAD]
ALL = [MajorityVote, WeightedMajorityVote, *EM]


@pytest.fixture(scope="module")
def sim():
    return simulate_classification(3000, 60, 3, 5, random_state=1)


def test_majority_vote_by_hand():
    # task 0: 0,0,1 -> 0 ; task 1: 1,2 tie -> lowest index 1 ; task 2: 2
    tasks = [0, 0, 0, 1, 1, 2]
    workers = [0, 1, 2, 0, 1, 2]
    labels = [0, 0, 1, 1, 2, 2]
    mv = MajorityVote().fit(tasks, workers, labels, n_labels=3)
    assert mv.labels_.tolist() == [0, 1, 2]
    np.testing.assert_allclose(mv.probas_[0], [2 / 3, 1 / 3, 0])
    np.testing.assert_allclose(mv.probas_[1], [0, 0.5, 0.5])
    assert majority_vote(tasks, labels).tolist() == [0, 1, 2]


def test_weighted_vote_with_given_weights_by_hand():
    # worker 2 weighs 3: outvotes workers 0 and 1 (1 + 1) on task 0
    tasks, workers, labels = [0, 0, 0], [0, 1, 2], [1, 1, 0]
    wmv = WeightedMajorityVote(weights=[1.0, 1.0, 3.0]).fit(tasks, workers, labels)
    assert wmv.labels_.tolist() == [0]
    np.testing.assert_allclose(wmv.probas_[0], [0.6, 0.4])


def test_weighted_vote_learns_lower_weight_for_a_random_answerer():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 300)
    tasks = np.repeat(np.arange(300), 4)
    workers = np.tile(np.arange(4), 300)
    flip = rng.random((300, 4)) < np.array([0.1, 0.1, 0.1, 0.5])  # worker 3 guesses
    labels = np.where(flip, 1 - truth[:, None], truth[:, None]).ravel()
    wmv = WeightedMajorityVote(n_iter=3).fit(tasks, workers, labels)
    assert wmv.weights_[3] < 0.7 < wmv.weights_[:3].min()


@pytest.mark.parametrize("cls", ALL)
def test_accuracy_and_shapes_on_simulated_crowd(cls, sim):
    est = cls().fit(sim.tasks, sim.workers, sim.labels, n_labels=3)
    assert est.labels_.shape == (3000,)
    assert est.probas_.shape == (3000, 3)
    np.testing.assert_allclose(est.probas_.sum(axis=1), 1.0)
    mv = np.mean(MajorityVote().fit_predict(sim.tasks, sim.workers, sim.labels) == sim.truth)
    acc = np.mean(est.labels_ == sim.truth)
    assert acc >= mv - 0.01
    if cls in (DawidSkene, MACE):
        assert acc > mv + 0.05


def test_dawid_skene_recovers_confusion_matrices():
    sim = simulate_classification(
        4000, 20, 3, 6, mix=(0.5, 0.3, 0.0, 0.2), activity_sigma=0.0, random_state=3
    )
    ds = DawidSkene().fit(sim.tasks, sim.workers, sim.labels)
    assert ds.converged_
    # compare with the confusions realised in the sample (counts against the truth)
    counts = np.zeros_like(sim.confusions)
    np.add.at(counts, (sim.workers, sim.truth[sim.tasks], sim.labels), 1.0)
    realised = counts / counts.sum(axis=2, keepdims=True)
    assert np.abs(ds.confusions_ - realised).max() < 0.03
    assert np.abs(ds.confusions_ - sim.confusions).max() < 0.1
    assert np.mean(ds.labels_ == sim.truth) > 0.95
    np.testing.assert_allclose(ds.confusions_.sum(axis=2), 1.0)


def test_dawid_skene_handles_adversaries_better_than_vote():
    sim = simulate_classification(2000, 30, 4, 5, mix=(0.3, 0.2, 0.0, 0.5), random_state=4)
    ds_acc = np.mean(DawidSkene().fit_predict(sim.tasks, sim.workers, sim.labels) == sim.truth)
    mv_acc = np.mean(MajorityVote().fit_predict(sim.tasks, sim.workers, sim.labels) == sim.truth)
    assert ds_acc > mv_acc + 0.15


def test_mace_flags_spammers(sim):
    est = MACE().fit(sim.tasks, sim.workers, sim.labels)
    spam = sim.kinds == 2
    good = sim.kinds == 0
    assert est.competences_[spam].mean() < 0.3 < est.competences_[good].mean()


def test_glad_sees_adversaries_as_negative_ability():
    sim = simulate_classification(2000, 30, 2, 5, mix=(0.6, 0.0, 0.0, 0.4), random_state=5)
    est = GLAD().fit(sim.tasks, sim.workers, sim.labels)
    adv = sim.kinds == 3
    assert np.all(est.alphas_[adv] < 0) and np.all(est.alphas_[~adv] > 0)
    assert np.all(est.betas_ > 0)


@pytest.mark.parametrize("cls", EM)
def test_em_is_deterministic(cls, sim):
    a = cls().fit(sim.tasks, sim.workers, sim.labels).probas_
    b = cls().fit(sim.tasks, sim.workers, sim.labels).probas_
    np.testing.assert_array_equal(a, b)


def test_mace_restarts_are_seeded(sim):
    a = MACE(n_restarts=2, random_state=7).fit(sim.tasks, sim.workers, sim.labels)
    b = MACE(n_restarts=2, random_state=7).fit(sim.tasks, sim.workers, sim.labels)
    np.testing.assert_array_equal(a.probas_, b.probas_)
    single = MACE().fit(sim.tasks, sim.workers, sim.labels)
    assert a.log_likelihood_ >= single.log_likelihood_ - 1e-12


@pytest.mark.parametrize("cls", ALL)
def test_task_without_answers(cls):
    # task 1 has no answer: label -1, and a documented row (uniform or the priors)
    tasks, workers, labels = [0, 0, 2, 2], [0, 1, 0, 1], [1, 1, 0, 0]
    est = cls().fit(tasks, workers, labels, n_labels=2, n_tasks=4)
    assert est.labels_.tolist() == [1, -1, 0, -1]
    np.testing.assert_allclose(est.probas_.sum(axis=1), 1.0)
    if hasattr(est, "priors_"):
        np.testing.assert_allclose(est.probas_[1], est.priors_)
    else:
        np.testing.assert_allclose(est.probas_[1], [0.5, 0.5])


@pytest.mark.parametrize("cls", ALL)
def test_one_worker(cls):
    tasks, workers, labels = [0, 1, 2, 3], [0, 0, 0, 0], [0, 1, 1, 2]
    est = cls().fit(tasks, workers, labels)
    assert est.labels_.tolist() == [0, 1, 1, 2]


@pytest.mark.parametrize("cls", ALL)
def test_only_one_class_seen(cls):
    tasks, workers, labels = [0, 0, 1, 1], [0, 1, 0, 1], [2, 2, 2, 2]
    est = cls().fit(tasks, workers, labels, n_labels=3)
    assert est.labels_.tolist() == [2, 2]
    assert np.all(np.isfinite(est.probas_))


@pytest.mark.parametrize("cls", [DawidSkene, MACE])
def test_worker_who_answers_everything_the_same_is_discounted(cls):
    sim = simulate_classification(1000, 10, 2, 3, mix=(1, 0, 0, 0), random_state=2)
    # add a prolific worker 10 who always says 0
    tasks = np.concatenate([sim.tasks, np.arange(1000)])
    workers = np.concatenate([sim.workers, np.full(1000, 10)])
    labels = np.concatenate([sim.labels, np.zeros(1000, int)])
    est = cls().fit(tasks, workers, labels)
    mv = MajorityVote().fit(tasks, workers, labels)
    assert np.mean(est.labels_ == sim.truth) > np.mean(mv.labels_ == sim.truth) + 0.03
    assert est.skills_[10] < np.median(est.skills_[:10])


def test_gold_clamps_known_tasks():
    sim = simulate_classification(2000, 40, 3, 3, mix=(0.3, 0.3, 0.2, 0.2), random_state=8)
    gold = np.full(2000, -1)
    gold[:100] = sim.truth[:100]
    ds = DawidSkene().fit(sim.tasks, sim.workers, sim.labels, gold=gold)
    assert np.array_equal(ds.labels_[:100], sim.truth[:100])
    np.testing.assert_allclose(ds.probas_[np.arange(100), sim.truth[:100]], 1.0)
    free = DawidSkene().fit(sim.tasks, sim.workers, sim.labels)
    acc_g = np.mean(ds.labels_[100:] == sim.truth[100:])
    acc_f = np.mean(free.labels_[100:] == sim.truth[100:])
    assert acc_g >= acc_f - 0.005  # gold never costs more than noise on the other tasks


def test_gold_anchors_label_switching():
    # every worker is adversarial (always the other class): without gold EM reads them
    # as honest; a few gold tasks reveal the swap
    truth = np.arange(200) % 2
    tasks = np.repeat(np.arange(200), 3)
    workers = np.tile(np.arange(3), 200)
    labels = 1 - np.repeat(truth, 3)
    gold = np.full(200, -1)
    gold[:20] = truth[:20]
    ds = DawidSkene().fit(tasks, workers, labels, gold=gold)
    assert np.mean(ds.labels_ == truth) == 1.0


def test_convergence_warning_when_n_iter_too_small(sim):
    with pytest.warns(ConvergenceWarning):
        est = DawidSkene(n_iter=1).fit(sim.tasks, sim.workers, sim.labels)
    assert est.converged_ is False and est.n_iter_ == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = DawidSkene().fit(sim.tasks, sim.workers, sim.labels)
    assert est.converged_ and est.n_iter_ < 100
    quiet = DawidSkene(n_iter=1)
    quiet.warns_unconverged = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet.fit(sim.tasks, sim.workers, sim.labels)
    assert quiet.converged_ is False


def test_em_log_likelihood_does_not_decrease(sim):
    ds = DawidSkene().fit(sim.tasks, sim.workers, sim.labels)
    # MAP EM: the penalised objective is monotone; the plain log-likelihood may wobble by
    # the size of the smoothing prior only
    assert np.all(np.diff(ds.history_) > -1e-3)


def test_predict_proba_one_matches_batch_posterior(sim):
    ds = DawidSkene(tol=1e-10, n_iter=500).fit(sim.tasks, sim.workers, sim.labels)
    for t in (0, 17, 2999):
        mask = sim.tasks == t
        p = ds.predict_proba_one(sim.workers[mask], sim.labels[mask])
        np.testing.assert_allclose(p, ds.probas_[t], atol=1e-6)


def test_clone_gives_unfitted_copy_with_same_params():
    est = DawidSkene(alpha=0.3)
    est.fit([0, 1], [0, 0], [0, 1])
    c = clone(est)
    assert c.alpha == 0.3 and not hasattr(c, "labels_")


def test_default_classifier_is_a_fresh_estimator():
    a, b = default_classifier(), default_classifier()
    assert a is not b
    assert a.fit([0, 0, 1], [0, 1, 0], [1, 1, 0]).labels_.tolist() == [1, 0]


def test_one_coin_does_not_collapse_on_sparse_skewed_data():
    # many one-off workers, one class rarely used: learned priors used to absorb everything
    rng = np.random.default_rng(0)
    sim = simulate_classification(
        4000,
        1500,
        4,
        3,
        mix=(0.3, 0.5, 0.2, 0.0),
        class_priors=[0.4, 0.3, 0.2, 0.1],
        activity_sigma=2.0,
        random_state=int(rng.integers(1000)),
    )
    est = OneCoinDawidSkene().fit(sim.tasks, sim.workers, sim.labels)
    pred_share = np.bincount(est.labels_, minlength=4) / 4000
    assert pred_share.max() < 0.6
    mv = np.mean(MajorityVote().fit_predict(sim.tasks, sim.workers, sim.labels) == sim.truth)
    assert np.mean(est.labels_ == sim.truth) >= mv - 0.02


def test_smoothing_keeps_sparse_workers_non_degenerate():
    sim = simulate_classification(300, 10, 3, 3, mix=(1, 0, 0, 0), random_state=9)
    # worker 10 answers a single task
    tasks = np.concatenate([sim.tasks, [0]])
    workers = np.concatenate([sim.workers, [10]])
    labels = np.concatenate([sim.labels, [sim.truth[0]]])
    ds = DawidSkene().fit(tasks, workers, labels)
    conf = ds.confusions_[10]
    assert np.all(conf > 0) and np.all(conf < 0.9)
    np.testing.assert_allclose(conf.sum(axis=1), 1.0)
    unsmoothed = DawidSkene(alpha=0.0, alpha_diag=0.0, alpha_prior=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        raw = unsmoothed.fit(tasks, workers, labels).confusions_[10]
    # without a prior the one answer makes a 0/1 row (or an undefined one)
    assert not np.all(np.isfinite(raw)) or np.any(raw == 1.0)


@pytest.mark.parametrize("cls", [MACE, GLAD, OneCoinDawidSkene])
def test_gold_is_clamped_in_every_em_model(cls):
    sim = simulate_classification(300, 15, 3, 3, random_state=10)
    gold = np.full(300, -1)
    gold[:30] = (sim.truth[:30] + 1) % 3  # deliberately contradict the crowd
    est = cls().fit(sim.tasks, sim.workers, sim.labels, gold=gold)
    assert np.array_equal(est.labels_[:30], gold[:30])
    np.testing.assert_allclose(est.probas_[np.arange(30), gold[:30]], 1.0)
