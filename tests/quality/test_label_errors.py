"""Ranking delivered labels by the probability that they are wrong."""

import numpy as np
import pytest

import qistas.quality as q
from qistas.quality.label_errors import disagreement_scores, rank


def planted() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """60 tasks, 3 answers each, 2 labels: workers 0-3 always right, 4-5 always answer 1.

    Every task has two reliable answers and one of the unreliable workers', so its majority is
    right; but task 7's answers are both unreliable workers' (label 1) and one reliable
    worker's (label 0), and its truth is 0: the majority delivered there is the planted wrong label.
    """
    rng = np.random.default_rng(3)
    tasks, workers, labels = [], [], []
    truth = rng.integers(0, 2, 60)
    for t in range(60):
        if t == 7:
            answered = [(4, 1), (5, 1), (0, 0)]
        else:
            chosen = [*rng.choice(4, 2, replace=False), 4 + t % 2]
            answered = [(int(w), 1 if w >= 4 else int(truth[t])) for w in chosen]
        for w, lab in answered:
            tasks.append(t)
            workers.append(w)
            labels.append(lab)
    t, w, lab = (np.array(x) for x in (tasks, workers, labels))
    delivered = q.majority_vote(t, lab, n_labels=2)
    return t, w, lab, delivered, 7


def test_in_sample_ranks_the_planted_wrong_label_first() -> None:
    t, w, lab, delivered, wrong = planted()
    est = q.DawidSkene().fit(t, w, lab, n_labels=2)
    scorer = q.LabelErrorScorer(random_state=0).fit(t, w, lab, delivered, model=q.WorkerModel.from_estimator(est))
    assert scorer.ranking_[0] == wrong
    assert scorer.scores_[wrong] > 0.5
    assert scorer.scores_.shape == (60,) and np.all((scorer.scores_ >= 0) & (scorer.scores_ <= 1))
    np.testing.assert_allclose(scorer.posteriors_.sum(axis=1), 1.0)


def test_cross_fitted_ranks_the_planted_wrong_label_first() -> None:
    t, w, lab, delivered, wrong = planted()
    scorer = q.LabelErrorScorer(estimator=q.DawidSkene, n_folds=2, random_state=0).fit(t, w, lab, delivered)
    assert scorer.ranking_[0] == wrong


def test_majority_disagreement_cannot_tell_the_planted_task_apart() -> None:
    """The baseline gives the planted task 1/3, like every other split vote: no better than a tie."""
    t, w, lab, delivered, wrong = planted()
    scores = disagreement_scores(t, w, lab, delivered)
    assert scores[wrong] == pytest.approx(1 / 3)
    assert np.sum(scores >= scores[wrong]) > 1


def test_rank_breaks_ties_by_seed_not_by_index() -> None:
    scores = np.zeros(50)
    assert list(rank(scores, random_state=1)) != list(range(50))
    assert list(rank(scores, random_state=1)) == list(rank(scores, random_state=1))
    assert rank(np.array([0.1, 0.9, 0.5]), random_state=0).tolist() == [1, 2, 0]


def test_inputs_are_checked() -> None:
    t, w, lab, delivered, _ = planted()
    model = q.WorkerModel.from_estimator(q.DawidSkene().fit(t, w, lab, n_labels=2))
    with pytest.raises(ValueError, match="one label per task"):
        q.LabelErrorScorer().fit(t, w, lab, delivered[:-1], model=model)
    with pytest.raises(ValueError, match="n_folds"):
        q.LabelErrorScorer(n_folds=1).fit(t, w, lab, delivered)
    with pytest.raises(ValueError, match="in-sample"):
        q.LabelErrorScorer(n_folds=2).fit(t, w, lab, delivered, model=model)
    with pytest.raises(ValueError, match="labels"):
        q.LabelErrorScorer().fit(t, w, lab, delivered, model=model, n_labels=3)
