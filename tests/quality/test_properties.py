import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qistas.quality import (
    GLAD,
    MACE,
    DawidSkene,
    MajorityVote,
    OneCoinDawidSkene,
    WeightedMajorityVote,
)


@st.composite
def answers(draw, min_labels=2, max_labels=4):
    k = draw(st.integers(min_labels, max_labels))
    n_tasks = draw(st.integers(1, 12))
    n_workers = draw(st.integers(1, 5))
    n = draw(st.integers(1, 40))
    ints = st.lists
    tasks = draw(ints(st.integers(0, n_tasks - 1), min_size=n, max_size=n))
    workers = draw(ints(st.integers(0, n_workers - 1), min_size=n, max_size=n))
    labels = draw(ints(st.integers(0, k - 1), min_size=n, max_size=n))
    return np.array(tasks), np.array(workers), np.array(labels), k


SETTINGS = settings(max_examples=40, deadline=None)


@pytest.mark.parametrize(
    "cls", [MajorityVote, WeightedMajorityVote, DawidSkene, OneCoinDawidSkene, MACE, GLAD]
)
@SETTINGS
@given(data=answers())
def test_posteriors_are_distributions(cls, data):
    tasks, workers, labels, k = data
    est = cls(n_iter=500) if cls not in (MajorityVote, WeightedMajorityVote) else cls()
    est.fit(tasks, workers, labels, n_labels=k)
    p = est.probas_
    assert np.all(p >= 0) and np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    answered = np.bincount(tasks, minlength=p.shape[0]) > 0
    assert np.all(est.labels_[~answered] == -1)
    assert np.all(est.labels_[answered] >= 0)
    # the label is a most probable one
    rows = np.flatnonzero(answered)
    assert np.allclose(p[rows, est.labels_[rows]], p[rows].max(axis=1))


@pytest.mark.parametrize("cls", [MajorityVote, DawidSkene])
@SETTINGS
@given(data=answers(), seed=st.integers(0, 2**16))
def test_label_permutation_equivariance(cls, data, seed):
    tasks, workers, labels, k = data
    perm = np.random.default_rng(seed).permutation(k)
    est = cls(n_iter=1000) if cls is DawidSkene else cls()
    a = est.fit(tasks, workers, labels, n_labels=k).probas_
    b = cls(**est.get_params()).fit(tasks, workers, perm[labels], n_labels=k).probas_
    # relabelling the answers relabels the posterior columns
    np.testing.assert_allclose(b[:, perm], a, atol=1e-6)


@SETTINGS
@given(data=answers(), seed=st.integers(0, 2**16))
def test_worker_and_task_renaming_invariance(data, seed):
    tasks, workers, labels, k = data
    rng = np.random.default_rng(seed)
    n_t, n_w = tasks.max() + 1, workers.max() + 1
    pt, pw = rng.permutation(n_t), rng.permutation(n_w)
    a = DawidSkene(n_iter=1000).fit(tasks, workers, labels, n_labels=k, n_tasks=n_t).probas_
    b = (
        DawidSkene(n_iter=1000)
        .fit(pt[tasks], pw[workers], labels, n_labels=k, n_tasks=n_t, n_workers=n_w)
        .probas_
    )
    np.testing.assert_allclose(b[pt], a, atol=1e-6)
