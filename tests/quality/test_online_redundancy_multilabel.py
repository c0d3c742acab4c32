import numpy as np
import pytest

from qistas.quality import (
    DawidSkene,
    MajorityVote,
    MultiLabel,
    WorkerModel,
    decide,
    posterior_for_task,
    simulate_classification,
)

CONF = np.array([[[0.9, 0.1], [0.2, 0.8]], [[0.6, 0.4], [0.3, 0.7]]])
PRIORS = np.array([0.5, 0.5])


def test_posterior_for_task_by_hand():
    # worker 0 says 0, worker 1 says 1: P(0) ~ .5*.9*.4 = .18, P(1) ~ .5*.2*.7 = .07
    p = posterior_for_task([0, 1], [0, 1], CONF, PRIORS)
    np.testing.assert_allclose(p, [0.18 / 0.25, 0.07 / 0.25])
    np.testing.assert_allclose(posterior_for_task([], [], CONF, PRIORS), PRIORS)


def test_unknown_worker_uses_mean_confusion():
    p = posterior_for_task([-1], [0], CONF, PRIORS)
    mean = CONF.mean(axis=0)
    expected = mean[:, 0] / mean[:, 0].sum()
    np.testing.assert_allclose(p, expected)
    p5 = posterior_for_task([5], [0], CONF, PRIORS)
    np.testing.assert_allclose(p5, expected)
    with pytest.raises(ValueError):
        posterior_for_task([0], [2], CONF, PRIORS)


def test_many_answers_do_not_underflow():
    p = posterior_for_task(np.zeros(2000, int), np.zeros(2000, int), CONF, PRIORS)
    assert p[0] == pytest.approx(1.0) and np.all(np.isfinite(p))


def test_decide_policy():
    model = WorkerModel(CONF, PRIORS)
    d = decide([0], [0], model, min_answers=2, max_answers=4, target=0.8)
    assert not d.done and d.label == 0  # below min
    d = decide([0, 0], [0, 0], model, min_answers=2, max_answers=4, target=0.95)
    assert d.done and d.confidence >= 0.95  # .81/(.81+.04)
    d = decide([0, 1], [0, 1], model, min_answers=2, max_answers=4, target=0.95)
    assert not d.done  # .72 < .95
    d = decide([0, 1, 0, 1], [0, 1, 1, 0], model, min_answers=2, max_answers=4, target=0.99)
    assert d.done  # max reached
    d = decide([], [], model, min_answers=1, max_answers=3)
    assert not d.done and d.label == -1
    with pytest.raises(ValueError):
        decide([0], [0], model, min_answers=3, max_answers=2)


def test_worker_model_from_fitted_estimator():
    sim = simulate_classification(500, 10, 3, 3, random_state=0)
    ds = DawidSkene().fit(sim.tasks, sim.workers, sim.labels)
    model = WorkerModel.from_estimator(ds)
    assert model.n_labels == 3
    m = sim.tasks == 0
    np.testing.assert_allclose(
        model.posterior(sim.workers[m], sim.labels[m]),
        ds.predict_proba_one(sim.workers[m], sim.labels[m]),
    )


def test_multilabel_one_binary_model_per_label():
    rng = np.random.default_rng(0)
    n_tasks, n_labels = 300, 3
    truth = rng.random((n_tasks, n_labels)) < 0.4
    tasks = np.repeat(np.arange(n_tasks), 5)
    workers = np.tile(np.arange(5), n_tasks)
    error_rate = np.array([0.1, 0.1, 0.1, 0.1, 0.45])
    flip = rng.random((tasks.size, n_labels)) < error_rate[workers, None]
    y = (truth[tasks] ^ flip).astype(int)
    est = MultiLabel(DawidSkene()).fit(tasks, workers, y, n_tasks=n_tasks + 1)
    assert est.labels_.shape == (n_tasks + 1, n_labels)
    assert np.all(est.labels_[-1] == -1)
    assert np.mean(est.labels_[:-1] == truth) > 0.95
    assert len(est.estimators_) == n_labels
    default = MultiLabel().fit(tasks, workers, y)
    assert np.mean(default.labels_ == truth) > 0.95
    with pytest.raises(ValueError, match="indicator"):
        MultiLabel(MajorityVote()).fit(tasks, workers, y[:, 0])


def test_simulation_is_seeded():
    a = simulate_classification(200, 20, 3, 4, random_state=5)
    b = simulate_classification(200, 20, 3, 4, random_state=5)
    c = simulate_classification(200, 20, 3, 4, random_state=6)
    assert np.array_equal(a.labels, b.labels) and not np.array_equal(a.labels, c.labels)
    np.testing.assert_allclose(a.confusions.sum(axis=2), 1.0)
    # distinct workers within each task
    pairs = a.tasks * 100 + a.workers
    assert np.unique(pairs).size == pairs.size
